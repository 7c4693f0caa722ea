//! The certificate's key (reused, or the next one made a renewal ahead for TLSA, RFC 7671
//! §8.1), the CSR, the chain's check and the files written atomically with their modes.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mailzone_records::AcmeSettings;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PublicKeyData as _};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{EngineError, clock};

use super::*;

/// `reuseKey = false`: where the key of the *next* renewal waits, beside the private key
/// (`mail.key` → `mail.key.next`, 0600). It is made one renewal ahead, so its `3 1 1` is
/// published as the next key long before a certificate uses it (RFC 7671 §8.1).
pub fn next_key_path(private_key: &Path) -> PathBuf {
    let mut name = private_key.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// The SHA-256 of the SubjectPublicKeyInfo of the waiting next key (`reuseKey = false`),
/// `None` when there is none yet: the `3 1 1` digest published ahead of the switch.
pub fn next_key_digest(private_key: &Path) -> Result<Option<Vec<u8>>, String> {
    let path = next_key_path(private_key);
    let text =
        match crate::files::read_to_string_limited(&path, crate::files::REFERENCED_FILE_LIMIT) {
            Ok(text) => zeroize::Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
    let key = KeyPair::from_pem(&text).map_err(|_| {
        format!(
            "{} is not a PEM private key mailzone can use",
            path.display()
        )
    })?;
    Ok(Some(mailzone_records::tlsa::spki_sha256(
        &key.subject_public_key_info(),
    )))
}

/// The key for this order: with `reuseKey`, the existing key when it can be read; without,
/// the announced next key when one waits (`next_key_path`); else a new ECDSA P-256 key.
pub(crate) fn certificate_key(settings: &AcmeSettings) -> Result<(KeyPair, bool), EngineError> {
    let path = &settings.private_key.path;
    if !settings.reuse_key {
        let next = next_key_path(path);
        if let Ok(text) =
            crate::files::read_to_string_limited(&next, crate::files::REFERENCED_FILE_LIMIT)
        {
            let text = zeroize::Zeroizing::new(text);
            if let Ok(key) = KeyPair::from_pem(&text) {
                return Ok((key, false));
            }
            tracing::warn!(
                "{} is not a usable key; a new key is made instead (it was not announced)",
                next.display()
            );
        }
    }
    if settings.reuse_key {
        match crate::files::read_to_string_limited(path, crate::files::REFERENCED_FILE_LIMIT) {
            Ok(text) => {
                let text = zeroize::Zeroizing::new(text);
                let key = KeyPair::from_pem(&text).map_err(|_| {
                    EngineError::Usage(format!(
                        "{}: {} is not a PEM private key mailzone can use (ECDSA P-256/P-384, Ed25519 or RSA in PKCS#8); move it away to get a new key",
                        settings.private_key.key_path,
                        path.display()
                    ))
                })?;
                return Ok((key, true));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(EngineError::Usage(format!(
                    "{}: cannot read {}: {e}",
                    settings.private_key.key_path,
                    path.display()
                )));
            }
        }
    }
    let key = KeyPair::generate()
        .map_err(|e| EngineError::Usage(format!("cannot generate a private key: {e}")))?;
    Ok((key, false))
}

/// A CSR (RFC 2986) for the names, with an empty subject: the names are in the SAN.
pub(crate) fn csr(settings: &AcmeSettings, key: &KeyPair) -> Result<Vec<u8>, EngineError> {
    let fail = |e: rcgen::Error| EngineError::Usage(format!("cannot make the CSR: {e}"));
    let names: Vec<String> = settings
        .names
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    let mut params = CertificateParams::new(names).map_err(fail)?;
    params.distinguished_name = DistinguishedName::new();
    Ok(params.serialize_request(key).map_err(fail)?.der().to_vec())
}

/// The issued chain is for our key and our names, or it is not written.
pub(crate) fn check_chain(
    settings: &AcmeSettings,
    chain: &str,
    key: &KeyPair,
) -> Result<Current, EngineError> {
    let fail = |reason: String| EngineError::Acme {
        directory: settings.directory.clone(),
        step: "checking the certificate",
        reason,
        transient: false,
    };
    let der =
        leaf_der(chain.as_bytes()).ok_or_else(|| fail("no certificate in the answer".into()))?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| fail(format!("unreadable leaf: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(fail(
            "the leaf certificate is not for the key of the CSR".into(),
        ));
    }
    let leaf = parse_leaf(&der).ok_or_else(|| fail("unreadable leaf".into()))?;
    let wanted: BTreeSet<String> = settings
        .names
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    if leaf.names != wanted {
        return Err(fail(format!(
            "the certificate names {:?}, not the requested {:?}",
            leaf.names, wanted
        )));
    }
    Ok(leaf)
}

/// Writes the key (unless reused) and the chain, each to a temporary file beside its target
/// then renamed over it: a reader sees the old file or the new one, never half of one.
pub(crate) fn write_files(
    settings: &AcmeSettings,
    chain: &str,
    key: &KeyPair,
    reused: bool,
) -> Result<(), EngineError> {
    let key_file = &settings.private_key;
    let cert_file = &settings.certificate;
    let fail = |file: &mailzone_records::FileRef, e: std::io::Error| {
        EngineError::Usage(format!(
            "{}: cannot write {}: {e}",
            file.key_path,
            file.path.display()
        ))
    };
    for file in [key_file, cert_file] {
        if let Some(dir) = file.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(file, e))?;
        }
    }
    let key_tmp = if reused {
        None
    } else {
        let pem = zeroize::Zeroizing::new(key.serialize_pem());
        Some(write_temp(&key_file.path, pem.as_bytes(), KEY_MODE).map_err(|e| fail(key_file, e))?)
    };
    let cert_tmp =
        write_temp(&cert_file.path, chain.as_bytes(), CERT_MODE).map_err(|e| fail(cert_file, e))?;
    if let Some(tmp) = key_tmp {
        std::fs::rename(&tmp, &key_file.path).map_err(|e| fail(key_file, e))?;
    } else {
        std::fs::set_permissions(&key_file.path, std::fs::Permissions::from_mode(KEY_MODE))
            .map_err(|e| fail(key_file, e))?;
    }
    std::fs::rename(&cert_tmp, &cert_file.path).map_err(|e| fail(cert_file, e))?;
    Ok(())
}

/// Makes the key the next renewal will use and puts it where [`next_key_path`] says; the
/// next publication announces it as the next key (TLSA `3 1 1` beside the current one).
pub(crate) fn write_next_key(settings: &AcmeSettings) -> Result<(), EngineError> {
    let target = next_key_path(&settings.private_key.path);
    let fail = |e: std::io::Error| {
        EngineError::Usage(format!(
            "{}: cannot write the next key {}: {e}",
            settings.private_key.key_path,
            target.display()
        ))
    };
    let key = KeyPair::generate()
        .map_err(|e| EngineError::Usage(format!("cannot generate a private key: {e}")))?;
    let pem = zeroize::Zeroizing::new(key.serialize_pem());
    let tmp = write_temp(&target, pem.as_bytes(), KEY_MODE).map_err(fail)?;
    std::fs::rename(&tmp, &target).map_err(fail)
}

/// A new file beside `target` (same directory, so the rename is atomic), created with
/// `mode` before any byte is written, and flushed to disk.
pub(crate) fn write_temp(target: &Path, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = target.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        clock::unix_now()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}
