//! The API contract, generated from the code with utoipa: `schemas/openapi.json`
//! (also served at `GET /v1/openapi.json`) and the JSON Schemas of every
//! event payload in `schemas/events/`. `vanthu schemas` rewrites both; a test
//! fails when the committed files differ from what the code generates.
//!
//! Must never: be edited by hand in `schemas/` (regenerate instead), or
//! describe a route that the service does not serve (both come from
//! `api::routes`).

use std::path::{Path, PathBuf};

use actix_web::HttpResponse;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
    components(schemas(OrgEvent)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// `schemas/openapi.json` as the code describes it.
pub fn openapi_json() -> String {
    use utoipa_actix_web::AppExt;
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(super::routes)
        .split_for_parts();
    let mut text = api
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

/// The methods the documented routes take on `path` (upper case; empty
/// when no documented route's template matches it).
pub fn methods_of(path: &str) -> Vec<String> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, Vec<String>)>> =
        std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let doc: Value = serde_json::from_str(&openapi_json()).unwrap_or_default();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        paths
            .into_iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let methods = item
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                (segments, methods)
            })
            .collect()
    });
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &[String]| {
        template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
    };
    let mut methods: Vec<String> = routes
        .iter()
        .filter(|(t, _)| matches(t))
        .flat_map(|(_, m)| m.iter().cloned())
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

/// `GET /v1/openapi.json`.
#[actix_web::get("/v1/openapi.json")]
pub(crate) async fn serve() -> HttpResponse {
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Path parameters are exactly the path template's `{names}`; query
    /// parameters are never described as path ones (they were, before the
    /// routes and their descriptions came from one list).
    #[test]
    fn every_parameter_is_where_the_route_takes_it() {
        let doc: Value = serde_json::from_str(&super::openapi_json()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 30, "{} paths", paths.len());
        for (path, item) in paths {
            let mut template: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            template.sort();
            for (method, op) in item.as_object().unwrap() {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let mut in_path: Vec<&str> = params
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                in_path.sort();
                assert_eq!(in_path, template, "{method} {path}");
            }
        }
    }
}
