//! The application layer: how a command on a document is carried out
//! against a log (`commands::run`, and `commands::append_racing` for the
//! appends that are not commands), how documents and the organisation are
//! loaded from it (`load`, `org`), document files (`blobs`), an issued
//! document's offline evidence (`evidence`) and the interchange's packages,
//! arrivals and statuses (`interchange`). The HTTP handlers, the pages and
//! `vanthu bench seed` all go through it, so there is one pipeline, not one
//! per caller.
//!
//! Must never: speak HTTP (no `HttpRequest`, no `Problem`: it returns its
//! own errors and the edge maps them once), read `config` (the composition
//! root hands it settings), decide a rule (the domain does), or name a log
//! backend: it talks to `store::EventLog`, the trait, never to RocksDB.

pub mod blobs;
pub mod commands;
pub mod evidence;
pub mod interchange;
pub mod load;
pub mod org;

use std::sync::Arc;

use crate::clock::Clock;
use crate::crypto::keystore::Keystore;
use crate::domain::numbering::Policy;
use crate::store::{BlobStore, EventLog, RocksLog};

/// What every application service works on: the log, the files, the
/// organisation, the views and the checkpoints. The HTTP state derefs to it.
pub struct Core {
    /// This node's log: the one written (RocksDB backend) or the local
    /// replica of the JetStream stream; every read and projection uses it.
    pub log: RocksLog,
    /// Where appends go (`store.backend`): `log` itself, or JetStream.
    pub events: Arc<dyn EventLog>,
    /// Where document files go: `log`'s blobs, or JetStream's object store.
    pub blobs: Arc<dyn BlobStore>,
    pub org: Arc<org::OrgState>,
    pub docs: Services,
    pub projections: Arc<crate::projections::Projections>,
    /// The checkpoint signer and the newest checkpoint.
    pub tlog: Arc<crate::tlog::Checkpoints>,
}

/// What document commands need besides the log and the organisation.
pub struct Services {
    /// Trust anchors and CRLs (reloaded and fetched in the background).
    pub crls: Arc<crate::crls::CrlStore>,
    pub keystore: Box<dyn Keystore>,
    pub calendar: crate::domain::calendar::Calendar,
    /// "Due soon" means within this many working days.
    pub due_soon_days: u32,
    pub numbering: Policy,
    pub clock: Arc<Clock>,
    /// Document files: size limit, quota, collection.
    pub blobs: blobs::BlobPolicy,
    /// One lock per agency around "read the register's version, append the
    /// next number", so concurrent issues queue instead of conflicting.
    pub registers: commands::RegisterLocks,
    /// Documents as last folded, for commands (`service::load::current`).
    pub documents: load::DocumentCache,
}
