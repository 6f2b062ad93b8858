//! docs/OPERATIONS.md as a new operator reads it: every `sh` block run as
//! written, in the page's order, on a scratch file system. `/etc/vanthu`,
//! `/var/lib` and `/srv` live under a temporary root, `/etc/vanthu/vanthu.toml`
//! is `ops/vanthu.example.toml` with the operator's own keys, port 8080 is a
//! free port (also as `VANTHU_LISTEN`, for the lines that take the default), and `keys-dev` in the working directory is this run's
//! development keys. `make` lines are skipped (CI runs `make test` itself).
//! A `vanthu serve` line runs in the background until the next one or the
//! block's end, then gets SIGTERM and must exit 0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `sh` blocks of a Markdown page: their commands, each with its
/// continuation lines joined and its trailing comment dropped.
fn sh_blocks(markdown: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in markdown.lines() {
        let t = line.trim();
        match (&mut current, t) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(cmds), _) => {
                let code = match t.find(" # ") {
                    Some(i) if !t.starts_with('#') => t[..i].trim_end(),
                    _ if t.starts_with('#') => "",
                    _ => t,
                };
                match code.strip_suffix('\\') {
                    Some(part) => pending.push_str(part),
                    None => {
                        pending.push_str(code);
                        let cmd = std::mem::take(&mut pending);
                        if !cmd.trim().is_empty() {
                            cmds.push(cmd.trim().to_owned());
                        }
                    }
                }
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Absolute system paths moved under `root`, port 8080 to `port`.
fn rewrite(text: &str, root: &Path, port: u16) -> String {
    let root = root.display().to_string();
    let mut out = text.replace("8080", &port.to_string());
    for dir in ["/etc/vanthu", "/var/lib/", "/srv/"] {
        for before in [" ", "=", "\"", "'"] {
            out = out.replace(&format!("{before}{dir}"), &format!("{before}{root}{dir}"));
        }
        if out.starts_with(dir) {
            out = format!("{root}{out}");
        }
    }
    out
}

/// `name=value` alone on its line (spaces only inside `$(…)`): a shell
/// variable the block's later lines use.
fn is_assignment(line: &str) -> bool {
    let Some((name, value)) = line.split_once('=') else {
        return false;
    };
    let mut depth = 0;
    let mut outside = String::new();
    for (i, c) in value.char_indices() {
        if value[i..].starts_with("$(") {
            depth += 1;
        } else if c == ')' && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            outside.push(c);
        }
    }
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !outside.contains(char::is_whitespace)
}

/// `bash -c script` in `cwd` with the built binaries first on PATH and
/// the default address's port moved to `port` (`VANTHU_LISTEN`).
fn bash(script: &str, cwd: &Path, port: u16) -> Command {
    let bin = Path::new(crate::helpers::VANTHU).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(cwd)
        .env("PATH", path)
        .env("VANTHU_LOG", "info,vanthu=debug")
        .env("VANTHU_LISTEN", format!("127.0.0.1:{port}"));
    for (k, _) in std::env::vars() {
        if k.starts_with("VANTHU_") && k != "VANTHU_LOG" && k != "VANTHU_LISTEN" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A `vanthu serve` line started in the background, once it listens.
fn start(script: &str, cwd: &Path, port: u16) -> Child {
    let (_, log) = crate::helpers::server_log();
    // `A=1 exec vanthu serve`: SIGTERM reaches the service, not a shell.
    let words: Vec<&str> = script.split(' ').collect();
    let env = words.iter().take_while(|w| w.contains('=')).count();
    let exec = format!("{} exec {}", words[..env].join(" "), words[env..].join(" "));
    let mut child = bash(&exec, cwd, port)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("vanthu listening on ") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        panic!("`{script}` did not start listening (its log is in target/test-logs)");
    }
    child
}

fn stop(mut child: Child, script: &str) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "`{script}` exited {status} on SIGTERM");
}

