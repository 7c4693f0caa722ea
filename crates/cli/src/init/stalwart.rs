//! Prefilling `mailzone init` from Stalwart's `config.toml`: the mail host
//! (`server.hostname`, else `lookup.default.hostname`), the domains (`lookup.default.domain`,
//! `directory.<id>.lookup.domains`, the `domain` of each `signature.<id>` and the addresses
//! of in-memory directory principals) and the DKIM signatures (`signature.<id>`:
//! `algorithm`, `domain`, `selector`, `private-key`).
//!
//! Pure: the file's text is passed in. Values that are Stalwart macros (`%{env:…}%`,
//! `%{file:…}%`) are resolved by Stalwart at run time, so they are noted, not guessed —
//! except a `private-key` read from a file, whose path is what mailzone needs.

use mailzone_records::DkimAlgorithm;
use toml::{Table, Value};

use super::{Imported, ImportedDkimKey};

/// What Stalwart's configuration tells about the mail host, its domains and DKIM keys.
pub fn import(text: &str) -> Result<Imported, String> {
    let config: Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not a TOML file: {}", e.message().trim()))?;
    let mut imported = Imported::default();
    for key in ["server.hostname", "lookup.default.hostname"] {
        if let Some(host) = string_at(&config, key) {
            if is_macro(host) {
                imported.note(format!(
                    "{key} is {host:?}, resolved by Stalwart at run time: give --hostname"
                ));
                continue;
            }
            imported.hostname = Some(host.trim_end_matches('.').to_ascii_lowercase());
            break;
        }
    }
    let mut candidates: Vec<(String, String)> = Vec::new();
    if let Some(domain) = string_at(&config, "lookup.default.domain") {
        candidates.push(("lookup.default.domain".into(), domain.to_string()));
    }
    for (id, directory) in tables_at(&config, "directory") {
        let key = format!("directory.{id}.lookup.domains");
        for domain in strings(directory.get("lookup").and_then(|l| l.get("domains"))) {
            candidates.push((key.clone(), domain.to_string()));
        }
    }
    for (id, signature) in tables_at(&config, "signature") {
        let Some(domain) = signature.get("domain").and_then(Value::as_str) else {
            continue;
        };
        candidates.push((format!("signature.{id}.domain"), domain.to_string()));
        dkim_key(&mut imported, &id, domain, signature);
    }
    for (id, directory) in tables_at(&config, "directory") {
        let principals = directory.get("principals").and_then(Value::as_array);
        for principal in principals.into_iter().flatten() {
            for address in strings(principal.get("email")) {
                if let Some((_, domain)) = address.rsplit_once('@') {
                    candidates.push((format!("directory.{id}.principals"), domain.to_string()));
                }
            }
        }
    }
    for (key, domain) in candidates {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if is_macro(&domain) {
            imported.note(format!(
                "{key} is {domain:?}, resolved by Stalwart at run time: give --domain"
            ));
        } else if imported.hostname.as_deref() == Some(domain.as_str()) || domain == "localhost" {
            // The mail host itself and local names are not mail domains of their own.
        } else if let Err(e) = super::parse_domain(&domain) {
            imported.note(format!("{key}: {domain:?} left out: {e}"));
        } else {
            imported.add_domain(&domain);
        }
    }
    Ok(imported)
}

/// One `[signature.<id>]` table: its algorithm joins the imported algorithms, and the key
/// is remembered for the comment that shows how to publish it instead of new keys.
fn dkim_key(imported: &mut Imported, id: &str, domain: &str, signature: &Table) {
    let written = signature
        .get("algorithm")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(algorithm) = DkimAlgorithm::parse(written) else {
        imported.note(format!(
            "signature.{id}.algorithm {written:?} is not one mailzone publishes (ed25519-sha256, rsa-sha256)"
        ));
        return;
    };
    if !imported.dkim_algorithms.contains(&algorithm) {
        imported.dkim_algorithms.push(algorithm);
    }
    let selector = signature.get("selector").and_then(Value::as_str);
    let private_key = signature.get("private-key").and_then(Value::as_str);
    if let Some(selector) = selector {
        imported.dkim_keys.push(ImportedDkimKey {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            selector: selector.to_string(),
            private_key_file: private_key.and_then(key_file_path).map(str::to_string),
        });
    }
}

/// The path in `%{file:PATH}%` (Stalwart's macro) or `file://PATH` (its older form).
fn key_file_path(value: &str) -> Option<&str> {
    let value = value.trim();
    value
        .strip_prefix("%{file:")
        .and_then(|rest| rest.strip_suffix("}%"))
        .or_else(|| value.strip_prefix("file://"))
        .filter(|path| !path.is_empty())
}

fn is_macro(value: &str) -> bool {
    value.contains("%{")
}

/// The string at a dotted key path (`server.hostname`).
fn string_at<'a>(config: &'a Table, path: &str) -> Option<&'a str> {
    let mut parts = path.split('.');
    let mut value = config.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    value.as_str()
}

/// The sub-tables of a top-level table (`directory.<id>`, `signature.<id>`), in file order.
fn tables_at<'a>(config: &'a Table, key: &str) -> Vec<(String, &'a Table)> {
    config
        .get(key)
        .and_then(Value::as_table)
        .map(|tables| {
            tables
                .iter()
                .filter_map(|(id, v)| Some((id.clone(), v.as_table()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A string or an array of strings.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_domains_and_signatures() {
        let imported = import(
            r#"
[server]
hostname = "MX1.example.org"

[lookup.default]
hostname = "other.example.org"
domain = "example.org"

[directory.imap.lookup]
domains = ["example.org", "example.net"]

[signature."rsa-example.com"]
private-key = "%{file:/etc/stalwart/dkim/example.com.rsa}%"
domain = "example.com"
selector = "202409r"
algorithm = "rsa-sha256"

[signature."ed25519-example.com"]
private-key = "file:///etc/stalwart/dkim/example.com.ed"
domain = "example.com"
selector = "202409e"
algorithm = "ed25519-sha256"

[[directory.in-memory.principals]]
email = ["user1@example.org", "alias@example.info", "root@localhost"]
"#,
        )
        .unwrap();
        assert_eq!(imported.hostname.as_deref(), Some("mx1.example.org"));
        assert_eq!(
            imported.domains,
            ["example.org", "example.net", "example.com", "example.info"]
        );
        assert_eq!(
            imported.dkim_algorithms,
            [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256]
        );
        assert_eq!(imported.dkim_keys.len(), 2);
        assert_eq!(
            imported.dkim_keys[0].private_key_file.as_deref(),
            Some("/etc/stalwart/dkim/example.com.rsa")
        );
        assert_eq!(
            imported.dkim_keys[1].private_key_file.as_deref(),
            Some("/etc/stalwart/dkim/example.com.ed")
        );
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
    }

    #[test]
    fn macros_are_noted_not_guessed() {
        let imported = import(
            "server.hostname = \"%{env:HOSTNAME}%\"\nlookup.default.domain = \"%{env:DOMAIN}%\"\n",
        )
        .unwrap();
        assert_eq!(imported.hostname, None);
        assert!(imported.domains.is_empty());
        assert_eq!(imported.notes.len(), 2, "{:?}", imported.notes);
        assert!(imported.notes[0].contains("--hostname"));
        assert!(imported.notes[1].contains("--domain"));
    }

    #[test]
    fn a_broken_file_is_an_error() {
        let e = import("server = [").unwrap_err();
        assert!(e.starts_with("not a TOML file"), "{e}");
    }
}
