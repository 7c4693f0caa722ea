//! Loading the config file and every file it names: the certificate chain (parsed into TLSA
//! digests) and manual DKIM keys. Everything is read and validated before anything is
//! written anywhere, so a bad config leaves the state directory untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mailzone_records::config;
use mailzone_records::dkim::DkimPrivateKey;
use mailzone_records::tlsa::{self, TlsaKeys};
use mailzone_records::{Config, DkimManagement, FileRef, Name};

use crate::EngineError;

/// A validated config with its files read.
#[derive(Debug)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: Config,
    /// TLSA digests of `server.tls` (with the next key, when configured).
    pub tlsa: Option<TlsaKeys>,
    /// Manual DKIM keys per domain, in config order: (selector, key).
    pub manual_dkim_keys: BTreeMap<Name, Vec<(String, DkimPrivateKey)>>,
}

/// Reads and validates `path` and the files it names.
pub fn load_config(path: &Path) -> Result<LoadedConfig, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::ReadConfig {
        file: path.to_path_buf(),
        reason: io_reason(&e),
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let config = config::parse(&text, base_dir).map_err(|error| EngineError::Config {
        file: path.to_path_buf(),
        error,
    })?;
    let files = FileReader { config_file: path };
    let tlsa = match &config.server.tls {
        Some(tls) => {
            let chain = files.read(&tls.certificate)?;
            let mut keys =
                tlsa::parse_chain(&chain).map_err(|e| files.invalid(&tls.certificate, e))?;
            if let Some(next) = &tls.next_key {
                let bytes = files.read(next)?;
                let digest = tlsa::parse_next_key(&bytes).map_err(|e| files.invalid(next, e))?;
                keys.next = (digest != keys.leaf).then_some(digest);
            }
            Some(keys)
        }
        None => None,
    };
    let mut manual_dkim_keys = BTreeMap::new();
    for domain in &config.domains {
        if let DkimManagement::Manual { keys } = &domain.dkim_management {
            let mut loaded = Vec::with_capacity(keys.len());
            for key in keys {
                let bytes = files.read(&key.private_key_file)?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| files.invalid(&key.private_key_file, "not a PEM text file"))?;
                let private = DkimPrivateKey::from_pem(&text)
                    .map_err(|e| files.invalid(&key.private_key_file, e))?;
                loaded.push((key.selector.clone(), private));
            }
            manual_dkim_keys.insert(domain.name.clone(), loaded);
        }
    }
    Ok(LoadedConfig {
        path: path.to_path_buf(),
        config,
        tlsa,
        manual_dkim_keys,
    })
}

struct FileReader<'a> {
    config_file: &'a Path,
}

impl FileReader<'_> {
    fn read(&self, file: &FileRef) -> Result<Vec<u8>, EngineError> {
        std::fs::read(&file.path)
            .map_err(|e| self.invalid(file, format!("cannot read the file: {}", io_reason(&e))))
    }

    fn invalid(&self, file: &FileRef, reason: impl ToString) -> EngineError {
        EngineError::ReferencedFile {
            file: self.config_file.to_path_buf(),
            key: file.key_path.clone(),
            path: file.path.clone(),
            reason: reason.to_string(),
        }
    }
}

/// An I/O error as a short phrase ("No such file or directory"), without the
/// "(os error 2)" suffix that means nothing to a person.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