#[test]
fn the_operations_page_runs_as_written() {
    let _limit = crate::helpers::time_limit();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(repo.join("docs/OPERATIONS.md")).unwrap();
    let blocks = sh_blocks(&page);
    assert!(blocks.len() >= 4, "{blocks:?}");

    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    let cwd = scratch.path().join("home");
    std::fs::create_dir_all(&cwd).unwrap();
    std::os::unix::fs::symlink(crate::helpers::keys_dir(), cwd.join("keys-dev")).unwrap();
    let port = crate::helpers::free_port();
    // The installation: the operator's keys, the example configuration.
    let keys = crate::helpers::own_keys();
    let etc = root.join("etc/vanthu");
    std::fs::create_dir_all(&etc).unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(keys.path())
        .arg(etc.join("keys"))
        .status()
        .unwrap();
    assert!(copied.success());
    let example = std::fs::read_to_string(repo.join("ops/vanthu.example.toml")).unwrap();
    std::fs::write(etc.join("vanthu.toml"), rewrite(&example, &root, port)).unwrap();
    for dir in ["var/lib", "srv/backups"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }

    let mut ran = Vec::new();
    for block in blocks {
        let mut server: Option<(Child, String)> = None;
        let mut vars = String::new();
        for cmd in block {
            if cmd.starts_with("make ") {
                continue;
            }
            let script = rewrite(&cmd, &root, port);
            if let Some((child, s)) = server.take() {
                if script.contains("vanthu serve") {
                    stop(child, &s);
                } else {
                    server = Some((child, s));
                }
            }
            if script.contains("vanthu serve") {
                server = Some((start(&script, &cwd, port), script));
            } else if is_assignment(&script) {
                // Evaluated once, as a shell would: `$(date …)` must not
                // change between the lines that use the variable.
                let name = script.split('=').next().unwrap();
                let out = bash(
                    &format!("{vars}{script}; printf %s \"${name}\""),
                    &cwd,
                    port,
                )
                .output()
                .unwrap();
                assert!(out.status.success(), "`{cmd}`");
                let value = String::from_utf8(out.stdout).unwrap();
                vars.push_str(&format!("{name}='{}'\n", value.replace('\'', "'\\''")));
            } else {
                let out = bash(&format!("{vars}{script}"), &cwd, port)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "`{cmd}` failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            ran.push(cmd);
        }
        if let Some((child, s)) = server {
            stop(child, &s);
        }
    }
    // The page's stations were all visited.
    for needle in [
        "vanthu serve --config",
        "vanthu admin init",
        "vanthu probe",
        "curl --cacert",
        "vanthu backup",
        "vanthu restore",
        "vanthu check",
    ] {
        assert!(
            ran.iter().any(|c| c.contains(needle)),
            "{needle} not run: {ran:?}"
        );
    }
}

/// Every `vanthu …` command the page names in its prose is a command of
/// this build (`vanthu <sub> [<sub>] --help` answers).
#[test]
fn every_command_the_page_names_exists() {
    let _limit = crate::helpers::time_limit();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = std::collections::BTreeSet::new();
    for doc in ["docs/OPERATIONS.md", "docs/TRANSPARENCY.md", "README.md"] {
        let page = std::fs::read_to_string(repo.join(doc)).unwrap();
        for (i, _) in page.match_indices("`vanthu ") {
            let rest = &page[i + 8..];
            let words: Vec<&str> = rest
                .split(['`', '\n'])
                .next()
                .unwrap()
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .take(2)
                .collect();
            // `vanthu listening on …` is what serve prints, not a command.
            if !words.is_empty() && words[0] != "listening" {
                seen.insert(words.join(" "));
            }
        }
    }
    assert!(seen.len() >= 8, "{seen:?}");
    for cmd in &seen {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        let (ok, text) = crate::helpers::vanthu_text(&[&args[..], &["--help"]].concat());
        if !ok && args.len() == 2 {
            // `vanthu rebuild projections`: the second word is prose.
            args.pop();
            let (ok, text) = crate::helpers::vanthu_text(&[&args[..], &["--help"]].concat());
            assert!(ok, "`vanthu {cmd}`: {text}");
        } else {
            assert!(ok, "`vanthu {cmd}`: {text}");
        }
    }
}
