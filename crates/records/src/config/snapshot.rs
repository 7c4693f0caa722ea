//! A config's validated domains kept with the key of what they were validated from (the
//! text, the directory its file names are resolved against, and this crate's code), so
//! that a later load of the same text takes them instead of parsing and validating every
//! domain again: most of the work of a 1,000-domain run that changes nothing.
//!
//! The file's other tables (`[server]`, the DNS servers with their secrets, `[serve]`,
//! `[notify]`) are parsed again on every load, from the chunks of the text that hold them,
//! so a snapshot holds no secret: a domain names its DKIM key files, never a key, and the
//! files are read again by the caller as on any load.
//!
//! The form is JSON Lines: a header (format, key, where the other tables are), one domain
//! a line in config order, then a trailer (the count and a SHA-256 of the domain lines). A
//! snapshot of another text, cut short, or changed is not taken: the caller parses.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chunks::{self, ChunkSpan};
use super::{Validator, share_key_files};
use crate::model::{Config, Domain};
use crate::zonefile;

/// The version of the form; a snapshot of another one is not taken.
const FORMAT: u32 = 1;

/// A snapshot's first line, and what one is taken with: the key of the config it belongs
/// to and the spans of the text's chunks that hold tables other than the domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    format: u32,
    key: String,
    others: Vec<ChunkSpan>,
}

/// The last line: how many domain lines came before it, and their digest.
#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    domains: usize,
    digest: String,
}

impl Header {
    pub(super) fn new(key: String, others: Vec<ChunkSpan>) -> Header {
        Header {
            format: FORMAT,
            key,
            others,
        }
    }
}

/// A config file's text and base directory with their `key`, digested once: what a
/// snapshot is looked up by ([`read`]) and what a parse heads a new one with
/// ([`parse_for_snapshot`](super::parse_for_snapshot)).
pub struct Keyed {
    pub(super) text: String,
    pub(super) base_dir: PathBuf,
    pub(super) key: String,
}

impl Keyed {
    pub fn new(text: String, base_dir: &Path) -> Keyed {
        Keyed {
            key: key(&text, base_dir),
            text,
            base_dir: base_dir.to_path_buf(),
        }
    }
}

/// The key only: the text may hold secrets.
impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// What a config's domains depend on, digested: the code that validated them (this
/// crate's sources and the dependency lock, digested at build time, and the version), the
/// base directory, the text.
fn key(text: &str, base_dir: &Path) -> String {
    let mut hasher = Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION").as_bytes(),
        env!("MAILZONE_PLANNER_SOURCE").as_bytes(),
        base_dir.as_os_str().as_encoded_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update(text.as_bytes());
    zonefile::hex(&hasher.finalize())
}

/// Writes the snapshot of `config`'s domains, under `header`, to `out`.
pub fn write(out: &mut impl Write, header: &Header, config: &Config) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, header)?;
    out.write_all(b"\n")?;
    let mut digest = Sha256::new();
    let mut line = Vec::with_capacity(1024);
    for domain in &config.domains {
        line.clear();
        serde_json::to_writer(&mut line, domain)?;
        line.push(b'\n');
        digest.update(&line);
        out.write_all(&line)?;
    }
    let trailer = Trailer {
        domains: config.domains.len(),
        digest: zonefile::hex(&digest.finalize()),
    };
    serde_json::to_writer(&mut *out, &trailer)?;
    out.write_all(b"\n")
}

/// Why a snapshot was not taken, and the text when it is still held.
#[derive(Debug)]
pub enum NotTaken {
    /// Of another text (or none readable at all): the text is given back to be parsed.
    Other(Keyed),
    /// Of this text but not whole past its header: the text was let go (a 100,000-domain
    /// file is not held beside its domains), the caller reads it again.
    Broken,
}

/// The config of the `keyed` text with the domains of the snapshot read from `input`,
/// when the snapshot was taken of this text and reads back whole. Reading stops at the
/// header when the key differs. The text's other tables are parsed first, then the text
/// is let go while the domains are read.
pub fn read(mut input: impl BufRead, keyed: Keyed) -> Result<Config, NotTaken> {
    let mut first_line = String::new();
    let header = match input.read_line(&mut first_line) {
        Ok(_) => serde_json::from_str::<Header>(&first_line).ok(),
        Err(_) => None,
    };
    let Some(header) = header.filter(|h| h.format == FORMAT && h.key == keyed.key) else {
        return Err(NotTaken::Other(keyed));
    };
    let Some(raw) = chunks::parse_all_but_domains(&keyed.text, &header.others) else {
        return Err(NotTaken::Other(keyed));
    };
    let Keyed { text, base_dir, .. } = keyed;
    drop(text);
    let mut domains = read_domains(input).ok_or(NotTaken::Broken)?;
    let mut key_files = std::collections::HashMap::new();
    for domain in &mut domains {
        share_key_files(domain, &mut key_files);
    }
    Validator::new(&base_dir)
        .config(raw, Some(domains))
        .map_err(|_| NotTaken::Broken)
}

