//! Starting the service: open the event log, bind the listener, build the
//! HTTP server. `main` and the tests both go through `start`.
//!
//! Must never: hold business logic, or start serving before the log has
//! opened and verified its tail.

use std::net::{SocketAddr, TcpListener};

use actix_web::{web, App, HttpServer};

use crate::api::{self, AppState};
use crate::config::Config;
use crate::store::{EventLog, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the event log in {0}: {1}")]
    Log(String, #[source] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, #[source] std::io::Error),
}

/// A started service: bound and ready to be awaited.
pub struct Service {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The event log the service writes to.
    pub log: EventLog,
    server: actix_web::dev::Server,
}

impl Service {
    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Opens the log in `config.data_dir` and binds `config.listen`.
pub fn start(config: &Config) -> Result<Service, StartError> {
    let dir = config.data_dir.display().to_string();
    let log = EventLog::open(&config.data_dir, config.log_options())
        .map_err(|e| StartError::Log(dir, e))?;
    let bind = |e| StartError::Bind(config.listen.clone(), e);
    let listener = TcpListener::bind(&config.listen).map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let state = web::Data::new(AppState { log: log.clone() });
    let mut server = HttpServer::new(move || App::new().configure(api::configure(state.clone())))
        .listen(listener)
        .map_err(bind)?;
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    Ok(Service {
        addr,
        log,
        server: server.run(),
    })
}
