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

pub mod snapshot;

/// A domain's manual DKIM keys: (selector, key), in config order.
pub type ManualDkimKeys = std::sync::Arc<[(String, DkimPrivateKey)]>;

/// A validated config with its files read.
#[derive(Debug)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: Config,
    /// TLSA digests of `server.tls` (with the next key, when configured).
    pub tlsa: Option<TlsaKeys>,
    /// Manual DKIM keys per domain, in config order: (selector, key). Domains naming the
    /// same selectors and files share one list.
    pub manual_dkim_keys: BTreeMap<Name, ManualDkimKeys>,
    /// Domains defined through the service's API (the others come from the file).
    pub api_domains: std::collections::BTreeSet<Name>,
    /// DNS servers defined through the service's API.
    pub api_dns_servers: std::collections::BTreeSet<String>,
    /// The domains publishing into each (zone, DNS server), made on first use.
    pub(crate) publishing: std::sync::OnceLock<mailzone_records::zones::Publishing>,
    /// What a snapshot of the domains is taken with ([`snapshot::remember`]), when this
    /// load parsed them from a file read in chunks beside a state directory.
    pub snapshot_header: Option<config::snapshot::Header>,
}

impl LoadedConfig {
    /// The domains publishing into each (zone, DNS server) of this config, indexed once.
    pub fn publishing(&self) -> &mailzone_records::zones::Publishing {
        self.publishing
            .get_or_init(|| mailzone_records::zones::Publishing::of(&self.config))
    }
}

/// Reads and validates `path` and the files it names.
pub fn load_config(path: &Path) -> Result<LoadedConfig, EngineError> {
    load_config_with(path, &ApiObjects::default())
}

/// An object defined through the service's API: its name and its config table as JSON
/// (the config file's camelCase keys).
#[derive(Clone)]
pub struct ApiObject {
    pub name: String,
    pub definition: serde_json::Value,
}

impl std::fmt::Debug for ApiObject {
    /// Only the name: a DNS server's definition holds its TSIG secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiObject")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What the API defined: domains and DNS servers.
#[derive(Debug, Clone, Default)]
pub struct ApiObjects {
    pub domains: Vec<ApiObject>,
    pub dns_servers: Vec<ApiObject>,
}

impl ApiObjects {
    /// No domain and no DNS server defined through the API: the config file alone.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.dns_servers.is_empty()
    }
}

/// [`load_config`], with the domains and DNS servers defined through the API added to the
/// file's, and validated by the same rules. An API object may not name a file
/// (`privateKeyFile`, `keyFile`), an environment variable (`keyEnv`) or a command
/// (`onKeyChange`): a remote caller must not make the service read its files or its
/// environment, or run programs.
pub fn load_config_with(path: &Path, api: &ApiObjects) -> Result<LoadedConfig, EngineError> {
    load_config_beside(path, api, None)
}

/// [`load_config_with`]; with `state_dir`, the domains are taken from its snapshot when it
/// was taken of this text, and otherwise the load keeps what a snapshot is taken with.
fn load_config_beside(
    path: &Path,
    api: &ApiObjects,
    state_dir: Option<&Path>,
) -> Result<LoadedConfig, EngineError> {
    let text = read_config_text(path)?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (config, snapshot_header) = if api.is_empty() {
        parse_file(path, text, base_dir, state_dir)?
    } else {
        (parse_with_api_objects(path, &text, base_dir, api)?, None)
    };
    let files = FileReader { config_file: path };
    let tlsa = read_tlsa_keys(&files, &config)?;
    let mut manual_dkim_keys = BTreeMap::new();
    // A hosting server names one key file for many domains: each file is read and decoded
    // once (an Ed25519 key's public half costs a scalar multiplication to derive).
    let mut decoded: std::collections::HashMap<&Path, DkimPrivateKey> =
        std::collections::HashMap::new();
    // And a hosting server's domains name the same selectors and files: one list for all.
    let mut lists: std::collections::HashMap<Vec<(&str, &Path)>, ManualDkimKeys> =
        std::collections::HashMap::new();
    for domain in &config.domains {
        if let DkimManagement::Manual { keys } = &domain.dkim_management {
            let named: Vec<(&str, &Path)> = keys
                .iter()
                .map(|k| (k.selector.as_str(), k.private_key_file.path.as_path()))
                .collect();
            if let Some(shared) = lists.get(&named) {
                manual_dkim_keys.insert(domain.name.clone(), shared.clone());
                continue;
            }
            let mut loaded = Vec::with_capacity(keys.len());
            for key in keys {
                let file = &key.private_key_file;
                let private = match decoded.get(file.path.as_path()) {
                    Some(private) => private.clone(),
                    None => {
                        let private = read_dkim_key(&files, file)?;
                        decoded.insert(&file.path, private.clone());
                        private
                    }
                };
                loaded.push((key.selector.clone(), private));
            }
            let loaded: ManualDkimKeys = loaded.into();
            lists.insert(named, loaded.clone());
            manual_dkim_keys.insert(domain.name.clone(), loaded);
        }
    }
    let api_domains = api
        .domains
        .iter()
        .filter_map(|d| mailzone_records::Name::owner(&d.name).ok())
        .collect();
    let api_dns_servers = api.dns_servers.iter().map(|d| d.name.clone()).collect();
    Ok(LoadedConfig {
        path: path.to_path_buf(),
        config,
        tlsa,
        manual_dkim_keys,
        api_domains,
        api_dns_servers,
        publishing: std::sync::OnceLock::new(),
        snapshot_header,
    })
}

