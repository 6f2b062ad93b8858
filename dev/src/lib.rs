//! Development tools for vanthu, kept out of the service's crate so that
//! what they need (certificate generation, temporary directories) is not a
//! dependency of the production binary: the development PKI (`devkeys`),
//! the benchmarks (`bench`, `seed`, `load`) and the demo story (`demo`), used by
//! the `vanthu-dev` command and by the tests.
//!
//! Must never: be linked into the service, or hold a key that is not
//! derived from the public development seed.

pub mod bench;
pub mod demo;
pub mod devkeys;
pub mod load;
pub mod seed;
