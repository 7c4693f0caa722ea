//! The digest of what one zone's records are planned from: the mail server's settings,
//! the TLSA digests, the record types a run selects, each domain's settings and DKIM keys,
//! and the planner's own code. [`plan`](super::plan) and the grouping by zone are pure
//! functions of these, so a zone whose inputs digest is the one it was last found in sync
//! with has the same desired records: a run can skip planning it.

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};

use crate::model::{Domain, Server};
use crate::record::RecordPurpose;
use crate::tlsa::TlsaKeys;
use crate::zonefile;

/// What the digest of every zone starts from: the code (this crate's sources and the
/// dependency lock, digested at build time, and the version), then what a run shares.
const PLANNER: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "/",
    env!("MAILZONE_PLANNER_SOURCE")
);

/// A zone's inputs digest being built. [`InputsDigest::new`] once per run, cloned for each
/// zone, then [`InputsDigest::domain`] for each of the zone's domains in plan order.
#[derive(Clone)]
pub struct InputsDigest {
    hasher: Sha256,
}

impl InputsDigest {
    /// The inputs every zone of a run shares. `caller` names the version of the caller's
    /// own part of planning (the engine's choice of keys, its filters), hashed beside this
    /// crate's.
    pub fn new(
        caller: &str,
        server: &Server,
        tlsa: Option<&TlsaKeys>,
        types: &[RecordPurpose],
    ) -> Self {
        let mut digest = InputsDigest {
            hasher: Sha256::new(),
        };
        digest.feed(PLANNER);
        digest.feed(caller);
        digest.feed(server);
        digest.feed(&tlsa);
        digest.feed(types);
        digest
    }

    /// Adds a domain and what tells its DKIM keys apart (the published keys, or the
    /// stored keys they come from).
    pub fn domain(&mut self, domain: &Domain, keys: &impl Hash) {
        self.feed(domain);
        self.feed(keys);
    }

    /// The digest, in hex.
    pub fn finish(self) -> String {
        zonefile::hex(&self.hasher.finalize())
    }

    /// Hashes `value` into the digest: its bytes gathered first, then given to SHA-256 at
    /// once (the derived `Hash` writes a field at a time, a few bytes each, and an update
    /// per piece cost more than the hashing itself).
    fn feed(&mut self, value: &(impl Hash + ?Sized)) {
        let mut feed = Feed(Vec::with_capacity(512));
        value.hash(&mut feed);
        self.hasher.update(&feed.0);
    }
}

/// What a zone state remembers of its inputs: their digest bound to the desired digest
/// planned from them. A state whose desired digest was rewritten without it (by a
/// mailzone that predates it, sharing a PostgreSQL store) no longer matches, so such a
/// pair is never trusted.
pub fn remembered(inputs: &str, desired_digest: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(inputs.as_bytes());
    hasher.update(b"\n");
    hasher.update(desired_digest.as_bytes());
    zonefile::hex(&hasher.finalize())
}

/// A [`Hasher`] that keeps what it is given, for SHA-256: the derived `Hash` of the model
/// names every field and prefixes every list with its length, so equal feeds mean equal
/// inputs. Its `finish` is never asked for (the digest is read from the SHA-256).
struct Feed(Vec<u8>);

impl Hasher for Feed {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("an inputs digest is read with InputsDigest::finish")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::Config;

    const CONFIG: &str = r#"
[server]
hostname = "mail.example.org"
ipv4 = ["192.0.2.1"]

[dnsServer]
primary = { kind = "rfc2136", host = "127.0.0.1" }

[domain]
"example.org".dnsManagement.automatic = { dnsServer = "primary" }
"example.net".dnsManagement.automatic = { dnsServer = "primary" }
"#;

    fn config(text: &str) -> Config {
        crate::config::parse(text, Path::new("/etc/mailzone")).unwrap()
    }

    fn digest(config: &Config, domain: usize, keys: &[&str], types: &[RecordPurpose]) -> String {
        let mut digest = InputsDigest::new("engine", &config.server, None, types);
        digest.domain(&config.domains[domain], &keys);
        digest.finish()
    }

    #[test]
    fn equal_inputs_give_equal_digests_and_any_change_another() {
        let base = config(CONFIG);
        let same = digest(&base, 0, &["k1"], &[]);
        assert_eq!(same, digest(&config(CONFIG), 0, &["k1"], &[]));
        let changes = [
            ("another domain", digest(&base, 1, &["k1"], &[])),
            ("another key", digest(&base, 0, &["k2"], &[])),
            ("one more key", digest(&base, 0, &["k1", "k2"], &[])),
            (
                "selected types",
                digest(&base, 0, &["k1"], &[RecordPurpose::Mx]),
            ),
            (
                "a domain setting",
                digest(
                    &config(&CONFIG.replace(
                        r#""example.org".dnsManagement"#,
                        "\"example.org\".dmarc = { policy = \"none\" }\n\"example.org\".dnsManagement",
                    )),
                    0,
                    &["k1"],
                    &[],
                ),
            ),
            (
                "a server setting",
                digest(
                    &config(&CONFIG.replace("192.0.2.1", "192.0.2.2")),
                    0,
                    &["k1"],
                    &[],
                ),
            ),
        ];
        for (what, changed) in changes {
            assert_ne!(changed, same, "{what} leaves the digest as it was");
        }
        let mut with_tlsa = InputsDigest::new(
            "engine",
            &base.server,
            Some(&TlsaKeys {
                leaf: vec![1; 32],
                issuer: None,
                next: None,
                leaf_subject: "CN=mail.example.org".into(),
                retiring: Vec::new(),
            }),
            &[],
        );
        with_tlsa.domain(&base.domains[0], &["k1"]);
        assert_ne!(with_tlsa.finish(), same, "TLSA digests");
        let mut other_caller = InputsDigest::new("engine 2", &base.server, None, &[]);
        other_caller.domain(&base.domains[0], &["k1"]);
        assert_ne!(other_caller.finish(), same, "the caller's code");
    }

    #[test]
    fn a_remembered_digest_holds_for_its_desired_digest_only() {
        assert_eq!(remembered("i", "d"), remembered("i", "d"));
        assert_ne!(remembered("i", "d"), remembered("i", "e"));
        assert_ne!(remembered("i", "d"), remembered("j", "d"));
    }
}
