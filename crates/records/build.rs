//! Sets `MAILZONE_PLANNER_SOURCE`: a SHA-256 of this crate's sources and of the workspace's
//! `Cargo.lock`. The planner's records are a pure function of its inputs and of this code:
//! a digest of the inputs is only comparable between runs of the same code, so it is
//! taken together with this one (`planner::inputs`). A build from a dirty tree or a
//! tarball gets its own value, which a git commit would not give.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut files = Vec::new();
    collect(&crate_dir.join("src"), &mut files);
    files.sort();
    files.push(crate_dir.join("Cargo.toml"));
    let lock = crate_dir.join("../../Cargo.lock");
    if lock.is_file() {
        files.push(lock);
    }
    let mut hasher = Sha256::new();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let relative = file.strip_prefix(&crate_dir).unwrap_or(file);
        let contents = std::fs::read(file).expect("a source file of this crate is readable");
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(&contents);
    }
    println!("cargo:rerun-if-changed={}", crate_dir.join("src").display());
    let digest: String = hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=MAILZONE_PLANNER_SOURCE={digest}");
}

/// Every file under `dir`, recursively.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("the source directory is readable");
    for entry in entries {
        let path = entry.expect("a directory entry is readable").path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