/// The config file's text, bounded in size.
fn read_config_text(path: &Path) -> Result<String, EngineError> {
    crate::files::read_to_string_limited(path, crate::files::CONFIG_FILE_LIMIT).map_err(|e| {
        EngineError::ReadConfig {
            file: path.to_path_buf(),
            reason: io_reason(&e),
        }
    })
}

/// The config of the file's `text`: with `state_dir`, its domains from the snapshot there
/// when it was taken of this text, else parsed, with what a snapshot is taken with.
fn parse_file(
    path: &Path,
    text: String,
    base_dir: &Path,
    state_dir: Option<&Path>,
) -> Result<(Config, Option<config::snapshot::Header>), EngineError> {
    let invalid = |error| EngineError::Config {
        file: path.to_path_buf(),
        error,
    };
    let Some(state_dir) = state_dir else {
        let config = config::parse_owned(text, base_dir).map_err(invalid)?;
        return Ok((config, None));
    };
    // The text digested once: the snapshot is looked up by its key, and a parse heads a
    // new one with it.
    let keyed = config::snapshot::Keyed::new(text, base_dir);
    let keyed = match snapshot::read(state_dir, keyed) {
        Ok(config) => return Ok((config, None)),
        Err(config::snapshot::NotTaken::Other(keyed)) => keyed,
        // The text was let go: read (and keyed) again, as it is now.
        Err(config::snapshot::NotTaken::Broken) => {
            config::snapshot::Keyed::new(read_config_text(path)?, base_dir)
        }
    };
    config::parse_for_snapshot(keyed).map_err(invalid)
}

/// A manual DKIM key from its PEM file.
fn read_dkim_key(files: &FileReader<'_>, file: &FileRef) -> Result<DkimPrivateKey, EngineError> {
    let bytes = files.read(file)?;
    let text = String::from_utf8(bytes).map_err(|_| files.invalid(file, "not a PEM text file"))?;
    DkimPrivateKey::from_pem(&text).map_err(|e| files.invalid(file, e))
}

/// The TLSA digests of the certificate files `[server.tls]` names (none without it).
fn read_tlsa_keys(
    files: &FileReader<'_>,
    config: &Config,
) -> Result<Option<TlsaKeys>, EngineError> {
    let Some(tls) = &config.server.tls else {
        return Ok(None);
    };
    // The certificate ACME has not issued yet: no TLSA records until it exists.
    if awaits_acme(config, &tls.certificate) {
        return Ok(None);
    }
    let chain = files.read(&tls.certificate)?;
    let mut keys = tlsa::parse_chain(&chain).map_err(|e| files.invalid(&tls.certificate, e))?;
    if let Some(next) = &tls.next_key {
        let bytes = files.read(next)?;
        let digest = tlsa::parse_next_key(&bytes).map_err(|e| files.invalid(next, e))?;
        keys.next = (digest != keys.leaf).then_some(digest);
    } else if let Some(acme) = config
        .server
        .acme
        .as_ref()
        .filter(|a| !a.reuse_key && a.certificate.path == tls.certificate.path)
    {
        // ACME without key reuse: the key the next renewal will use is announced now.
        let digest = crate::acme::next_key_digest(&acme.private_key.path)
            .map_err(|e| files.invalid(&acme.private_key, e))?;
        keys.next = digest.filter(|d| *d != keys.leaf);
    }
    Ok(Some(keys))
}

