//! Guard rails read from the source tree: every module says what it is for
//! and what it must never do, and the invariants docs/ARCHITECTURE.md
//! states as absences hold.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Code lines of a file: comments dropped, so a rule may be named in prose.
fn code(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_module_opens_with_its_purpose_and_what_it_must_never_do() {
    let _limit = crate::helpers::time_limit();
    let mut missing = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = rust_files(&src());
    files.extend(rust_files(&root.join("dev/src")));
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(root).unwrap().display().to_string();
        if !text.starts_with("//!") {
            missing.push(format!("{name}: does not open with a //! module doc"));
        }
        let test_file = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("tests.rs"));
        if !test_file && !text.contains("Must never") {
            missing.push(format!("{name}: says nothing it must never do"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_architectures_absences_hold() {
    let _limit = crate::helpers::time_limit();
    let mut broken = Vec::new();
    for path in rust_files(&src()) {
        let name = path
            .strip_prefix(src())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = code(&std::fs::read_to_string(&path).unwrap());
        // RocksDB only in the store.
        if !name.starts_with("store/") && text.contains("rocksdb::") {
            broken.push(format!("{name}: uses RocksDB outside src/store"));
        }
        // The domain is pure: no I/O, no async, no clock.
        if name.starts_with("domain/") {
            for banned in [
                "std::fs",
                "std::net",
                "std::io",
                "tokio",
                "reqwest",
                "Utc::now",
                "SystemTime",
                "async fn",
            ] {
                if text.contains(banned) {
                    broken.push(format!("{name}: `{banned}` in the pure domain"));
                }
            }
        }
        // The store knows nothing of documents.
        if name.starts_with("store/") && text.contains("domain::") {
            broken.push(format!("{name}: the store depends on the domain"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The development tools' dependencies stay out of the service's crate
/// (they are `dev/`'s, the `vanthu-dev` command): certificate generation
/// and temporary directories are for development and tests only.
#[test]
fn the_service_does_not_depend_on_development_tools() {
    let _limit = crate::helpers::time_limit();
    let manifest: toml::Table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    for dev_only in ["rcgen", "tempfile", "vanthu-dev"] {
        assert!(
            !deps.contains_key(dev_only),
            "{dev_only} is a dependency of the service; it belongs to dev/"
        );
    }
    for module in ["bench.rs", "demo.rs", "seed.rs"] {
        assert!(
            !src().join(module).exists(),
            "src/{module} belongs to dev/src"
        );
    }
}

/// The top-level module of a file under `src/` (`api` for `api/x.rs` and
/// `api.rs`), or None for the crate roots.
fn top_module(name: &str) -> Option<String> {
    if name == "lib.rs" || name == "main.rs" {
        return None;
    }
    let first = name.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// A file's code without its tests: comments dropped, and everything from
/// its first `#[cfg(test)]` on (tests may reach anywhere).
fn non_test_code(text: &str) -> String {
    let code = code(text);
    match code.find("#[cfg(test)]") {
        Some(i) => code[..i].to_owned(),
        None => code,
    }
}

/// Test files: `*_tests.rs`, `tests.rs`, and files under a `tests/` folder.
fn is_test_file(name: &str) -> bool {
    name.ends_with("_tests.rs") || name.ends_with("/tests.rs") || name.contains("/tests/")
}

/// The modules `crate::X` paths in `text` name.
fn crate_paths(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `vanthu_crate::` and the like
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// The import graph between the top-level modules of `src/` (non-test
/// code only): module → the modules it names, with one file as evidence.
fn import_graph(
    root: &Path,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
    let mut graph: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        Default::default();
    let files = rust_files(root);
    let names: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    let modules: std::collections::BTreeSet<String> =
        names.iter().filter_map(|n| top_module(n)).collect();
    for (path, name) in files.iter().zip(&names) {
        let Some(from) = top_module(name) else {
            continue;
        };
        if is_test_file(name) {
            continue;
        }
        let text = non_test_code(&std::fs::read_to_string(path).unwrap());
        let edges = graph.entry(from.clone()).or_default();
        for to in crate_paths(&text) {
            if to != from && modules.contains(&to) {
                edges.entry(to).or_insert_with(|| name.clone());
            }
        }
    }
    graph
}

/// The cycles of `graph` (its strongly connected components of more than
/// one module), each as its modules and the edges inside it.
fn cycles(
    graph: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
) -> Vec<String> {
    // Reachability is enough at this size: X and Y are in one cycle when
    // each reaches the other.
    let reach = |from: &str| {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for to in graph.get(&m).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
        seen
    };
    let reaches: std::collections::BTreeMap<_, _> =
        graph.keys().map(|m| (m.clone(), reach(m))).collect();
    let mut done = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for m in graph.keys() {
        if done.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let members: Vec<&String> = graph
            .keys()
            .filter(|o| reaches[m].contains(*o) && reaches[*o].contains(m))
            .collect();
        let edges: Vec<String> = members
            .iter()
            .flat_map(|a| {
                graph[*a]
                    .iter()
                    .filter(|(b, _)| members.contains(b))
                    .map(move |(b, why)| format!("{a} -> {b} ({why})"))
            })
            .collect();
        done.extend(members.iter().map(|m| (*m).clone()));
        out.push(edges.join("; "));
    }
    out
}

/// What each top-level module of `src/` may import (docs/ARCHITECTURE.md's
/// layers; the review of 2026-12-07, §2.4). A module not listed may import
/// nothing of the crate. Imports only go down this list.
const MAY_IMPORT: &[(&str, &[&str])] = &[
    ("app", &["*"]),
    (
        "config",
        &[
            "http",
            "service",
            "outbox",
            "interchange",
            "store",
            "domain",
            "ui",
        ],
    ),
    (
        "ui",
        &[
            "http",
            "api",
            "service",
            "projections",
            "store",
            "domain",
            "crypto",
            "bundle",
            "clock",
            "jwks",
            "outbound",
        ],
    ),
    (
        "api",
        &[
            "http",
            "service",
            "projections",
            "store",
            "domain",
            "crypto",
            "bundle",
            "tlog",
            "outbox",
            "interchange",
            "webhooks",
            "control",
            "clock",
            "crls",
            "jwks",
            "outbound",
        ],
    ),
    (
        "http",
        &[
            "service",
            "outbox",
            "projections",
            "tlog",
            "crls",
            "jwks",
            "store",
            "domain",
            "crypto",
            "interchange",
            "clock",
        ],
    ),
    (
        "admin",
        &["service", "store", "domain", "crypto", "devkeys"],
    ),
    (
        "service",
        &[
            "domain",
            "store",
            "crypto",
            "crls",
            "bundle",
            "interchange",
            "outbox",
            "projections",
            "tlog",
            "clock",
            "webhooks",
        ],
    ),
    (
        "outbox",
        &[
            "projections",
            "store",
            "domain",
            "interchange",
            "webhooks",
            "crypto",
            "clock",
            "outbound",
        ],
    ),
    (
        "interchange",
        &[
            "domain", "webhooks", "crypto", "bundle", "outbound", "store",
        ],
    ),
    ("projections", &["domain", "store", "interchange", "crypto"]),
    ("monitor", &["crypto", "store", "outbound"]),
    ("control", &["store"]),
    ("tlog", &["crypto", "store"]),
    ("bundle", &["crypto", "domain", "store"]),
    ("crls", &["crypto", "outbound", "domain"]),
    ("jwks", &["crypto", "outbound"]),
    ("webhooks", &["crypto"]),
    ("devkeys", &["crypto", "domain"]),
    ("outbound", &[]),
    ("clock", &[]),
    ("domain", &["crypto"]),
    ("crypto", &[]),
    ("store", &["crypto"]),
];

/// The import graph of `src/` has no cycle, and every arrow points down
/// the layer table ([`MAY_IMPORT`]).
fn layering_breaks(root: &Path) -> Vec<String> {
    let graph = import_graph(root);
    let mut broken: Vec<String> = cycles(&graph)
        .into_iter()
        .map(|c| format!("import cycle: {c}"))
        .collect();
    for (from, edges) in &graph {
        let allowed = MAY_IMPORT
            .iter()
            .find(|(m, _)| m == from)
            .map_or(&[][..], |(_, a)| *a);
        for (to, why) in edges {
            if !allowed.contains(&"*") && !allowed.contains(&to.as_str()) {
                broken.push(format!("{why}: `{from}` may not import `{to}` (imports only go down: tests/it/tidy.rs MAY_IMPORT)"));
            }
        }
    }
    broken
}

#[test]
fn imports_only_go_down() {
    let _limit = crate::helpers::time_limit();
    let broken = layering_breaks(&src());
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The edge's rules: only the doors and the composition root name the
/// doors; only the composition root reads the configuration; nothing below
/// the edge speaks HTTP.
fn edge_breaks(root: &Path) -> Vec<String> {
    let mut broken = Vec::new();
    for path in rust_files(root) {
        let name = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if is_test_file(&name) {
            continue;
        }
        let text = non_test_code(&std::fs::read_to_string(&path).unwrap());
        let top = top_module(&name).unwrap_or_default();
        let root_file = name == "main.rs" || top == "app";
        let door = top == "api" || top == "ui";
        // The settings may embed the pages' settings type (config sits above ui).
        let names_ui = text.contains("crate::ui") && top != "config";
        if !(door || root_file) && (text.contains("crate::api") || names_ui) {
            broken.push(format!(
                "{name}: names `api` or `ui` (only api, ui, app and main.rs may)"
            ));
        }
        if !(root_file || top == "config") && text.contains("crate::config") {
            broken.push(format!(
                "{name}: reads `config` (only config, app and main.rs may; take a settings type)"
            ));
        }
        let edge = door || root_file || top == "http" || top == "config";
        if !edge {
            for banned in [
                "crate::http",
                "crate::api",
                "actix_web::HttpRequest",
                "HttpRequest",
            ] {
                if text.contains(banned) {
                    broken.push(format!("{name}: `{banned}` below the HTTP edge"));
                }
            }
        }
    }
    broken
}

#[test]
fn only_the_edge_speaks_http_and_only_the_root_reads_config() {
    let _limit = crate::helpers::time_limit();
    let broken = edge_breaks(&src());
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Longest source file outside tests, in lines (split by responsibility).
const MAX_LINES: usize = 700;

fn long_files(root: &Path) -> Vec<String> {
    rust_files(root)
        .into_iter()
        .filter_map(|path| {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            (!is_test_file(&name) && lines > MAX_LINES)
                .then(|| format!("{name}: {lines} lines (at most {MAX_LINES} outside tests)"))
        })
        .collect()
}

#[test]
fn no_source_file_is_over_700_lines() {
    let _limit = crate::helpers::time_limit();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = long_files(&src());
    long.extend(long_files(&root.join("dev/src")));
    assert!(long.is_empty(), "{}", long.join("\n"));
}

/// The rules above can fail: each is run on a scratch tree that breaks it.
#[test]
fn the_layering_rules_fail_when_broken() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    put("lib.rs", "//! x\npub mod domain;\npub mod store;\n");
    put("domain/mod.rs", "//! x\nuse crate::crypto::X;\n");
    put(
        "crypto/mod.rs",
        "//! x\n#[cfg(test)]\nmod tests { use crate::domain::Y; }\n",
    );
    assert!(
        layering_breaks(dir.path()).is_empty(),
        "{:?}",
        layering_breaks(dir.path())
    );
    // An upward import, which also closes a cycle.
    put("crypto/mod.rs", "//! x\nuse crate::domain::Y;\n");
    let broken = layering_breaks(dir.path()).join("\n");
    assert!(
        broken.contains("import cycle: crypto -> domain"),
        "{broken}"
    );
    assert!(
        broken.contains("`crypto` may not import `domain`"),
        "{broken}"
    );
    // The edge's rules.
    put(
        "service/x.rs",
        "//! x\nfn f(r: actix_web::HttpRequest, p: crate::http::problem::Problem) {}\n",
    );
    put(
        "interchange/mod.rs",
        "//! x\nfn f(c: &crate::config::Config) {}\n",
    );
    put("metrics.rs", "//! x\nfn f(s: &crate::api::ops::State) {}\n");
    let broken = edge_breaks(dir.path()).join("\n");
    assert!(
        broken.contains("service/x.rs: `crate::http` below the HTTP edge"),
        "{broken}"
    );
    assert!(
        broken.contains("service/x.rs: `actix_web::HttpRequest`"),
        "{broken}"
    );
    assert!(
        broken.contains("interchange/mod.rs: reads `config`"),
        "{broken}"
    );
    assert!(
        broken.contains("metrics.rs: names `api` or `ui`"),
        "{broken}"
    );
    // The size limit, tests excepted.
    put("big.rs", &"//! x\n".repeat(701));
    put("big_tests.rs", &"//! x\n".repeat(900));
    assert_eq!(
        long_files(dir.path()),
        ["big.rs: 701 lines (at most 700 outside tests)"]
    );
}

/// Test functions of `text` (a `fn` under `#[test]` or `#[tokio::test…]`)
/// whose body does not begin with a time-limit guard,
/// `let _limit = crate::helpers::time_limit…` (tests/it/helpers/limits.rs);
/// read as `tests/tools/time_limits.py` reads them.
fn tests_without_time_limit(text: &str) -> Vec<String> {
    fn is_fn(l: &str) -> Option<&str> {
        let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
        let l = l.strip_prefix("pub ").unwrap_or(l);
        let l = l.strip_prefix("async ").unwrap_or(l);
        l.strip_prefix("fn ")
            .map(|rest| rest.split(['(', '<']).next().unwrap_or(rest).trim())
    }
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut missing = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !(lines[i].starts_with("#[test]") || lines[i].starts_with("#[tokio::test")) {
            i += 1;
            continue;
        }
        let Some(j) = (i + 1..lines.len()).find(|&j| is_fn(lines[j]).is_some()) else {
            break;
        };
        let name = is_fn(lines[j]).unwrap();
        let body = (j..lines.len())
            .find(|&k| lines[k].ends_with('{'))
            .unwrap_or(lines.len());
        let first = lines[(body + 1).min(lines.len())..]
            .iter()
            .find(|l| !l.is_empty());
        if !first.is_some_and(|l| l.starts_with("let _limit = crate::helpers::time_limit")) {
            missing.push(name.to_owned());
        }
        i = body + 1;
    }
    missing
}

/// Every test in tests/it opens with its time limit, so that a test that
/// hangs ends the run at once, named, instead of holding CI until its own
/// timeout. `python3 tests/tools/time_limits.py` inserts the missing ones.
#[test]
fn every_test_opens_with_its_time_limit() {
    let _limit = crate::helpers::time_limit();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for path in rust_files(&root.join("tests/it")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(root).unwrap().display().to_string();
        for test in tests_without_time_limit(&text) {
            missing.push(format!("{name}: {test}"));
        }
    }
    assert!(
        missing.is_empty(),
        "tests without `let _limit = crate::helpers::time_limit();` as their first \
         statement (run `python3 tests/tools/time_limits.py`):\n{}",
        missing.join("\n")
    );

    // The reading itself: a test without the guard is found, sync or async,
    // after other attributes; one with it (any limit) is not.
    let sample = "#[test]\nfn bare() {\n    work();\n}\n\n#[tokio::test(flavor = \"multi_thread\")]\n#[ignore]\nasync fn bare_async(\n    x: u8,\n) {\n    work();\n}\n\n#[test]\nfn guarded() {\n\n    let _limit = crate::helpers::time_limit_secs(9);\n}\n";
    assert_eq!(tests_without_time_limit(sample), ["bare", "bare_async"]);
}

/// `cargo tree` lines `name vX.Y.Z|features` over the given edges, for
/// the packages `selection` picks (`--workspace`, `-p<name>`), sorted and
/// without repeats.
fn resolved_features(edges: &str, selection: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root)
        .args([
            "tree", "-e", edges, "-f", "{p}|{f}", "--prefix", "none", selection,
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('|'))
        .map(|l| l.trim_end_matches(" (*)").to_owned())
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

/// `make run` (`cargo build`) and `make test` (`cargo clippy --all-targets`,
/// `cargo test`) must share one build of RocksDB's C++: every package that
/// librocksdb-sys's build uses (its build script's bindgen and cc, and what
/// they use) resolves to the same features with and without the
/// dev-dependencies. Before Cargo.toml's `[build-dependencies] syn`, the
/// page tests' WebDriver client gave the build-time `syn` the `fold`
/// feature only in the test build, and a fresh machine compiled RocksDB
/// twice (11 more minutes).
#[test]
fn the_run_and_test_builds_share_rocksdbs_cpp() {
    let _limit = crate::helpers::time_limit();
    let package = |l: &String| l.split_once('|').map(|(p, _)| p.to_owned());
    let used: std::collections::BTreeSet<String> =
        resolved_features("normal,build", "-plibrocksdb-sys")
            .iter()
            .filter_map(package)
            .collect();
    assert!(used.iter().any(|p| p.starts_with("bindgen ")), "{used:?}");
    let of_used = |edges: &str| -> Vec<String> {
        resolved_features(edges, "--workspace")
            .into_iter()
            .filter(|l| package(l).is_some_and(|p| used.contains(&p)))
            .collect()
    };
    assert_eq!(
        of_used("normal,build"),
        of_used("normal,build,dev"),
        "a dev-dependency changes the features of a crate RocksDB's build uses: \
         give the normal build the same features (see Cargo.toml's [build-dependencies])"
    );
}
