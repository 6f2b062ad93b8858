//! Black-box tests: the event log through its public API, the real `vanthu`
//! binary over HTTP, and crash safety with a child process killed by SIGKILL.
//! One test binary (faster to link than one per file).
//!
//! Tests may read the wall clock: they stand where users stand.
#![allow(clippy::disallowed_methods)]

mod backup; // online backups under 64 writers, restore, check; refusals
mod blobs; // document files: upload quota, citing, collection after the grace period
mod cluster; // a real three-node NATS JetStream cluster on loopback
mod contract; // the OpenAPI contract against the running server: non-object bodies, schemathesis
mod crash; // SIGKILL a child appender at random moments; nothing acknowledged is lost
mod crypto; // signature verification against public test vectors
mod disk; // a full disk on a small tmpfs: 507, /readyz, recovery without restart, restart on a full disk
mod documents; // the document lifecycle over HTTP: story, numbering, authz, bad input
mod helpers; // temp dirs, spawning the real server, running the CLI
mod interchange; // two provinces exchange edXML packages; hostile and unauthenticated posts refused
mod jetstream_cluster; // the log on JetStream: two nodes, one log; faults
mod metrics; // GET /metrics parsed by the Prometheus project's parser, moving under load
mod operations; // docs/OPERATIONS.md's commands run as written on a scratch file system
mod org; // the organisation over HTTP: demo org, auth, admin role
mod projections; // inboxes, deadlines through time, feed, rebuild equality
mod server; // `vanthu serve`, `check` and `bench` as a user runs them
mod setup; // ops/dev-deps.sh, browser-deps.sh and systemd-deps.sh against fake filesystem roots (a fresh machine)
mod signatures; // signatures judged at the signing instant with the dev PKI
mod store; // concurrency, multi-stream atomicity, idempotency across restart
mod telemetry; // request ids in responses, events and JSON log lines; no secrets logged
mod tidy; // guard rails from the source tree: module docs, the architecture's absences
mod tlog; // the transparency log checked by an independent verifier; who reads entries
mod tls; // HTTPS with the dev-keys certificate, reload on SIGHUP, plain HTTP beyond loopback refused
mod tokens; // tokens from a JWK Set file and from a real OpenID Connect provider
mod ui; // the pages in a real headless Chromium: sign-in (SSO and development), deadlines, chart, crawl
mod webhooks; // Standard Webhooks signatures verified by the Standard Webhooks project's Python library
