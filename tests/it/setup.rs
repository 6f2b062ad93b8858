//! The set-up steps (`ops/dev-deps.sh`, run by `make run` and `make test`;
//! `ops/browser-deps.sh` and `ops/systemd-deps.sh`, run by `make test-deps`)
//! against fake filesystem roots, so that what it decides on a fresh machine
//! is proven here whatever this machine has installed.

use std::path::Path;
use std::process::{Command, Output};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/dev-deps.sh")
}

/// Runs the script with `root` as the filesystem root for its search, no
/// llvm-config, no library path variables, and `bin` first on PATH.
fn run(root: &Path, bin: &Path, args: &[&str], libclang_path: Option<&Path>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .args(args)
        .env("VANTHU_DEPS_ROOT", root)
        .env("LLVM_CONFIG_PATH", "/nonexistent/llvm-config")
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LIBRARY_PATH")
        .env_remove("LIBCLANG_PATH")
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        );
    if let Some(p) = libclang_path {
        cmd.env("LIBCLANG_PATH", p);
    }
    cmd.output().expect("run ops/dev-deps.sh")
}

/// A fake shared library: the ELF magic and a little more.
fn touch(root: &Path, rel: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"\x7fELF\x02\x01\x01\0fake shared library").unwrap();
}

/// Something at a library's name that is not one (an empty file, as a
/// /dev/null bind mount or a broken package would leave).
fn not_a_library(root: &Path, rel: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"").unwrap();
}

/// This machine's image: Debian's libclang-cpp14 (the C++ library, which
/// bindgen cannot load) and no libclang.
fn fresh_machine() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    touch(root.path(), "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14");
    touch(root.path(), "usr/lib/llvm-14/lib/libclang-cpp.so.14");
    touch(root.path(), "usr/lib/llvm-14/lib/libLLVM-14.so");
    root
}

