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
    /// Domains defined through the service's API (the others come from the file).
    pub api_domains: std::collections::BTreeSet<Name>,
}

/// Reads and validates `path` and the files it names.
pub fn load_config(path: &Path) -> Result<LoadedConfig, EngineError> {
    load_config_with(path, &[])
}

/// A domain defined through the service's API: its name and its `[domain."name"]` table
/// as JSON (the config file's camelCase keys).
#[derive(Debug, Clone)]
pub struct ApiDomain {
    pub name: String,
    pub definition: serde_json::Value,
}

/// [`load_config`], with the domains defined through the API added to the file's, and
/// validated by the same rules. An API domain may not name a file (`privateKeyFile`): a
/// remote caller must not make the service read its files.
pub fn load_config_with(
    path: &Path,
    api_domains: &[ApiDomain],
) -> Result<LoadedConfig, EngineError> {
    let mut text = std::fs::read_to_string(path).map_err(|e| EngineError::ReadConfig {
        file: path.to_path_buf(),
        reason: io_reason(&e),
    })?;
    if !api_domains.is_empty() {
        text = merge_api_domains(path, &text, api_domains)?;
    }
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
    let api_domains = api_domains
        .iter()
        .filter_map(|d| mailzone_records::Name::owner(&d.name).ok())
        .collect();
    Ok(LoadedConfig {
        path: path.to_path_buf(),
        config,
        tlsa,
        manual_dkim_keys,
        api_domains,
    })
}

/// The config file with the API-defined domains of `store` (the service's view).
pub async fn load_config_from(
    path: &Path,
    store: &mailzone_store::Store,
) -> Result<LoadedConfig, EngineError> {
    let mut api = Vec::new();
    for (name, definition) in store.api_domains().await? {
        let definition = serde_json::from_str(&definition).map_err(|e| {
            EngineError::Usage(format!(
                "domain {name} (defined through the API) is unreadable in the database: {e}"
            ))
        })?;
        api.push(ApiDomain { name, definition });
    }
    load_config_with(path, &api)
}

/// The config text with the API's domains added as `[domain."name"]` tables.
fn merge_api_domains(
    path: &Path,
    text: &str,
    api_domains: &[ApiDomain],
) -> Result<String, EngineError> {
    let usage = |reason: String| EngineError::Usage(format!("{}: {reason}", path.display()));
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| usage(format!("not valid TOML: {}", e.message())))?;
    let domains = table
        .entry("domain")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| usage("`domain` is not a table".into()))?;
    for api in api_domains {
        if mentions_file(&api.definition) {
            return Err(EngineError::Usage(format!(
                "domain {} (defined through the API): file paths (privateKeyFile) are not accepted through the API; use dkimManagement.automatic",
                api.name
            )));
        }
        if domains.contains_key(&api.name) {
            return Err(EngineError::Usage(format!(
                "domain {} is defined both in {} and through the API",
                api.name,
                path.display()
            )));
        }
        let value = toml::Value::try_from(&api.definition).map_err(|e| {
            EngineError::Usage(format!(
                "domain {} (defined through the API): {e}",
                api.name
            ))
        })?;
        domains.insert(api.name.clone(), value);
    }
    toml::to_string(&table).map_err(|e| usage(format!("cannot merge the API's domains: {e}")))
}

fn mentions_file(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.to_ascii_lowercase().ends_with("file") || mentions_file(v)),
        serde_json::Value::Array(items) => items.iter().any(mentions_file),
        _ => false,
    }
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
