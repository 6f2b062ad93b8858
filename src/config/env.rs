//! The `VANTHU_*` environment variables, derived from `Config`'s shape: the
//! setting `a.b_c` (section `a`, key `b_c`) is `VANTHU_A_B_C`. The shape is
//! read from the struct's own serde derive (serde-reflection), so a new
//! setting has its variable with nothing else to edit, and no list of names
//! is kept by hand.
//!
//! A value is read as its setting's type: text as is, `true`/`false`,
//! integers, a list of text as comma-separated items, anything else (the
//! numbering table) as a TOML value. An empty value unsets an optional
//! setting.
//!
//! Must never: read a variable outside the `VANTHU_` prefix, or accept a
//! value its setting's type refuses (the variable is named in the error).

use std::sync::OnceLock;

use serde_reflection::{ContainerFormat, Format, Registry, Tracer, TracerConfig};

use super::{Backend, Config, ConfigError, LogFormat};

/// The prefix of every variable.
pub const PREFIX: &str = "VANTHU_";
/// Variables of test hooks and test runs, which are no setting.
pub const TEST_PREFIX: &str = "VANTHU_TEST_";

/// One setting as the environment names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// `VANTHU_STORE_MAX_BATCH_EVENTS`.
    pub var: String,
    /// `["store", "max_batch_events"]`.
    pub path: Vec<String>,
    kind: Kind,
    optional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Integer,
    TextList,
    Toml,
}

impl Setting {
    /// The dotted name, as in the TOML file: `store.max_batch_events`.
    pub fn key(&self) -> String {
        self.path.join(".")
    }

    /// `raw` as this setting's TOML value; None unsets an optional one.
    fn value(&self, raw: &str) -> Result<Option<toml::Value>, String> {
        if raw.is_empty() && self.optional {
            return Ok(None);
        }
        Ok(Some(match self.kind {
            Kind::Text => toml::Value::String(raw.to_owned()),
            Kind::Bool => toml::Value::Boolean(
                raw.parse()
                    .map_err(|_| "expected true or false".to_owned())?,
            ),
            Kind::Integer => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .map_err(|e: std::num::ParseIntError| e.to_string())?,
            ),
            Kind::TextList => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            ),
            Kind::Toml => {
                let mut t: toml::Table =
                    toml::from_str(&format!("v = {raw}")).map_err(|e| e.message().to_owned())?;
                t.remove("v").expect("parsed as key v")
            }
        }))
    }
}

/// Every setting, in the order `Config` declares them.
pub fn settings() -> &'static [Setting] {
    static SETTINGS: OnceLock<Vec<Setting>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let mut tracer = Tracer::new(TracerConfig::default());
        tracer
            .trace_simple_type::<LogFormat>()
            .expect("LogFormat is a plain enum");
        tracer
            .trace_simple_type::<Backend>()
            .expect("Backend is a plain enum");
        tracer
            .trace_simple_type::<Config>()
            .expect("Config derives Deserialize without custom code");
        let registry = tracer.registry().expect("every enum traced");
        let mut out = Vec::new();
        walk(&registry, "Config", &mut Vec::new(), &mut out);
        out
    })
}

fn walk(registry: &Registry, container: &str, path: &mut Vec<String>, out: &mut Vec<Setting>) {
    let Some(ContainerFormat::Struct(fields)) = registry.get(container) else {
        unreachable!("{container} is a struct");
    };
    for field in fields {
        path.push(field.name.clone());
        let (format, optional) = match &field.value {
            Format::Option(inner) => (inner.as_ref(), true),
            f => (f, false),
        };
        match format {
            Format::TypeName(name)
                if matches!(registry.get(name), Some(ContainerFormat::Struct(_))) =>
            {
                walk(registry, name, path, out)
            }
            f => out.push(Setting {
                var: format!("{PREFIX}{}", path.join("_").to_uppercase()),
                path: path.clone(),
                kind: kind(f),
                optional,
            }),
        }
        path.pop();
    }
}

fn kind(format: &Format) -> Kind {
    match format {
        Format::Str | Format::Char | Format::TypeName(_) => Kind::Text,
        Format::Bool => Kind::Bool,
        Format::I8
        | Format::I16
        | Format::I32
        | Format::I64
        | Format::U8
        | Format::U16
        | Format::U32
        | Format::U64 => Kind::Integer,
        Format::Seq(item) if matches!(**item, Format::Str) => Kind::TextList,
        _ => Kind::Toml,
    }
}

/// Applies every `VANTHU_*` setting `var` knows to `config`, one at a time,
/// so that an error names the variable.
pub fn apply(config: &mut Config, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for s in settings() {
        let Some(raw) = var(&s.var) else { continue };
        let bad = |e: String| ConfigError::Env(s.var.clone(), raw.clone(), e);
        let mut table = toml::Table::try_from(&*config).expect("a Config serialises");
        let (section, key) = s.path.split_at(s.path.len() - 1);
        let mut here = &mut table;
        for name in section {
            here = here
                .entry(name.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .expect("a section is a table");
        }
        match s.value(&raw).map_err(bad)? {
            Some(v) => here.insert(key[0].clone(), v),
            None => here.remove(&key[0]),
        };
        *config = table
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_owned()))?;
    }
    Ok(())
}