/// True when the certificate files of a loaded config now name other keys than when they
/// were loaded (a renewal, a new `nextKey`): the service then reloads and runs TlsaSync.
pub fn certificate_files_changed(loaded: &LoadedConfig) -> Result<bool, EngineError> {
    let files = FileReader {
        config_file: &loaded.path,
    };
    let now = read_tlsa_keys(&files, &loaded.config)?;
    Ok(now != loaded.tlsa)
}

/// The service's current config, swapped whole on a reload.
pub type SharedConfig = std::sync::RwLock<std::sync::Arc<LoadedConfig>>;

/// Reads the config file (with the store's API objects) again and swaps it into `current`,
/// returning it; on an error `current` stays as it was. The service's SIGHUP, its
/// certificate watch and the task worker all reload through here.
pub async fn reload_config(
    current: &SharedConfig,
    path: &Path,
    store: &mailzone_store::Store,
) -> Result<std::sync::Arc<LoadedConfig>, EngineError> {
    let fresh = std::sync::Arc::new(load_config_from(path, store).await?);
    if let Ok(mut slot) = current.write() {
        *slot = std::sync::Arc::clone(&fresh);
    }
    Ok(fresh)
}

/// The config file with the API-defined domains of `store` (the service's view).
pub async fn load_config_from(
    path: &Path,
    store: &mailzone_store::Store,
) -> Result<LoadedConfig, EngineError> {
    let api = crate::api_change::stored_api_objects(store).await?;
    load_config_with(path, &api)
}

/// The config as a command run beside `mailzone serve` sees it: the file, plus the domains
/// and DNS servers defined through the API of a service keeping its SQLite database in
/// `state_dir` (so that `dkim export` reaches the keys of an API-defined domain). Without
/// a database there, the file alone; nothing is created.
pub async fn load_config_with_state(
    path: &Path,
    state_dir: &Path,
) -> Result<LoadedConfig, EngineError> {
    let (loaded, store) = load_config_and_store(path, state_dir).await?;
    if let Some(store) = store {
        store.close().await;
    }
    Ok(loaded)
}

/// [`load_config_with_state`], keeping the state database open for the rest of the run
/// (`None` when there is none yet: nothing is created here).
pub async fn load_config_and_store(
    path: &Path,
    state_dir: &Path,
) -> Result<(LoadedConfig, Option<mailzone_store::Store>), EngineError> {
    let no_api_objects = ApiObjects::default();
    if !state_dir.join(mailzone_store::DATABASE_FILE_NAME).is_file() {
        return Ok((
            load_config_beside(path, &no_api_objects, Some(state_dir))?,
            None,
        ));
    }
    // The file alone is loaded while the database opens (SQLite works on a thread of its
    // own): a CLI run's first milliseconds go to both at once. A service's API-defined
    // objects found in the store then make it load again, with them.
    let alone = {
        let path = path.to_path_buf();
        let state_dir = state_dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            load_config_beside(&path, &no_api_objects, Some(&state_dir))
        })
    };
    let store = mailzone_store::Store::open_sqlite(state_dir).await?;
    let loaded = match crate::api_change::stored_api_objects(&store).await {
        Ok(api) if api.is_empty() => alone
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        Ok(api) => load_config_with(path, &api),
        Err(e) => Err(e),
    };
    match loaded {
        Ok(loaded) => Ok((loaded, Some(store))),
        Err(e) => {
            store.close().await;
            Err(e)
        }
    }
}

