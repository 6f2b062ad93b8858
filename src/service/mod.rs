//! The application layer: how a command on a document is carried out
//! against a log (`commands::run`), and how documents are loaded from it
//! (`load`). The HTTP handlers and `vanthu bench seed` both go through it,
//! so there is one pipeline, not one per caller.
//!
//! Must never: speak HTTP (the API maps its errors once, at the edge),
//! decide a rule (the domain does), or name a log backend: it talks to
//! `store::EventLog`, the trait, never to RocksDB.

pub mod commands;
pub mod load;
