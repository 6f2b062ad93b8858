//! The rules of the system, as pure functions over values: no I/O, no
//! async, no clock. Everything here is unit-tested with tables.
//!
//! Must never: import `store`, `api`, actix, RocksDB or anything that
//! performs I/O; the only crate-internal imports allowed are `crypto`'s pure
//! pieces (verification report types, canonical JSON).

pub mod access;
pub mod authority;
pub mod calendar;
pub mod doctype;
pub mod document;
pub mod interchange;
pub mod numbering;
pub mod org;
pub mod sealed;
pub mod signing;
