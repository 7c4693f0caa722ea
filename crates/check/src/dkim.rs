//! DKIM key records: for every selector whose private key mailzone holds, the record at
//! `<selector>._domainkey.<domain>` must exist, parse, carry exactly the public half of that
//! key, and a message signed with the key must verify through the record as served.
//!
//! The rules and where they come from:
//! - Presence at `<selector>._domainkey.<domain>` (RFC 6376 §3.6.2.1), following a CNAME
//!   when the selector is delegated to a provider's zone (the [`crate::lookup::Lookup`]
//!   follows it; the fix then names the record at the end of the chain). Missing →
//!   `dkim-missing`, with the exact record as the fix.
//! - One record: with several key records at one name a verifier picks any (RFC 6376
//!   §3.6.2.2). At the selector's own name `zone-multiple-records` already reports it; for a
//!   CNAME-delegated selector `dkim-multiple` does.
//! - Syntax of the tag-list (RFC 6376 §3.2: `tag=value` pairs separated by `;`, tag names
//!   `ALPHA *(ALPHA / DIGIT / "_")`, values of printable ASCII but `;`, no duplicate tag)
//!   and of the key record tags (RFC 6376 §3.6.1): `v=` first if present and exactly
//!   `DKIM1`; `k=` `rsa` or `ed25519` (RFC 8463 §4.2); `p=` base64 (RFC 6376 §3.6.1, FWS
//!   allowed inside) → `dkim-syntax`. `p=` empty means the key was revoked (RFC 6376
//!   §3.6.1) → `dkim-revoked`. `h=` without `sha256` excludes the only hash both algorithms
//!   sign with (RFC 8301 §3.1 forbids sha1) → `dkim-hash-excluded`. `s=` without `email`
//!   or `*` → `dkim-not-for-email`. `t=y` (testing, RFC 6376 §3.6.1) lets receivers treat
//!   failures as unsigned → `dkim-testing` (warning).
//! - The published key equals the public key derived from the private key the MTA signs
//!   with: `k=` names its algorithm (`dkim-key-type-mismatch`), and `p=` holds its bytes
//!   (`dkim-key-mismatch`): for Ed25519 the raw 32-byte key (RFC 8463 §4.2); for RSA the
//!   DER SubjectPublicKeyInfo (RFC 6376 §3.6.1), compared by modulus and exponent so that
//!   a bare PKCS#1 RSAPublicKey (accepted by most verifiers) is not called a mismatch.
//! - RSA key size, read from the modulus of the published key (RFC 8301 §3.2: verifiers
//!   MUST NOT accept keys under 1024 bits, signers SHOULD use at least 2048): < 1024 →
//!   `dkim-key-too-short` (error), < 2048 → `dkim-key-weak` (warning).
//! - End-to-end proof: a short message is signed with the private key by `mail-auth`
//!   (DKIM-Signature with `a=rsa-sha256` or `a=ed25519-sha256`) and verified by
//!   `mail-auth` against the TXT records served at the selector name. A failure that none
//!   of the checks above explains → `dkim-verify-failed`.
//!
//! Why the verification goes through a pre-filled cache: `mail-auth` (0.13; 0.14+ needs
//! rustc 1.98) resolves the key record itself with its own hickory resolver, which would
//! ask a recursive resolver rather than the servers this check was pointed at. Its
//! verifier consults the TXT cache handed in with [`mail_auth::Parameters`] before any
//! query, so the cache is filled with exactly the TXT strings our [`crate::lookup::Lookup`]
//! fetched at `<selector>._domainkey.<domain>` (after any CNAME), parsed by `mail-auth`'s
//! own key-record parser, just as its resolver would have stored them. The authenticator
//! is built with no name server at all: nothing can leave the process. The verdict is
//! therefore `mail-auth`'s own, through the record as served; mailzone only picks the
//! record set.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::{DkimSigner, Signature};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, ResolverCache, Txt};
use mailzone_records::dkim::DkimPrivateKey;
use mailzone_records::model::DkimAlgorithm;
use mailzone_records::{Name, RData, Record, RecordPurpose};

