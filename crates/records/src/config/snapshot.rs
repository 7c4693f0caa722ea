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

/// Domain lines in a block: what one thread deserializes while the other reads the next.
const BLOCK_LINES: usize = 64;

/// The domain lines after the header, when the trailer says they are all there as written:
/// every line but the last is a domain, the last is the trailer. The lines are read and
/// digested here in blocks, and the blocks deserialized by two threads in turn (this one
/// and one of its own): deserializing is most of a warm run's load, and the first DNS
/// message waits for it. At most a block a thread is held as text: a 100,000-domain
/// snapshot is never read whole.
fn read_domains(input: impl BufRead) -> Option<Vec<Domain>> {
    let mut blocks = Blocks::new(input);
    let mut domains = Vec::new();
    std::thread::scope(|scope| {
        let (to_other, blocks_given) = std::sync::mpsc::sync_channel::<Vec<String>>(1);
        let (from_other, parsed_there) = std::sync::mpsc::sync_channel(1);
        // Without a second thread (spawning failed) this one deserializes every block.
        let other = std::thread::Builder::new()
            .name("mailzone-config".into())
            .spawn_scoped(scope, move || {
                for block in blocks_given {
                    if from_other.send(deserialize(&block)).is_err() {
                        break;
                    }
                }
            })
            .is_ok();
        // Blocks alternate: an even one goes to the other thread, an odd one is
        // deserialized here, then both are added in order.
        let mut given = false;
        while let Some(block) = blocks.next_block()? {
            if other && !given {
                to_other.send(block).ok()?;
                given = true;
                continue;
            }
            let here = deserialize(&block);
            if std::mem::take(&mut given) {
                domains.extend(parsed_there.recv().ok()??);
            }
            domains.extend(here?);
        }
        if given {
            domains.extend(parsed_there.recv().ok()??);
        }
        Some(())
    })?;
    let (trailer, digest) = blocks.finish()?;
    (trailer.domains == domains.len() && trailer.digest == digest).then_some(domains)
}

/// A block's lines as domains; `None` if one is not a domain.
fn deserialize(block: &[String]) -> Option<Vec<Domain>> {
    block
        .iter()
        .map(|line| serde_json::from_str::<Domain>(line).ok())
        .collect()
}

/// The lines of a snapshot after its header, in blocks of domain lines (each line known
/// not to be the last: one is held back until the next is read), digested as they are
/// handed out; the last line is kept as the trailer.
struct Blocks<R> {
    lines: std::io::Lines<R>,
    held: Option<String>,
    digest: Sha256,
}

impl<R: BufRead> Blocks<R> {
    fn new(input: R) -> Self {
        Blocks {
            lines: input.lines(),
            held: None,
            digest: Sha256::new(),
        }
    }

    /// The next block, `Some(None)` past the last domain line, `None` when the input fails.
    fn next_block(&mut self) -> Option<Option<Vec<String>>> {
        let mut block = Vec::with_capacity(BLOCK_LINES);
        while block.len() < BLOCK_LINES {
            let Some(line) = self.lines.next() else {
                break;
            };
            let line = line.ok()?;
            if let Some(before) = self.held.replace(line) {
                self.digest.update(before.as_bytes());
                self.digest.update(b"\n");
                block.push(before);
            }
        }
        Some((!block.is_empty()).then_some(block))
    }

    /// The last line read as the trailer, and the digest of the lines before it, once
    /// every block was taken.
    fn finish(self) -> Option<(Trailer, String)> {
        let trailer = serde_json::from_str::<Trailer>(self.held.as_deref()?).ok()?;
        Some((trailer, zonefile::hex(&self.digest.finalize())))
    }
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

    /// Blocks of domain lines are deserialized by two threads in turn: a line that is no
    /// domain, in a block of either, and a trailer that is not last, leave the snapshot
    /// untaken (and neither thread waiting for the other).
    #[test]
    fn a_line_that_is_no_domain_in_any_block_is_not_taken() {
        let text = big_config();
        let snapshot = String::from_utf8(snapshot_of(&text)).unwrap();
        let lines: Vec<&str> = snapshot.lines().collect();
        let with_line = |at: usize, line: &str| -> String {
            let mut changed = lines.clone();
            changed[at] = line;
            changed.join("\n") + "\n"
        };
        // Line 0 is the header: line 1 opens the first block, line 1 + BLOCK_LINES the
        // second; the last domain line ends a block of its own count.
        let last_domain = lines.len() - 2;
        for at in [1, 2 + BLOCK_LINES, 1 + 2 * BLOCK_LINES, last_domain] {
            let changed = with_line(at, "{\"not\": \"a domain\"}");
            assert_eq!(read_back(changed.as_bytes(), &text), None, "line {at}");
        }
        let trailer = lines[lines.len() - 1];
        let early = with_line(BLOCK_LINES + 3, trailer);
        assert_eq!(read_back(early.as_bytes(), &text), None);
        let twice = format!("{snapshot}{trailer}\n");
        assert_eq!(read_back(twice.as_bytes(), &text), None);
    }
}