#[test]
fn libclang_cpp_alone_is_not_libclang() {
    let _limit = crate::helpers::time_limit();
    let root = fresh_machine();
    // Names without a library behind them do not count either.
    not_a_library(root.path(), "usr/lib/x86_64-linux-gnu/libclang-14.so.1");
    not_a_library(root.path(), "usr/lib/llvm-14/lib/libclang.so.1");
    let bin = tempfile::tempdir().unwrap();
    let out = run(root.path(), bin.path(), &["--check"], None);
    assert!(
        !out.status.success(),
        "libclang-cpp (or a non-library) was taken for libclang: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("libclang-dev"));

    // LIBCLANG_PATH pointing at a directory with only libclang-cpp: still none.
    let dir = root.path().join("usr/lib/llvm-14/lib");
    let out = run(root.path(), bin.path(), &["--check"], Some(&dir));
    assert!(!out.status.success());
}

#[test]
fn libclang_is_found_where_clang_sys_looks() {
    let _limit = crate::helpers::time_limit();
    for rel in [
        "usr/lib/llvm-14/lib/libclang.so.1",
        "usr/lib/llvm-16/lib/libclang-16.so",
        "usr/lib/x86_64-linux-gnu/libclang-14.so.1",
        "usr/local/lib/libclang.so",
        "usr/lib64/libclang.so.13",
    ] {
        let root = fresh_machine();
        touch(root.path(), rel);
        let bin = tempfile::tempdir().unwrap();
        let out = run(root.path(), bin.path(), &["--check"], None);
        assert!(out.status.success(), "{rel} not found");
        let found = String::from_utf8_lossy(&out.stdout);
        assert!(found.trim().ends_with(rel), "{rel}: found {found}");
    }
    // LIBCLANG_PATH names the one place to look, and a file there counts.
    let root = fresh_machine();
    touch(root.path(), "opt/clang/libclang.so.1");
    let bin = tempfile::tempdir().unwrap();
    let file = root.path().join("opt/clang/libclang.so.1");
    assert!(run(root.path(), bin.path(), &["--check"], Some(&file))
        .status
        .success());
    assert!(run(
        root.path(),
        bin.path(),
        &["--check"],
        Some(&root.path().join("opt/clang"))
    )
    .status
    .success());
}

/// An `apt-get` in `bin` that only writes its arguments, a line per call,
/// to the file it returns.
fn fake_apt_get(bin: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let calls = bin.join("calls");
    let apt = bin.join("apt-get");
    std::fs::write(
        &apt,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).unwrap();
    calls
}

/// Without `--check`, a machine without libclang gets libclang-dev installed
/// (as root) or is told the exact command (otherwise); never silence.
#[test]
fn a_fresh_machine_installs_or_names_libclang_dev() {
    let _limit = crate::helpers::time_limit();
    let root = fresh_machine();
    let bin = tempfile::tempdir().unwrap();
    let calls = fake_apt_get(bin.path());
    let out = run(root.path(), bin.path(), &[], None);
    let apt_calls = std::fs::read_to_string(&calls).unwrap_or_default();
    let installed = apt_calls.contains("install") && apt_calls.contains("libclang-dev");
    let told =
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("libclang-dev");
    assert!(
        installed || told,
        "neither installed nor named libclang-dev: {apt_calls:?} {out:?}"
    );

    // With libclang present nothing is installed.
    touch(root.path(), "usr/lib/llvm-14/lib/libclang.so.1");
    std::fs::remove_file(&calls).ok();
    let out = run(root.path(), bin.path(), &[], None);
    assert!(out.status.success(), "{out:?}");
    assert!(!calls.exists(), "apt-get was called with libclang present");
}

/// `ops/browser-deps.sh` (run by `make test-deps`) against a fake root: a
/// machine without Chromium and its driver gets Debian's `chromium` and
/// `chromium-driver` installed (as root) or is told the command; with both
/// present nothing is installed, and `--check` reports either way.
#[test]
fn a_fresh_machine_installs_or_names_the_browser() {
    let _limit = crate::helpers::time_limit();
    use std::os::unix::fs::PermissionsExt;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/browser-deps.sh");
    let root = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let calls = fake_apt_get(bin.path());
    let run = |args: &[&str]| {
        Command::new("bash")
            .arg(&script)
            .args(args)
            .env("VANTHU_BROWSER_ROOT", root.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.path().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .output()
            .unwrap()
    };
    let out = run(&["--check"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chromium-driver"));
    let out = run(&[]);
    let apt_calls = std::fs::read_to_string(&calls).unwrap_or_default();
    let installed = apt_calls.contains("install")
        && apt_calls.contains("chromium")
        && apt_calls.contains("chromium-driver");
    let told =
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("chromium-driver");
    assert!(installed || told, "{apt_calls:?} {out:?}");

    // The browser alone is not enough: the tests drive it through its driver.
    for (rel, present) in [("usr/bin/chromium", false), ("usr/bin/chromedriver", true)] {
        let path = root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(run(&["--check"]).status.success(), present, "{rel}");
    }
    std::fs::remove_file(&calls).ok();
    assert!(run(&[]).status.success());
    assert!(!calls.exists(), "apt-get was called with both present");
}

/// `ops/systemd-deps.sh` (run by `make test-deps`) against a fake root: a
/// machine without systemd-analyze gets Debian's `systemd` installed (as
/// root) or is told the command; with it present nothing is installed, and
/// `--check` reports either way.
#[test]
fn a_fresh_machine_installs_or_names_systemd_analyze() {
    let _limit = crate::helpers::time_limit();
    use std::os::unix::fs::PermissionsExt;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/systemd-deps.sh");
    let root = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let calls = fake_apt_get(bin.path());
    let run = |args: &[&str]| {
        Command::new("bash")
            .arg(&script)
            .args(args)
            .env("VANTHU_SYSTEMD_ROOT", root.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.path().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .output()
            .unwrap()
    };
    let out = run(&["--check"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("install systemd"));
    let out = run(&[]);
    let apt_calls = std::fs::read_to_string(&calls).unwrap_or_default();
    let installed = apt_calls.contains("install") && apt_calls.contains("systemd");
    let told = !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("apt-get install -y systemd");
    assert!(installed || told, "{apt_calls:?} {out:?}");

    let path = root.path().join("usr/bin/systemd-analyze");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(run(&["--check"]).status.success());
    std::fs::remove_file(&calls).ok();
    assert!(run(&[]).status.success());
    assert!(
        !calls.exists(),
        "apt-get was called with systemd-analyze present"
    );
}
