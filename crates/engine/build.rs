//! Sets `MAILZONE_PLANNING_SOURCE`: a SHA-256 of `src/records.rs`, the engine's part of
//! planning (which DKIM keys are published, the `--types` filter). A zone's plan inputs
//! digest includes it beside the `records` crate's own, so that a build planning other
//! records from the same inputs never trusts a digest remembered by another build.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

fn main() {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let planning = crate_dir.join("src/records.rs");
    println!("cargo:rerun-if-changed={}", planning.display());
    let contents = std::fs::read(&planning).expect("src/records.rs is readable");
    let digest: String = Sha256::digest(&contents)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=MAILZONE_PLANNING_SOURCE={digest}");
}
