//! Values every section uses: durations, host names, lists, TTLs, ports, commands and
//! file references, each checked with its key path.

use std::path::{Path, PathBuf};

use super::*;

impl Validator<'_> {
    /// A command as an argv list (no shell). A program path with a `/` is taken relative
    /// to the config file's directory; a bare name is looked up in `PATH` when run.
    pub(super) fn command(&self, key: &str, argv: Option<Vec<String>>) -> Result<Vec<String>> {
        let Some(mut argv) = argv else {
            return Ok(Vec::new());
        };
        let Some(program) = argv.first_mut() else {
            return Err(ConfigError::new(
                key,
                Some("[]"),
                "an empty command; give the program and its arguments, e.g. [\"/usr/local/bin/reload-mta\"], or leave the key out",
            ));
        };
        if program.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{key}[0]"),
                Some(program.as_str()),
                "the program name is empty",
            ));
        }
        if program.contains('/') && !Path::new(program.as_str()).is_absolute() {
            *program = self.base_dir.join(&*program).display().to_string();
        }
        Ok(argv)
    }

    /// [`Self::file`] for a DKIM key file, shareable: the domains naming one file are given
    /// one value once validated (`share_key_files`).
    pub(super) fn key_file(&self, key: &str, written: &str) -> Result<std::sync::Arc<FileRef>> {
        Ok(std::sync::Arc::new(self.file(key, written)?))
    }

    pub(super) fn file(&self, key: &str, written: &str) -> Result<FileRef> {
        if written.trim().is_empty() {
            return Err(ConfigError::new(
                key,
                Some(written),
                "a file name is needed",
            ));
        }
        let path = PathBuf::from(written);
        let path = if path.is_absolute() {
            path
        } else {
            self.base_dir.join(path)
        };
        Ok(FileRef {
            path,
            key_path: key.to_string(),
        })
    }
}

/// The longest duration a setting may take: a century. Longer ones mean "never" anyway,
/// and would overflow the clocks they are added to (instants, Unix seconds).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(3_155_760_000);

/// A duration such as `0s`, `500ms`, `30s`, `5m` or `1h` (humantime's syntax), at most
/// [`MAX_DURATION`]. Command-line flags parse durations with it too.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|e| format!("not a duration ({e}); write e.g. 500ms, 30s, 5m"))?;
    if parsed > MAX_DURATION {
        return Err("too long: a duration is at most 100 years".to_string());
    }
    Ok(parsed)
}

pub(super) fn duration(
    key: &str,
    value: Option<String>,
    default: &str,
) -> Result<std::time::Duration> {
    let text = value.unwrap_or_else(|| default.to_string());
    parse_duration(&text).map_err(|reason| ConfigError::new(key, Some(&text), reason))
}

pub(super) fn host(key: &str, written: &str) -> Result<Name> {
    Name::host(written).map_err(|e| ConfigError::new(key, Some(written), e.to_string()))
}

pub(super) fn list<T>(
    values: &[String],
    key: &str,
    f: impl Fn(&str, &str) -> Result<T>,
) -> Result<Vec<T>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            // Each value is checked under the list's key and its index written into the key
            // of an error only: a config of 100,000 domains has millions of list values.
            f(key, v.trim()).map_err(|mut e| {
                if let Some(rest) = e.key.strip_prefix(key) {
                    e.key = format!("{key}[{i}]{rest}");
                }
                e
            })
        })
        .collect()
}

/// RFC 2181 §8: a TTL is at most 2^31 - 1; zero defeats caching entirely.
pub(super) fn ttl(key: &str, value: Option<u32>) -> Result<Option<u32>> {
    match value {
        Some(v) if v == 0 || v > i32::MAX as u32 => Err(ConfigError::new(
            key,
            Some(&v.to_string()),
            "a TTL must be between 1 and 2147483647 seconds",
        )),
        other => Ok(other),
    }
}

pub(super) fn port(key: &str, value: Option<u16>) -> Result<Option<u16>> {
    match value {
        Some(0) => Err(ConfigError::new(
            key,
            Some("0"),
            "port 0 is not a service port",
        )),
        other => Ok(other),
    }
}
