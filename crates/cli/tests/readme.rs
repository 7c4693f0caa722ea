//! The README's commands, run as written: every `cargo run` and `mailzone` line of the `sh`
//! blocks of README.md and examples/README.md, in order, in a scratch directory where
//! `examples/` is the repository's. `cargo run --release --` runs the `mailzone` binary this
//! test was built with (a release build inside the suite would cost minutes); that `cargo
//! run` picks that binary at all is checked against `cargo metadata` below. `serve` runs
//! until it prints where it listens, then is stopped.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fenced block of a Markdown file: its info string and its lines.
struct Block {
    lang: String,
    lines: Vec<String>,
}

fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match (&mut open, trimmed.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    lang: info.trim().to_string(),
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(block), None) => block.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    blocks
}

/// The commands of a block: comments and blank lines dropped.
fn commands(block: &Block) -> impl Iterator<Item = &str> {
    block
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn is_mailzone_command(line: &str) -> bool {
    line.starts_with("cargo run") || line.starts_with("mailzone ")
}

fn readme_files() -> Vec<(&'static str, String)> {
    ["README.md", "examples/README.md"]
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(repo_root().join(name)).unwrap();
            (name, text)
        })
        .collect()
}

/// A `cargo run`/`mailzone` line outside an `sh` block would escape this test (`text`
/// blocks hold synopses such as `mailzone records --config FILE [DOMAIN...]`).
#[test]
fn every_command_line_is_in_a_runnable_block() {
    for (file, text) in readme_files() {
        for block in fenced_blocks(&text) {
            if block.lang == "sh" || block.lang == "text" {
                continue;
            }
            for line in commands(&block) {
                assert!(
                    !is_mailzone_command(line),
                    "{file}: `{line}` is in a ```{} block: put it in a ```sh block (run by this test)",
                    block.lang
                );
            }
        }
    }
}

/// `cargo run` at the workspace root must find exactly one binary: the default members
/// hold only the `mailzone` binary.
#[test]
fn cargo_run_at_the_root_picks_the_mailzone_binary() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let defaults: Vec<&str> = meta["workspace_default_members"]
        .as_array()
        .expect("cargo metadata lists the default members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let binaries: Vec<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| defaults.contains(&p["id"].as_str().unwrap_or_default()))
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(binaries, ["mailzone"], "default members: {defaults:?}");
}

#[test]
fn readme_commands_run_as_written() {
    if !mailzone_testkit::require_tools(&["knotd", "keymgr", "kdig"]) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        repo_root().join("examples"),
        scratch.path().join("examples"),
    )
    .unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mailzone")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let _stop_knot = StopTour;
    let mut ran = 0;
    for (file, text) in readme_files() {
        for block in fenced_blocks(&text).iter().filter(|b| b.lang == "sh") {
            for line in commands(block) {
                let tour_step = line.starts_with("examples/tour/") || line.starts_with("kdig ");
                if !is_mailzone_command(line) && !tour_step {
                    // scripts/test and cargo install are what this suite runs in and what
                    // the README's reader does once; not run from inside the suite.
                    continue;
                }
                let line = line.replace("cargo run --release -- ", "mailzone ");
                if line.starts_with("mailzone serve") {
                    run_serve(&line, scratch.path(), &path, file);
                } else {
                    run_line(&line, scratch.path(), &path, file);
                }
                ran += 1;
            }
        }
    }
    assert!(ran >= 10, "only {ran} commands found in the READMEs");
}

/// Stops the tour's Knot even when a command failed half-way.
struct StopTour;

impl Drop for StopTour {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("examples/tour/knot.sh"))
            .arg("stop")
            .output();
    }
}

fn run_line(line: &str, dir: &Path, path: &str, file: &str) {
    let out = Command::new("bash")
        .args(["-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("MAILZONE_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{file}: `{line}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `serve` and waits for the line saying where the API listens; then stops it.
fn run_serve(line: &str, dir: &Path, path: &str, file: &str) {
    let mut child = Command::new("bash")
        .args(["-c", &format!("exec {line}")])
        .current_dir(dir)
        .env("PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(out) if out.contains("mailzone: API on ") => break true,
            Ok(out) => seen.push(out),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        listening,
        "{file}: `{line}` did not start:\n{}\n{}",
        seen.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        seen.iter().any(|l| l.contains("admin API token")),
        "{file}: the first start prints the admin token before the API line: {seen:?}"
    );
}
