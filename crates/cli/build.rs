//! Records the git commit the binary is built from for `mailzone --version`
//! (`MAILZONE_GIT_COMMIT` set in the environment wins: packagers building from a tarball).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MAILZONE_GIT_COMMIT");
    let commit = std::env::var("MAILZONE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=MAILZONE_GIT_COMMIT={}", commit.trim());
    for file in head_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The files that change when HEAD moves: HEAD itself, the branch it names, packed-refs.
/// Only existing files are named (a missing one would rebuild every time).
fn head_files() -> Vec<PathBuf> {
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return Vec::new();
    };
    let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .unwrap_or_else(|| git_dir.clone());
    let mut files = vec![
        PathBuf::from(&git_dir).join("HEAD"),
        PathBuf::from(&common).join("packed-refs"),
    ];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(PathBuf::from(&common).join(branch));
    }
    files.into_iter().filter(|f| f.exists()).collect()
}
