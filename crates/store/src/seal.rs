//! Secrets at rest: DKIM private keys are stored sealed with ChaCha20-Poly1305
//! (RFC 8439) under a 256-bit key kept in `mailzone.key` (mode 0600) beside the database,
//! so a copy of the database alone (a backup, a dump, a PostgreSQL replica) reveals no
//! private key. The row's identity (domain and selector) is the associated data: a sealed
//! value copied into another row does not open.
//!
//! Stored form: `sealed:v1:` + base64(nonce ‖ ciphertext ‖ tag), 12-byte random nonce.
//! Values without the prefix are plaintext from before sealing; the store seals them on
//! open.

use std::fs::{OpenOptions, Permissions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use zeroize::Zeroizing;

use crate::StoreError;

/// Name of the sealing key file inside the state directory.
pub const KEY_FILE_NAME: &str = "mailzone.key";
const PREFIX: &str = "sealed:v1:";
const NONCE_LEN: usize = 12;

/// Seals and opens secrets with the state directory's key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    path: PathBuf,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Reads the key file in `state_dir`, creating it (0600, 32 random bytes in base64) when
    /// there is none.
    pub fn open_or_create(state_dir: &Path) -> Result<Sealer, StoreError> {
        let path = state_dir.join(KEY_FILE_NAME);
        let fail = |source: io::Error| StoreError::SealingKey {
            path: path.clone(),
            reason: source.to_string(),
        };
        if !path.exists() {
            create_key_file(&path).map_err(fail)?;
        }
        std::fs::set_permissions(&path, Permissions::from_mode(0o600)).map_err(fail)?;
        let mut text = Zeroizing::new(String::new());
        OpenOptions::new()
            .read(true)
            .open(&path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(fail)?;
        let bad = || StoreError::SealingKey {
            path: path.clone(),
            reason: "it does not hold 32 bytes in base64; restore it from a backup".into(),
        };
        let bytes = Zeroizing::new(BASE64.decode(text.trim()).map_err(|_| bad())?);
        if bytes.len() != 32 {
            return Err(bad());
        }
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| bad())?,
            path,
        })
    }

    /// Whether a stored value is sealed (not plaintext from before sealing).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Seals `secret`, bound to `context` (the row's identity).
    pub fn seal(&self, secret: &str, context: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message under 256 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", BASE64.encode(out))
    }

    /// Opens a stored value; a value without the prefix is plaintext from before sealing.
    /// The error says why, never what.
    pub fn open(&self, stored: &str, context: &str) -> Result<Zeroizing<String>, String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(Zeroizing::new(stored.to_string()));
        };
        let raw = BASE64
            .decode(encoded)
            .map_err(|_| "the sealed value is not base64".to_string())?;
        if raw.len() < NONCE_LEN + 16 {
            return Err("the sealed value is truncated".into());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                format!(
                    "it does not open with the key in {}: the key file was replaced or the value damaged; restore the key file from the backup made with this database",
                    self.path.display()
                )
            })?;
        String::from_utf8(plain)
            .map(Zeroizing::new)
            .map_err(|_| "the sealed value is not UTF-8".into())
    }
}

/// Writes a new key to a private temporary file, then links it into place: the file
/// appears whole or not at all, and when two processes race, the first link wins and both
/// read the same key.
fn create_key_file(path: &Path) -> io::Result<()> {
    let nonce: u64 = rand::random();
    let tmp = path.with_file_name(format!(".{KEY_FILE_NAME}.{nonce:016x}"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let key: Zeroizing<[u8; 32]> = Zeroizing::new(rand::random());
    let text = Zeroizing::new(BASE64.encode(key.as_slice()) + "\n");
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_context_binding() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::open_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = sealer.seal("-----BEGIN PRIVATE KEY-----", "example.org/s1");
        assert!(Sealer::is_sealed(&sealed) && !sealed.contains("PRIVATE"));
        assert_ne!(
            sealed,
            sealer.seal("-----BEGIN PRIVATE KEY-----", "example.org/s1"),
            "fresh nonce"
        );
        assert_eq!(
            sealer.open(&sealed, "example.org/s1").unwrap().as_str(),
            "-----BEGIN PRIVATE KEY-----"
        );
        assert!(
            sealer.open(&sealed, "example.org/s2").is_err(),
            "bound to its row"
        );
        assert_eq!(sealer.open("plain", "x").unwrap().as_str(), "plain");
        // The same file gives the same key; another file does not open the value.
        let again = Sealer::open_or_create(dir.path()).unwrap();
        assert!(again.open(&sealed, "example.org/s1").is_ok());
        let other = tempfile::tempdir().unwrap();
        let stranger = Sealer::open_or_create(other.path()).unwrap();
        let e = stranger.open(&sealed, "example.org/s1").unwrap_err();
        assert!(e.contains("mailzone.key") && !e.contains("PRIVATE"), "{e}");
    }
}