use crate::codes::Code;
use crate::context::DomainContext;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: Some(RecordPurpose::Dkim);
    DELEGATION_CNAME: Error, "dkim-delegation-cname",
        "a delegated selector's <slot>._domainkey.<domain> is not a CNAME to <slot>.<domain>.<delegateTo>";
    MISSING: Error, "dkim-missing",
        "no DKIM key record at <selector>._domainkey.<domain> for a key mailzone signs with";
    MULTIPLE: Error, "dkim-multiple",
        "a CNAME-delegated selector leads to more than one DKIM key record";
    SYNTAX: Error, "dkim-syntax",
        "the key record is not a valid DKIM tag-list (RFC 6376 §3.2, §3.6.1)";
    REVOKED: Error, "dkim-revoked",
        "the key record has an empty p= (revoked key) while mailzone still signs with the key";
    TESTING: Warning, "dkim-testing",
        "the key record has t=y (testing): receivers may treat failures as unsigned mail";
    NOT_FOR_EMAIL: Error, "dkim-not-for-email",
        "the key record's s= does not include email or *";
    HASH_EXCLUDED: Error, "dkim-hash-excluded",
        "the key record's h= excludes sha256, the hash mailzone's signatures use";
    KEY_TYPE_MISMATCH: Error, "dkim-key-type-mismatch",
        "the key record's k= names another algorithm than the private key's";
    KEY_MISMATCH: Error, "dkim-key-mismatch",
        "the published key does not match the private key the MTA signs with";
    KEY_TOO_SHORT: Error, "dkim-key-too-short",
        "the published RSA key has fewer than 1024 bits: verifiers must reject it";
    KEY_WEAK: Warning, "dkim-key-weak",
        "the published RSA key has fewer than 2048 bits";
    VERIFY_FAILED: Error, "dkim-verify-failed",
        "a message signed with the private key does not verify through the record as served";
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (selector, key) in ctx.dkim_keys {
        findings.extend(check_selector(ctx, selector, key).await);
    }
    findings
}

