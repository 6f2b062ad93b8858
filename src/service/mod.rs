//! The application layer: how a command on a document is carried out
//! against a log (`commands::run`, and `commands::append_racing` for the
//! appends that are not commands), how documents are loaded from it
//! (`load`), and the interchange's packages, arrivals and statuses
//! (`interchange`). The HTTP handlers and `vanthu bench seed` both go through it,
//! so there is one pipeline, not one per caller.
//!
//! Must never: speak HTTP (the API maps its errors once, at the edge),
//! decide a rule (the domain does), or name a log backend: it talks to
//! `store::EventLog`, the trait, never to RocksDB.

pub mod commands;
pub mod interchange;
pub mod load;