/// The config file with the API's objects, validated together. A mistake inside an API
/// object is reported against that object and its JSON key path (the caller sent that
/// body, not a file); one in the file's own tables against the file, with the file's
/// line numbers when the file alone shows it.
fn parse_with_api_objects(
    path: &Path,
    text: &str,
    base_dir: &Path,
    api: &ApiObjects,
) -> Result<Config, EngineError> {
    let table = merge_api_objects(path, text, api)?;
    config::parse_table(table, base_dir).map_err(|error| {
        if let Some(message) = api_object_error(&error, api) {
            return EngineError::Usage(message);
        }
        let error = match config::parse(text, base_dir) {
            Err(alone) if alone.key == error.key => alone,
            _ => error,
        };
        EngineError::Config {
            file: path.to_path_buf(),
            error,
        }
    })
}

/// `error` told as a mistake in the API object its key path falls in, if it does:
/// `domain example.org (defined through the API): dmarc.policy: …`.
fn api_object_error(error: &config::ConfigError, api: &ApiObjects) -> Option<String> {
    let tables = [
        ("domain", "domain", &api.domains),
        ("dnsServer", "dnsServer", &api.dns_servers),
    ];
    for (table, what, objects) in tables {
        for object in objects {
            let prefix = format!("{table}.{}", config::toml_key(&object.name));
            let Some(rest) = error.key.strip_prefix(&prefix) else {
                continue;
            };
            // `dnsServer.api` must not claim the errors of `dnsServer.api2`.
            if !(rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')) {
                continue;
            }
            let json_path = rest.strip_prefix('.').unwrap_or(rest);
            let value = error
                .value
                .as_ref()
                .map(|v| format!(" (value: {v})"))
                .unwrap_or_default();
            let at = if json_path.is_empty() {
                String::new()
            } else {
                format!("{json_path}: ")
            };
            return Some(format!(
                "{what} {} (defined through the API): {at}{}{value}",
                object.name, error.message
            ));
        }
    }
    None
}

/// The config file's tables with the API's objects added as `[domain."name"]` and
/// `[dnsServer.name]` tables.
fn merge_api_objects(
    path: &Path,
    text: &str,
    api: &ApiObjects,
) -> Result<toml::Table, EngineError> {
    let usage = |reason: String| EngineError::Usage(format!("{}: {reason}", path.display()));
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| usage(format!("not valid TOML: {}", e.message())))?;
    for (key, what, objects) in [
        ("dnsServer", "dnsServer", &api.dns_servers),
        ("domain", "domain", &api.domains),
    ] {
        let section = table
            .entry(key)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| usage(format!("`{key}` is not a table")))?;
        for object in objects {
            if mentions_file(&object.definition) {
                return Err(EngineError::Usage(format!(
                    "{what} {} (defined through the API): file paths, environment variables and commands (privateKeyFile, keyFile, keyEnv, onKeyChange, reloadCommand, zonefile DNS servers) are not accepted through the API: define them in the config file",
                    object.name
                )));
            }
            if section.contains_key(&object.name) {
                return Err(EngineError::Usage(format!(
                    "{what} {} is defined both in {} and through the API",
                    object.name,
                    path.display()
                )));
            }
            let value = toml::Value::try_from(&object.definition).map_err(|e| {
                EngineError::Usage(format!(
                    "{what} {} (defined through the API): {e}",
                    object.name
                ))
            })?;
            section.insert(object.name.clone(), value);
        }
    }
    Ok(table)
}

/// Whether an API object names a file, an environment variable or a command — or is a
/// zone-file DNS server, which writes files and runs its reload command: only the config
/// file, written by the machine's administrator, may do that.
fn mentions_file(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| {
            let k = k.to_ascii_lowercase();
            k.ends_with("file")
                || k.ends_with("env")
                || k == "onkeychange"
                || k == "reloadcommand"
                || k == "path"
                || (k == "kind"
                    && v.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("zonefile")))
                || mentions_file(v)
        }),
        serde_json::Value::Array(items) => items.iter().any(mentions_file),
        _ => false,
    }
}

struct FileReader<'a> {
    config_file: &'a Path,
}

impl FileReader<'_> {
    fn read(&self, file: &FileRef) -> Result<Vec<u8>, EngineError> {
        crate::files::read_limited(&file.path, crate::files::REFERENCED_FILE_LIMIT)
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

/// Whether `certificate` is the file `[server.acme]` writes and it does not exist yet.
fn awaits_acme(config: &Config, certificate: &FileRef) -> bool {
    config
        .server
        .acme
        .as_ref()
        .is_some_and(|acme| acme.certificate.path == certificate.path)
        && !certificate.path.exists()
}
