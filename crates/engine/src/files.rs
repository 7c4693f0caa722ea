//! Reading the files a config names (certificates, keys, secrets, the config itself) with a
//! bound: a path that names a device, a FIFO or a huge file gets a clear error instead of
//! filling memory (`/dev/zero`) or blocking forever (a FIFO without a writer).

use std::io::{self, Read};
use std::path::Path;

use mailzone_records::SecretSource;
use zeroize::Zeroizing;

/// The most a certificate chain, a private key or a secret file may hold. A chain of a
/// few certificates is some kilobytes; this leaves room for long ones.
pub const REFERENCED_FILE_LIMIT: u64 = 1 << 20;

/// The most a config file may hold: room for the domains of a large hosting platform.
pub const CONFIG_FILE_LIMIT: u64 = 256 << 20;

/// The bytes of the regular file at `path`, refused when it is not a regular file or holds
/// more than `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Checked before opening: opening a FIFO for reading blocks until a writer comes.
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {}; is it the right file?", size(limit)),
        )
    };
    if metadata.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow after the check: never read more than the limit allows.
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text.
pub fn read_to_string_limited(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// A secret's text and the config key that gave it: `key` itself when inline, the file's
/// key path when read from a file, `{key}Env` from an environment variable. The error,
/// `config_file: key: reason`, never holds the secret.
pub fn read_secret(
    config_file: &Path,
    key: &str,
    source: &SecretSource,
) -> Result<(Zeroizing<String>, String), String> {
    let fail = |key: &str, reason: String| format!("{}: {key}: {reason}", config_file.display());
    match source {
        SecretSource::Inline(text) => Ok((Zeroizing::new(text.to_string()), key.to_string())),
        SecretSource::File(file) => {
            let text = read_to_string_limited(&file.path, REFERENCED_FILE_LIMIT).map_err(|e| {
                fail(
                    &file.key_path,
                    format!("cannot read {}: {e}", file.path.display()),
                )
            })?;
            Ok((Zeroizing::new(text), file.key_path.clone()))
        }
        SecretSource::Env(var) => {
            let env_key = format!("{key}Env");
            let text = std::env::var(var).map_err(|_| {
                fail(
                    &env_key,
                    format!("the environment variable {var} is not set"),
                )
            })?;
            Ok((Zeroizing::new(text), env_key))
        }
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_refused_without_reading() {
        let err = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Would block forever if the FIFO were opened.
        assert_eq!(
            read_limited(&fifo, 1024).unwrap_err().to_string(),
            "not a regular file"
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pem");
        std::fs::write(&path, vec![b'a'; 2048]).unwrap();
        let err = read_limited(&path, 1024).unwrap_err();
        assert_eq!(err.to_string(), "larger than 1 KiB; is it the right file?");
        assert_eq!(read_limited(&path, 2048).unwrap().len(), 2048);
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_to_string_limited(&path, 10).unwrap_err().to_string(),
            "not UTF-8 text"
        );
    }
}