/// The checks of one selector.
async fn check_selector(
    ctx: &DomainContext<'_>,
    selector: &str,
    key: &DkimPrivateKey,
) -> Vec<Finding> {
    let domain = &ctx.domain.name;
    let Ok(name) = mailzone_records::dkim::record_name(selector, domain) else {
        // The config loader validates selectors; nothing to ask DNS about.
        return Vec::new();
    };
    let expected_value = key.public_key().txt_value();
    let desired = ctx
        .desired
        .iter()
        .find(|d| d.record.name == name && matches!(d.record.data, RData::Txt(_)))
        .map(|d| d.record.clone())
        .unwrap_or_else(|| Record {
            name: name.clone(),
            ttl: ctx.domain.ttl,
            data: RData::Txt(expected_value.clone().into_bytes()),
        });

    let answer = match support::query(ctx, &name, "TXT").await {
        Ok(answer) => answer,
        Err(finding) => return vec![finding],
    };
    // Where the record lives: the selector name, or the end of its CNAME chain.
    let owner = answer.cname_chain.last().cloned().unwrap_or(name.clone());
    let published_line = |value: &str| {
        support::line(&Record {
            name: owner.clone(),
            ttl: desired.ttl,
            data: RData::Txt(value.as_bytes().to_vec()),
        })
    };
    let mut findings = Vec::new();
    // Delegated keys (`delegateTo`): the selector must be an alias of the provider's
    // record (RFC 1034 §3.6.2), or rotation in the provider's zone never reaches it.
    if let Some(delegation) = ctx.domain.dkim_management.delegation()
        && let Ok(target) = delegation.key_name(selector, domain)
        && answer.cname_chain.first() != Some(&target)
    {
        let seen = match answer.cname_chain.first() {
            Some(other) => format!("{name} is a CNAME to {other}"),
            None => format!("{name} is not a CNAME"),
        };
        let wanted = Record {
            name: name.clone(),
            ttl: ctx.domain.ttl,
            data: RData::Cname(target.clone()),
        };
        findings.push(
            Finding::new(
                DELEGATION_CNAME,
                name.to_string(),
                format!(
                    "selector `{selector}` is delegated to {}: {name} must be a CNAME to {target}, where mailzone publishes and rotates the key",
                    delegation.zone
                ),
            )
            .seen(seen)
            .expected(format!("CNAME {target}"))
            .fix(format!("publish {}", support::line(&wanted))),
        );
    }
    let delegated_cname = ctx
        .domain
        .dkim_management
        .delegation()
        .and_then(|d| d.key_name(selector, domain).ok())
        .map(|target| Record {
            name: name.clone(),
            ttl: ctx.domain.ttl,
            data: RData::Cname(target),
        });
    let fix = if let (true, Some(cname)) = (owner == name, &delegated_cname) {
        format!(
            "publish {} (the key itself is published by mailzone at its target)",
            support::line(cname)
        )
    } else if owner == name {
        format!("publish {}", support::line(&desired))
    } else {
        format!(
            "{name} is a CNAME to {owner} (a delegated selector): publish {} there, at the provider that serves it",
            published_line(&expected_value)
        )
    };

    // Every TXT value there, and those that look like DKIM key records (a `p=` tag, or
    // starting with `v=DKIM1`).
    let values: Vec<Vec<u8>> = answer
        .records
        .iter()
        .filter_map(|r| match &r.record.data {
            RData::Txt(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect();
    let candidates: Vec<&Vec<u8>> = values.iter().filter(|v| looks_like_dkim(v)).collect();
    if candidates.is_empty() {
        let seen = if values.is_empty() {
            match answer.rcode {
                crate::lookup::Rcode::NxDomain => format!("{owner} does not exist (NXDOMAIN)"),
                _ => format!("no TXT record at {owner}"),
            }
        } else {
            support::values(answer.records.iter())
        };
        findings.push(
            Finding::new(
                MISSING,
                name.to_string(),
                format!(
                    "no DKIM key record for selector `{selector}` at {name}: receivers cannot verify mail signed with this key, and DMARC fails for it"
                ),
            )
            .seen(seen)
            .expected(expected_value.clone())
            .fix(fix),
        );
        return findings;
    }

    if candidates.len() > 1 && owner != name {
        findings.push(
            Finding::new(
                MULTIPLE,
                name.to_string(),
                format!(
                    "{name} leads (by CNAME) to {} DKIM key records at {owner}: a verifier uses any one of them (RFC 6376 §3.6.2.2)",
                    candidates.len()
                ),
            )
            .seen(support::values(answer.records.iter()))
            .expected(format!("exactly one: {expected_value}"))
            .fix(format!(
                "keep only {} at {owner}",
                published_line(&expected_value)
            )),
        );
    }

    // The record to judge: the one holding mailzone's key when there is one, else the
    // first.
    let parsed: Vec<(String, Result<KeyRecord, String>)> = candidates
        .iter()
        .map(|v| {
            let text = String::from_utf8_lossy(v).into_owned();
            let record = KeyRecord::parse(&text);
            (text, record)
        })
        .collect();
    let mine = key.public_key();
    let chosen = parsed
        .iter()
        .find(|(_, r)| {
            r.as_ref()
                .is_ok_and(|r| same_key(&r.public_key, &mine.bytes, mine.algorithm))
        })
        .unwrap_or(&parsed[0]);
    let (text, record) = chosen;

    let base = |code: &'static Code, message: String| {
        Finding::new(code, name.to_string(), message)
            .seen(text.clone())
            .expected(expected_value.clone())
            .fix(fix.clone())
    };
    let record = match record {
        Ok(record) => record,
        Err(why) => {
            findings.push(base(
                SYNTAX,
                format!("the DKIM key record for selector `{selector}` is not valid: {why}"),
            ));
            return findings;
        }
    };

    let mut definite_error = false;
    if record.public_key.is_empty() {
        findings.push(base(
            REVOKED,
            format!(
                "the DKIM key record for selector `{selector}` has an empty p=, which marks the key revoked (RFC 6376 §3.6.1), but mailzone still holds the key and the MTA signs with it: every signature fails"
            ),
        ));
        return findings;
    }
    if record.testing {
        findings.push(
            base(
                TESTING,
                format!(
                    "the DKIM key record for selector `{selector}` has t=y: receivers may treat mail whose signature fails as if it were unsigned (RFC 6376 §3.6.1)"
                ),
            )
            .fix(format!("remove the t=y tag: {fix}")),
        );
    }
    if let Some(services) = &record.services
        && !services
            .iter()
            .any(|s| s == "*" || s.eq_ignore_ascii_case("email"))
    {
        definite_error = true;
        findings.push(base(
            NOT_FOR_EMAIL,
            format!(
                "the DKIM key record for selector `{selector}` has s={} which does not include `email` or `*`: verifiers must not use it for mail (RFC 6376 §3.6.1)",
                services.join(":")
            ),
        ));
    }
    if let Some(hashes) = &record.hashes
        && !hashes.iter().any(|h| h.eq_ignore_ascii_case("sha256"))
    {
        definite_error = true;
        findings.push(base(
            HASH_EXCLUDED,
            format!(
                "the DKIM key record for selector `{selector}` has h={} which excludes sha256, the hash of rsa-sha256 and ed25519-sha256 signatures (sha1 must not be used, RFC 8301 §3.1)",
                hashes.join(":")
            ),
        ));
    }

    if record.algorithm != mine.algorithm {
        definite_error = true;
        findings.push(base(
            KEY_TYPE_MISMATCH,
            format!(
                "the DKIM key record for selector `{selector}` says k={} but the private key the MTA signs with is {}: verifiers read the key as the wrong algorithm",
                k_name(record.algorithm),
                k_name(mine.algorithm)
            ),
        ));
    } else {
        match record.algorithm {
            DkimAlgorithm::Ed25519Sha256 if record.public_key.len() != 32 => {
                definite_error = true;
                findings.push(base(
                    SYNTAX,
                    format!(
                        "the Ed25519 key in p= is {} bytes long; it must be the raw 32-byte public key (RFC 8463 §4.2)",
                        record.public_key.len()
                    ),
                ));
            }
            DkimAlgorithm::RsaSha256 if rsa_parts(&record.public_key).is_none() => {
                definite_error = true;
                findings.push(base(
                    SYNTAX,
                    "p= is not an RSA public key (a DER SubjectPublicKeyInfo, RFC 6376 §3.6.1)"
                        .to_string(),
                ));
            }
            _ => {
                if !same_key(&record.public_key, &mine.bytes, mine.algorithm) {
                    definite_error = true;
                    findings.push(base(
                        KEY_MISMATCH,
                        format!(
                            "the published key does not match the private key the MTA signs with (selector `{selector}`): every signature made with it fails DKIM, and DMARC with it"
                        ),
                    ));
                }
            }
        }
        if record.algorithm == DkimAlgorithm::RsaSha256
            && let Some((modulus, _)) = rsa_parts(&record.public_key)
        {
            let bits = modulus_bits(&modulus);
            if bits < 1024 {
                definite_error = true;
                findings.push(
                    base(
                        KEY_TOO_SHORT,
                        format!(
                            "the published RSA key of selector `{selector}` has {bits} bits; verifiers must reject keys under 1024 bits (RFC 8301 §3.2)"
                        ),
                    )
                    .fix(format!(
                        "make a new key of at least 2048 bits (or Ed25519) under a new selector and publish its record; {fix}"
                    )),
                );
            } else if bits < 2048 {
                findings.push(
                    base(
                        KEY_WEAK,
                        format!(
                            "the published RSA key of selector `{selector}` has {bits} bits; RFC 8301 §3.2 asks signers for at least 2048"
                        ),
                    )
                    .fix(
                        "roll over to a 2048-bit RSA or an Ed25519 key under a new selector (`mailzone dkim rotate`)",
                    ),
                );
            }
        }
    }

    // The end-to-end proof, through every TXT value served there.
    if let Err(why) = sign_and_verify(key, selector, domain, &values).await
        && !definite_error
    {
        findings.push(base(
            VERIFY_FAILED,
            format!(
                "a message signed with the private key of selector `{selector}` does not verify through the record served at {name}: {why}"
            ),
        ));
    }
    findings
}

/// A DKIM key record as RFC 6376 §3.6.1 defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub algorithm: DkimAlgorithm,
    /// `p=` decoded; empty for a revoked key.
    pub public_key: Vec<u8>,
    /// `h=`, when present.
    pub hashes: Option<Vec<String>>,
    /// `s=`, when present.
    pub services: Option<Vec<String>>,
    /// `t=y`.
    pub testing: bool,
}

impl KeyRecord {
    /// Parses a key record; `Err` says what is wrong, for a person.
    pub fn parse(text: &str) -> Result<KeyRecord, String> {
        let tags = tag_list(text)?;
        if let Some(index) = tags.iter().position(|(n, _)| n == "v") {
            if index != 0 {
                return Err("v= must be the first tag (RFC 6376 §3.6.1)".into());
            }
            if tags[0].1 != "DKIM1" {
                return Err(format!(
                    "v={} is not DKIM1: verifiers discard the record",
                    tags[0].1
                ));
            }
        }
        let get = |tag: &str| tags.iter().find(|(n, _)| n == tag).map(|(_, v)| v.as_str());
        let algorithm = match get("k") {
            None => DkimAlgorithm::RsaSha256,
            Some(k) if k.eq_ignore_ascii_case("rsa") => DkimAlgorithm::RsaSha256,
            Some(k) if k.eq_ignore_ascii_case("ed25519") => DkimAlgorithm::Ed25519Sha256,
            Some(k) => {
                return Err(format!(
                    "k={k} is not a key type verifiers know (rsa, ed25519)"
                ));
            }
        };
        let p = get("p").ok_or("the required p= tag is missing")?;
        let compact: String = p.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let public_key = BASE64
            .decode(compact.as_bytes())
            .map_err(|e| format!("p= is not valid base64: {e}"))?;
        let list = |tag: &str| {
            get(tag).map(|v| {
                v.split(':')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
        };
        let testing = list("t").is_some_and(|flags| flags.iter().any(|f| f == "y"));
        Ok(KeyRecord {
            algorithm,
            public_key,
            hashes: list("h"),
            services: list("s"),
            testing,
        })
    }
}

/// RFC 6376 §3.2 tag-list: `(name, value)` in order, values with surrounding whitespace
/// removed.
fn tag_list(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut specs: Vec<&str> = text.split(';').collect();
    if specs.len() > 1 && specs.last().is_some_and(|s| s.trim().is_empty()) {
        specs.pop(); // a trailing `;` is allowed
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for spec in specs {
        let Some((name, value)) = spec.split_once('=') else {
            return Err(if spec.trim().is_empty() {
                "an empty tag between two `;`".to_string()
            } else {
                format!("`{}` is not a tag=value pair", spec.trim())
            });
        };
        let name = name.trim();
        let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(format!("`{name}` is not a valid tag name"));
        }
        let value = value.trim();
        if let Some(c) = value.chars().find(|c| {
            !(c.is_ascii_graphic() || *c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')
        }) {
            return Err(format!("the value of {name}= has the character {c:?}"));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!(
                "the tag {name}= appears twice, which makes the whole record invalid (RFC 6376 §3.2)"
            ));
        }
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// A TXT value that is meant as a DKIM key record.
fn looks_like_dkim(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value);
    support::has_tag(value, "v=DKIM1")
        || text
            .split(';')
            .any(|spec| spec.trim_start().starts_with("p=") || spec.trim_start().starts_with("p ="))
}

fn k_name(algorithm: DkimAlgorithm) -> &'static str {
    match algorithm {
        DkimAlgorithm::Ed25519Sha256 => "ed25519",
        DkimAlgorithm::RsaSha256 => "rsa",
    }
}

/// Whether published key bytes are the same key as `mine` (mailzone's `p=` bytes).
fn same_key(published: &[u8], mine: &[u8], algorithm: DkimAlgorithm) -> bool {
    if published == mine {
        return true;
    }
    match algorithm {
        DkimAlgorithm::Ed25519Sha256 => false,
        DkimAlgorithm::RsaSha256 => match (rsa_parts(published), rsa_parts(mine)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

/// The modulus and exponent (big-endian, no leading zeros) of an RSA public key given as
/// a DER SubjectPublicKeyInfo or a bare PKCS#1 RSAPublicKey.
fn rsa_parts(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use x509_parser::prelude::FromDer as _;
    use x509_parser::public_key::{PublicKey, RSAPublicKey};
    use x509_parser::x509::SubjectPublicKeyInfo;
    let trim = |b: &[u8]| {
        let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        b[start..].to_vec()
    };
    if let Ok((rest, spki)) = SubjectPublicKeyInfo::from_der(der)
        && rest.is_empty()
    {
        return match spki.parsed() {
            Ok(PublicKey::RSA(key)) => Some((trim(key.modulus), trim(key.exponent))),
            _ => None,
        };
    }
    match RSAPublicKey::from_der(der) {
        Ok(([], key)) => Some((trim(key.modulus), trim(key.exponent))),
        _ => None,
    }
}

/// The size of a modulus in bits.
fn modulus_bits(modulus: &[u8]) -> usize {
    match modulus.first() {
        None => 0,
        Some(&first) => modulus.len() * 8 - first.leading_zeros() as usize,
    }
}

/// A TXT cache for `mail-auth`'s verifier holding the records this check fetched.
struct Served(Mutex<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for Served {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _valid_until: std::time::Instant) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, value);
        }
    }
}

/// Signs a short message with `key` as `selector` of `domain` and verifies it with
/// `mail-auth` against `served` (the TXT values at the selector name). The outcome depends
/// only on the key and the served values (the names only label the test message), so it is
/// computed once per (key, served values) in the process: a key shared by many domains, or
/// checked again by the service's schedule, is signed and verified once. The cache holds
/// SHA-256 digests, never the key.
pub async fn sign_and_verify(
    key: &DkimPrivateKey,
    selector: &str,
    domain: &Name,
    served: &[Vec<u8>],
) -> Result<(), String> {
    /// Entries kept at most; the cache starts over beyond (a run needs one per key).
    const MAX_PROOFS: usize = 100_000;
    type Proofs = Mutex<HashMap<[u8; 32], Result<(), String>>>;
    static PROOFS: OnceLock<Proofs> = OnceLock::new();
    let digest = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(key.pkcs8_pem().as_bytes());
        for value in served {
            h.update((value.len() as u64).to_be_bytes());
            h.update(value);
        }
        <[u8; 32]>::from(h.finalize())
    };
    let proofs = PROOFS.get_or_init(Default::default);
    if let Some(known) = proofs.lock().expect("proof cache lock").get(&digest) {
        return known.clone();
    }
    let proof = prove(key, selector, domain, served).await;
    let mut proofs = proofs.lock().expect("proof cache lock");
    if proofs.len() >= MAX_PROOFS {
        proofs.clear();
    }
    proofs.insert(digest, proof.clone());
    proof
}

/// The proof itself (see [`sign_and_verify`]).
async fn prove(
    key: &DkimPrivateKey,
    selector: &str,
    domain: &Name,
    served: &[Vec<u8>],
) -> Result<(), String> {
    let domain_text = domain.as_str();
    let message = format!(
        "From: mailzone check <postmaster@{domain_text}>\r\n\
         To: postmaster@{domain_text}\r\n\
         Subject: mailzone DKIM check\r\n\
         Date: Thu, 26 Nov 2026 12:00:00 +0000\r\n\
         Message-ID: <dkim-check@{domain_text}>\r\n\
         \r\n\
         This message proves that the key record verifies what the key signs.\r\n"
    );
    let der = pem::parse(key.pkcs8_pem())
        .map_err(|e| format!("the private key cannot be read: {e}"))?
        .into_contents();
    let signature = match key.algorithm() {
        DkimAlgorithm::RsaSha256 => {
            let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der);
            let signer = RsaKey::<Sha256>::from_key_der(pkcs8.into())
                .map_err(|e| format!("mail-auth cannot use the RSA key: {e}"))?;
            sign(signer, domain_text, selector, &message)
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let signer = Ed25519Key::from_pkcs8_maybe_unchecked_der(&der)
                .map_err(|e| format!("mail-auth cannot use the Ed25519 key: {e}"))?;
            sign(signer, domain_text, selector, &message)
        }
    }
    .map_err(|e| format!("mail-auth cannot sign with the key: {e}"))?;
    let signed = format!("{}{message}", signature.to_header());

    // What mail-auth's resolver would have stored for this name: the first TXT value that
    // parses as a key record, else the last parse error.
    let mut parsed = Err(mail_auth::Error::Dns(
        mail_auth::DnsError::InvalidRecordType,
    ));
    for value in served {
        parsed = DomainKey::parse(value);
        if parsed.is_ok() {
            break;
        }
    }
    let cache = Served(Mutex::new(HashMap::new()));
    let fqdn = format!("{selector}._domainkey.{domain_text}.").to_ascii_lowercase();
    cache.insert(
        fqdn.into_boxed_str(),
        parsed.into(),
        std::time::Instant::now(),
    );

    let authenticator = authenticator()?;
    let parsed_message = AuthenticatedMessage::parse(signed.as_bytes())
        .ok_or("mail-auth cannot parse the signed message")?;
    let outputs = authenticator
        .verify_dkim(mail_auth::Parameters::new(&parsed_message).with_txt_cache(&cache))
        .await;
    match outputs.first().map(|o| o.result()) {
        Some(DkimResult::Pass) => Ok(()),
        Some(DkimResult::Fail(e))
        | Some(DkimResult::Neutral(e))
        | Some(DkimResult::PermError(e))
        | Some(DkimResult::TempError(e)) => Err(format!("mail-auth says: {e}")),
        Some(DkimResult::None) | None => Err("mail-auth found no signature to verify".into()),
    }
}

/// mail-auth's verifier, made once: its resolver is never used (the record comes from the
/// pre-filled cache, with no server configured), and building one costs more than a
/// verification.
fn authenticator() -> Result<&'static MessageAuthenticator, String> {
    static AUTHENTICATOR: OnceLock<Result<MessageAuthenticator, String>> = OnceLock::new();
    AUTHENTICATOR
        .get_or_init(|| {
            let config = mail_auth::hickory_resolver::config::ResolverConfig::from_parts(
                None,
                Vec::new(),
                Vec::new(),
            );
            // Not even the hosts file is read: the checker resolves nothing this way.
            let mut opts = mail_auth::hickory_resolver::config::ResolverOpts::default();
            opts.use_hosts_file = mail_auth::hickory_resolver::config::ResolveHosts::Never;
            MessageAuthenticator::new(config, opts)
                .map_err(|e| format!("mail-auth cannot start: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Signs `message` for `domain` and `selector` with `key`, over the header fields of the
/// test message.
fn sign<K: SigningKey>(
    key: K,
    domain: &str,
    selector: &str,
    message: &str,
) -> mail_auth::Result<Signature> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(message.as_bytes())
}
