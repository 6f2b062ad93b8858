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
