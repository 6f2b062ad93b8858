//! The API contract, generated from the code with utoipa: `schemas/openapi.json`
//! (also served at `GET /v1/openapi.json`) and the JSON Schemas of every
//! event payload in `schemas/events/`. `vanthu schemas` rewrites both; a test
//! fails when the committed files differ from what the code generates.
//!
//! Must never: be edited by hand in `schemas/` (regenerate instead), or
//! describe a route that `api::configure` does not serve.

use std::path::{Path, PathBuf};

use actix_web::HttpResponse;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{blobs, documents, ops, org, queries};
use crate::domain::document::{json_schema, DocumentEvent, NumberAllocated, NUMBER_ALLOCATED};
use crate::domain::org::OrgEvent;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (EdDSA)")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of the service.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "vanthu",
        description = "Document management and e-signature for provincial agencies. Errors are application/problem+json (RFC 9457); commands honour If-Match and Idempotency-Key and answer with ETag and Vanthu-Position.",
    ),
    paths(
        ops::healthz, ops::readyz, org::get_org, org::post_event,
        blobs::upload, blobs::download,
        documents::create, documents::get, documents::events, documents::signing_payload,
        queries::verification, documents::bundle, documents::content,
        queries::my_inbox, queries::unit_inbox, queries::mark_read,
        queries::list_deadlines, queries::deadline_stats, queries::overdue_csv,
        queries::register, queries::issued_feed,
        documents::revise, documents::route, documents::return_, documents::opinion,
        documents::sign, documents::issue, documents::recall, documents::replace,
        documents::receive, documents::assign, documents::extend, documents::reply,
        documents::complete,
    ),
    components(schemas(OrgEvent)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// `schemas/openapi.json` as the code describes it.
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

/// `GET /v1/openapi.json`.
#[actix_web::get("/v1/openapi.json")]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi_json())
}

/// Every event type's payload schema: file name (without `.json`) → schema.
pub fn event_schemas() -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = DocumentEvent::schemas()
        .into_iter()
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect();
    all.push((
        NUMBER_ALLOCATED.to_owned(),
        json_schema::<NumberAllocated>("number_allocated"),
    ));
    // The org stream's events, one schema (a tagged union over `type`).
    all.push(("org.v1".to_owned(), json_schema::<OrgEvent>("")));
    all
}

/// Every generated file under `dir` with its contents.
pub fn generated(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = vec![(dir.join("openapi.json"), openapi_json())];
    for (name, schema) in event_schemas() {
        let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialise");
        text.push('\n');
        files.push((dir.join("events").join(format!("{name}.json")), text));
    }
    files
}

/// Writes every generated file under `dir` (`vanthu schemas`).
pub fn write(dir: &Path) -> std::io::Result<usize> {
    let files = generated(dir);
    std::fs::create_dir_all(dir.join("events"))?;
    for (path, text) in &files {
        std::fs::write(path, text)?;
    }
    Ok(files.len())
}