/// The `VANTHU_*` names among `names` that are no setting (a typo, or a
/// setting of another version): the service warns about each.
pub fn unknown<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|n| n.starts_with(PREFIX) && !n.starts_with(TEST_PREFIX))
        .filter(|n| !settings().iter().any(|s| s.var == *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn apply_vars(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<&str, &str> = vars.iter().copied().collect();
        let mut c = Config::default();
        apply(&mut c, |k| env.get(k).map(|v| v.to_string()))?;
        Ok(c)
    }

    #[test]
    fn names_follow_the_settings_and_are_unique() {
        let vars: Vec<&str> = settings().iter().map(|s| s.var.as_str()).collect();
        for expected in [
            "VANTHU_DATA_DIR",
            "VANTHU_LOG",
            "VANTHU_LOG_FORMAT",
            "VANTHU_DEMO",
            "VANTHU_STORE_MAX_BATCH_EVENTS",
            "VANTHU_AUTH_JWKS_CA",
            "VANTHU_TLS_CERT",
            "VANTHU_TLOG_CHECKPOINT_INTERVAL_MS",
            "VANTHU_NUMBERING_OWN_SERIES",
        ] {
            assert!(vars.contains(&expected), "{expected} missing from {vars:?}");
        }
        let mut sorted = vars.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), vars.len(), "two settings share a name");
    }

    /// Every setting, set through its variable, changes the configuration:
    /// none is derived but ignored.
    #[test]
    fn every_variable_reaches_its_setting() {
        for s in settings() {
            let raw = match s.kind {
                Kind::Text if s.var == "VANTHU_LOG_FORMAT" => "json",
                Kind::Text if s.var == "VANTHU_STORE_BACKEND" => "jetstream",
                Kind::Text => "/elsewhere",
                Kind::Bool => "true",
                Kind::Integer => "4242",
                Kind::TextList => "http://a.example/crl, http://b.example/crl",
                Kind::Toml if s.var == "VANTHU_INTERCHANGE_PEERS" => {
                    r#"[{ id = "hatinh", url = "https://h.example/in", key_file = "/k" }]"#
                }
                Kind::Toml => r#"{ SNV = ["QD", "CV"] }"#,
            };
            let c = apply_vars(&[(&s.var, raw)]).unwrap_or_else(|e| panic!("{e}"));
            assert_ne!(c, Config::default(), "{} changed nothing", s.var);
        }
    }

    #[test]
    fn values_are_read_as_their_types() {
        let c = apply_vars(&[
            ("VANTHU_LISTEN", "127.0.0.1:0"),
            ("VANTHU_STORE_MAX_BATCH_EVENTS", "64"),
            ("VANTHU_DEMO", "false"),
            ("VANTHU_CRL_URLS", "http://a/crl, ,http://b/crl"),
            ("VANTHU_TLS_CERT", "/etc/vanthu/tls.pem"),
            ("VANTHU_LOG_FORMAT", "pretty"),
            ("VANTHU_NUMBERING_OWN_SERIES", r#"{ UBND = ["QD"] }"#),
        ])
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.store.max_batch_events, 64);
        assert_eq!(c.demo, Some(false));
        assert_eq!(c.crl.urls, ["http://a/crl", "http://b/crl"]);
        assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/vanthu/tls.pem")));
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.numbering.own_series["UBND"], ["QD"]);
        // Empty unsets an optional setting.
        let mut again = c.clone();
        apply(&mut again, |k| (k == "VANTHU_TLS_CERT").then(String::new)).unwrap();
        assert_eq!(again.tls.cert, None);
    }

    #[test]
    fn a_bad_value_names_its_variable_and_changes_nothing() {
        for (var, raw) in [
            ("VANTHU_WORKERS", "many"),
            ("VANTHU_WORKERS", "-1"),
            ("VANTHU_DEV", "yes"),
            ("VANTHU_LOG_FORMAT", "xml"),
            ("VANTHU_NUMBERING_OWN_SERIES", "UBND"),
        ] {
            let mut c = Config::default();
            let err = apply(&mut c, |k| (k == var).then(|| raw.to_owned())).unwrap_err();
            assert!(err.to_string().contains(var), "{err}");
            assert_eq!(c, Config::default(), "{var}={raw} changed the config");
        }
    }

    #[test]
    fn unknown_variables_are_found() {
        let names = [
            "VANTHU_LISTN",
            "VANTHU_LISTEN",
            "PATH",
            "VANTHU_STORE_VERIFY_TAIL",
        ];
        assert_eq!(unknown(names), ["VANTHU_LISTN"]);
    }

    /// The settings table of docs/OPERATIONS.md has exactly one row per
    /// setting, with the derived variable.
    #[test]
    fn the_operations_table_names_every_variable() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/OPERATIONS.md");
        let text = std::fs::read_to_string(path).unwrap();
        let rows: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| {
                let mut cells = l.split('|').map(str::trim).skip(1);
                let key = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                let var = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                var.starts_with(PREFIX)
                    .then(|| (key.to_owned(), var.to_owned()))
            })
            .collect();
        let derived: Vec<(String, String)> = settings()
            .iter()
            .map(|s| (s.key(), s.var.clone()))
            .collect();
        for row in &rows {
            assert!(
                derived.contains(row),
                "docs/OPERATIONS.md row {row:?} is no setting"
            );
        }
        for d in &derived {
            assert!(rows.contains(d), "docs/OPERATIONS.md has no row {d:?}");
        }
    }
}
