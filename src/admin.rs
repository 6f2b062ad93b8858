//! Operator commands on a stopped (or not yet created) store: `vanthu admin
//! init` records the first admin of a production installation, where no
//! demo organisation is loaded and nobody could otherwise change the
//! organisation (only an admin may, over HTTP).
//!
//! Must never: run against a store the service holds open (RocksDB's lock
//! refuses it), add an admin once one is in office (that is an admin's
//! `POST /v1/org/events`), or skip the organisation rules of `domain::org`.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::domain::org::{OrgEvent, Position};
use crate::service::org::OrgState;
use crate::store::{Metadata, RocksLog};

/// The first admin, and optionally the agency and position they hold.
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    /// The official id the admin signs in with (the token's `sub`).
    pub official: String,
    /// Their name, when they are also appointed (`agency` given).
    pub name: Option<String>,
    /// Appoint the admin in this agency (created when missing, with `agency_name`).
    pub agency: Option<String>,
    pub agency_name: Option<String>,
    /// Position held in `agency` (default: specialist).
    pub position: Position,
    /// The operator's note, kept with the events (who installed, on whose order).
    pub note: String,
}

/// Why the first admin was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot open the event log in {0} (is the service running? stop it first): {1}")]
    Open(String, #[source] crate::store::StoreError),
    #[error("the organisation already has an admin in office ({0}); an admin changes it with POST /v1/org/events")]
    AlreadyInitialised(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the organisation change was refused: {0}")]
    Refused(String),
}

/// What `init` recorded.
#[derive(Debug)]
pub struct Initialised {
    pub events: usize,
    pub position: u64,
}

/// Records the first admin in the log in `data_dir` (created when missing),
/// at `at`, as one append: the agency (when new), the appointment (when an
/// agency is given) and the admin grant, each carrying the operator's note.
///
/// With `jetstream`, the log is that stream and `data_dir` its replica on
/// this machine (`store.backend = "jetstream"`).
pub async fn init(
    data_dir: &Path,
    admin: &FirstAdmin,
    at: DateTime<Utc>,
    jetstream: Option<&crate::store::jetstream::JetStreamOptions>,
) -> Result<Initialised, AdminError> {
    if admin.note.trim().is_empty() {
        return Err(AdminError::Invalid(
            "give --note: who installs, on whose decision (it is kept with the events)".into(),
        ));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| {
        AdminError::Open(
            data_dir.display().to_string(),
            crate::store::StoreError::Io(data_dir.display().to_string(), e),
        )
    })?;
    let options = crate::store::LogOptions {
        replica: jetstream.is_some(),
        ..Default::default()
    };
    let log = RocksLog::open(data_dir, options)
        .map_err(|e| AdminError::Open(data_dir.display().to_string(), e))?;
    let appends: std::sync::Arc<dyn crate::store::EventLog> = match jetstream {
        None => std::sync::Arc::new(log.clone()),
        Some(o) => std::sync::Arc::new(
            crate::store::jetstream::JetStreamLog::open(log.clone(), o)
                .await
                .map_err(|e| AdminError::Refused(e.to_string()))?,
        ),
    };
    let org =
        OrgState::load(&log).map_err(|e| AdminError::Open(data_dir.display().to_string(), e))?;
    if let Some(existing) = org.read(|o| {
        o.admins
            .iter()
            .find(|(id, _)| o.is_admin(id, at))
            .map(|(id, _)| id.clone())
    }) {
        return Err(AdminError::AlreadyInitialised(existing));
    }
    let mut events = Vec::new();
    if let Some(agency) = &admin.agency {
        if !org.read(|o| o.agencies.contains_key(agency)) {
            let name = admin.agency_name.clone().ok_or_else(|| {
                AdminError::Invalid(format!(
                    "agency {agency} does not exist yet: give --agency-name to create it"
                ))
            })?;
            events.push(OrgEvent::AgencyCreated {
                code: agency.clone(),
                name,
                parent: None,
                collegial: false,
            });
        }
        let name = admin.name.clone().ok_or_else(|| {
            AdminError::Invalid("give --name: the admin is appointed in the agency".into())
        })?;
        events.push(OrgEvent::OfficialAppointed {
            official: admin.official.clone(),
            name,
            agency: agency.clone(),
            unit: None,
            position: admin.position,
            title: None,
            from: at,
        });
    }
    events.push(OrgEvent::AdminGranted {
        official: admin.official.clone(),
        at,
    });
    let metadata = Metadata {
        actor: Some("operator (vanthu admin init)".into()),
        reason: Some(admin.note.clone()),
        ..Default::default()
    };
    let n = events.len();
    let appended = org
        .record(&*appends, events, &metadata, None)
        .await
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    Ok(Initialised {
        events: n,
        position: appended.last_position,
    })
}