/// The domain lines after the header, when the trailer says they are all there as written.
fn read_domains(input: impl BufRead) -> Option<Vec<Domain>> {
    let mut lines = input.lines();
    let mut digest = Sha256::new();
    let mut domains = Vec::new();
    let trailer = loop {
        let line = lines.next()?.ok()?;
        match serde_json::from_str::<Domain>(&line) {
            Ok(domain) => domains.push(domain),
            Err(_) => break serde_json::from_str::<Trailer>(&line).ok()?,
        }
        digest.update(line.as_bytes());
        digest.update(b"\n");
    };
    let whole = trailer.domains == domains.len()
        && trailer.digest == zonefile::hex(&digest.finalize())
        && lines.next().is_none();
    whole.then_some(domains)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::config::{parse, parse_for_snapshot};

    const BASE: &str = "/etc/mailzone";

    /// A config big enough to be read in chunks, with DNS servers (one of them holding an
    /// inline TSIG secret), `[serve]` and `[notify]` between and after the domains.
    fn big_config() -> String {
        let mut text = String::from(
            "[server]\nhostname = \"mail.example.org\"\nipv4 = [\"192.0.2.10\"]\n\
             reportAddress = \"mailto:postmaster\"\n\n[server.services]\nimap = { cleartext = false }\n\n\
             [dnsServer.primary]\nkind = \"rfc2136\"\nhost = \"127.0.0.1\"\nport = 5353\n\
             keyName = \"mailzone\"\nkey = \"c2VjcmV0IHNlY3JldCBzZWNyZXQ=\"\nalgorithm = \"hmac-sha256\"\n",
        );
        for i in 0..1200 {
            if i == 600 {
                text.push_str("\n[serve]\ncheckInterval = \"30m\"\n");
            }
            // Unicode names (kept as A-labels), and each kind of DKIM management.
            let name = match i % 7 {
                0 => format!("bücher{i:04}.example"),
                _ => format!("d{i:04}.example"),
            };
            let dkim = match i % 5 {
                0 => "automatic = { algorithms = [\"ed25519-sha256\"], rotateAfter = \"60d\", \
                      delegateTo = \"dkim.provider.example\", delegateDnsServer = \"primary\" }"
                    .to_string(),
                1 => "automatic = { onKeyChange = [\"/usr/bin/true\", \"--reload\"] }".to_string(),
                _ => format!(
                    "manual = {{ keys = [{{ selector = \"s{}\", privateKeyFile = \"keys/k{}.pem\" }}] }}",
                    i % 3,
                    i % 2
                ),
            };
            let _ = write!(
                text,
                "\n[domain.\"{name}\"]\nttl = {}\ndmarc = {{ policy = \"reject\", rua = [\"mailto:dmarc@{name}\"] }}\n\
                 spf = {{ qualifier = \"~\", mechanisms = [\"include:_spf.provider.example\"] }}\n\
                 caa = {{ issuers = [\"letsencrypt.org\"] }}\n\
                 dkimManagement = {{ {dkim} }}\n\
                 dnsManagement = {{ automatic = {{ dnsServer = \"primary\", publishRecords = [\"mx\", \"dkim\"] }} }}\n",
                300 + i,
            );
        }
        text
    }

    fn snapshot_of(text: &str) -> Vec<u8> {
        let keyed = Keyed::new(text.to_string(), Path::new(BASE));
        let (config, header) = parse_for_snapshot(keyed).unwrap();
        let header = header.expect("a big config is read in chunks");
        let mut out = Vec::new();
        write(&mut out, &header, &config).unwrap();
        out
    }

    fn read_back(snapshot: &[u8], text: &str) -> Option<Config> {
        read(snapshot, Keyed::new(text.to_string(), Path::new(BASE))).ok()
    }

    #[test]
    fn a_snapshot_read_back_gives_the_config_of_a_parse() {
        let text = big_config();
        let snapshot = snapshot_of(&text);
        let config = read_back(&snapshot, &text).expect("the snapshot of this text");
        assert_eq!(config, parse(&text, Path::new(BASE)).unwrap());
        // Domains naming one key file share one value, as a parse makes them.
        let file = |n: usize| match &config.domains[n].dkim_management {
            crate::model::DkimManagement::Manual { keys } => keys[0].private_key_file.clone(),
            other => panic!("{other:?}"),
        };
        assert!(std::sync::Arc::ptr_eq(&file(2), &file(4)));
    }

    #[test]
    fn a_snapshot_holds_no_secret() {
        let text = big_config();
        let snapshot = String::from_utf8(snapshot_of(&text)).unwrap();
        assert!(
            !snapshot.contains("c2VjcmV0"),
            "the TSIG secret was written"
        );
        assert!(snapshot.contains("d0599.example"));
        assert!(snapshot.contains("xn--bcher0007-"), "names as A-labels");
    }

    #[test]
    fn a_snapshot_of_another_text_or_directory_is_not_taken() {
        let text = big_config();
        let snapshot = snapshot_of(&text);
        let other = text.replace("policy = \"reject\"", "policy = \"quarantine\"");
        assert_eq!(read_back(&snapshot, &other), None);
        let srv = Path::new("/srv");
        match read(&snapshot[..], Keyed::new(text.clone(), srv)) {
            Err(NotTaken::Other(given_back)) => assert_eq!(given_back.text, text),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_snapshot_cut_short_or_changed_is_not_taken() {
        let text = big_config();
        let snapshot = snapshot_of(&text);
        let lines = snapshot.iter().filter(|b| **b == b'\n').count();
        let cut_after = |n: usize| -> Vec<u8> {
            let mut seen = 0;
            let end = snapshot
                .iter()
                .position(|b| {
                    seen += usize::from(*b == b'\n');
                    seen == n
                })
                .unwrap();
            snapshot[..=end].to_vec()
        };
        let cut = cut_after(lines - 1);
        assert!(
            matches!(
                read(&cut[..], Keyed::new(text.clone(), Path::new(BASE))),
                Err(NotTaken::Broken)
            ),
            "no trailer"
        );
        assert_eq!(read_back(&cut_after(500), &text), None);
        assert_eq!(read_back(&snapshot[..snapshot.len() / 2], &text), None);
        let changed =
            String::from_utf8(snapshot.clone())
                .unwrap()
                .replacen("\"reject\"", "\"none\"", 1);
        assert_eq!(read_back(changed.as_bytes(), &text), None);
        assert!(read_back(&snapshot, &text).is_some());
    }
}
