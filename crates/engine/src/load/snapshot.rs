//! The snapshot of the config's validated domains in the state directory
//! (`records::config::snapshot`): taken by `apply` of a config it had to parse, taken up
//! by any later load of the same text beside that state directory, which then parses only
//! the file's other tables. A snapshot that is missing, of another text, or unreadable is
//! passed over in silence: the text is parsed as it always was.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mailzone_records::Config;
use mailzone_records::config::snapshot;

use super::LoadedConfig;

/// The snapshot's file in the state directory.
pub const SNAPSHOT_FILE_NAME: &str = "config-snapshot.jsonl";

/// The config of the `keyed` text from the snapshot in `state_dir`, when that snapshot was
/// taken of this text (see [`snapshot::read`] for what is given back otherwise).
pub(super) fn read(state_dir: &Path, keyed: snapshot::Keyed) -> Result<Config, snapshot::NotTaken> {
    let Ok(file) = File::open(state_dir.join(SNAPSHOT_FILE_NAME)) else {
        return Err(snapshot::NotTaken::Other(keyed));
    };
    let input = BufReader::with_capacity(64 * 1024, file);
    let config = snapshot::read(input, keyed)?;
    tracing::debug!("the config's domains taken from {SNAPSHOT_FILE_NAME}");
    Ok(config)
}

/// Takes the snapshot of `loaded` into `state_dir` when the load parsed its domains (none
/// when they came from a snapshot already, the file was small, or the service's API
/// added objects). The file, mode 0600 like the rest of the state, is written beside and
/// renamed over the last one, so a reader sees one snapshot whole or the other.
pub fn remember(state_dir: &Path, loaded: &LoadedConfig) -> std::io::Result<()> {
    let Some(header) = &loaded.snapshot_header else {
        return Ok(());
    };
    if !state_dir.is_dir() {
        // A run that failed before it made its state directory.
        return Ok(());
    }
    let path = state_dir.join(SNAPSHOT_FILE_NAME);
    let tmp = unique_beside(&path);
    let written = write_to(&tmp, header, &loaded.config);
    let renamed = written.and_then(|()| std::fs::rename(&tmp, &path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

fn write_to(tmp: &Path, header: &snapshot::Header, config: &Config) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    snapshot::write(&mut out, header, config)?;
    out.flush()
}

/// A name beside `path` that no other run writes at the same time.
fn unique_beside(path: &Path) -> PathBuf {
    path.with_extension(format!(
        "tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ))
}
