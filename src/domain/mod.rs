//! The rules of the system, as pure functions over values: no I/O, no
//! async, no clock. Everything here is unit-tested with tables.
//!
//! Must never: import `store`, `api`, actix, RocksDB or anything that
//! performs I/O; the only crate-internal import allowed is `crypto`'s value
//! types (verification reports).

pub mod authority;
pub mod doctype;
pub mod numbering;
pub mod org;
pub mod signing;
