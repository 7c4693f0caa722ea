//! DNSSEC: whether the zone's answers validate from a trust anchor (RFC 4033 §5, RFC 4035
//! §5), and whether the parent's DS matches the zone's keys.
//!
//! What is checked, and where each rule comes from:
//! - The zone is signed: its apex serves a DNSKEY RRset (RFC 4035 §2.1). An unsigned zone is
//!   `dnssec-unsigned`, information only, but an error when TLSA records are published:
//!   senders use TLSA only from a validated answer (RFC 7672 §2.2).
//! - The DNSKEY RRset is signed by a key that is trusted (RFC 4035 §5.2): one matching a
//!   configured trust anchor for the zone (a DNSKEY equal to it, or a DS whose digest over
//!   the key matches, RFC 4034 §5.1.4; else `dnssec-anchor-mismatch`), or one matching a DS
//!   record served by the parent whose RRSIG verifies with the parent's own trusted keys —
//!   the same walk applied to the parent, up to an anchor. DS records at a reachable parent
//!   that match no key are `dnssec-ds-mismatch` (resolvers find the zone bogus); a signed,
//!   reachable parent without a DS for the zone is `dnssec-ds-missing` (resolvers find the
//!   zone insecure, RFC 4035 §5.2). The parent is "reachable" when the servers asked
//!   answer the DS question from the parent zone (RFC 4035 §3.1.4.1: the SOA of a negative
//!   answer names the parent); answered from the zone itself, or refused, the parent is
//!   not served there.
//! - The RRSIGs of the SOA, the MX RRset and each TLSA RRset mailzone plans verify with the
//!   zone's keys (RFC 4035 §5.3: signer name, key tag and algorithm of a zone key, the
//!   signature over the canonical RRset of RFC 4034 §6) and are valid now (RFC 4034 §3.1.5,
//!   with serial-number arithmetic): `dnssec-signature-invalid`, `-expired`,
//!   `-not-yet-valid`, or `-missing` for an RRset served without a signature in a signed
//!   zone. An algorithm mailzone cannot verify (RFC 8624 §3.1 lists the ones to implement)
//!   is `dnssec-algorithm-unsupported`: no verdict, rather than a false one.
//!
//! Trust anchors (`CheckOptions::trust_anchors`) are DS or DNSKEY lines in zone-file form,
//! for the zone or any ancestor. None configured means the root's KSKs (as hickory-proto
//! ships them): through a resolver given with `--nameserver` the walk goes up to the root,
//! but the zone's own authoritative servers (and any offline test) do not serve the root
//! and the TLDs, so the walk stops at the first parent the servers asked do not serve; the
//! zone is then validated against its own DNSKEY RRset and `dnssec-chain-unverified`
//! (information) says the chain from the root was not followed. The root anchor itself
//! cannot be tested offline.
//! When the [`crate::lookup::Lookup`] does not say which servers it asks (a test double),
//! nothing can be validated here: an answer already marked `authenticated` (AD bit of a
//! validating resolver) is trusted, and otherwise `dnssec-not-validated` says so.
//!
//! The cryptography is hickory-proto's (`dnssec-ring`): `DNSKEY`/`DS`/`RRSIG` record data,
//! `DS::covers` for the DS digest, `Verifier::verify_rrsig` for the RRSIG over the
//! canonical RRset (`TBS`). The records come from [`source::NetworkSource`], which asks the
//! same servers as the other checks (see that module for why it is hand-written).

pub mod source;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey as _, PublicKeyBuf, Verifier as _};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name as WireName, RData as WireRData, Record, RecordType};
use mailzone_records::{Name, RData};

use crate::codes::Code;
use crate::context::DomainContext;
use crate::finding::{Finding, Severity};
use source::{NetworkSource, RawAnswer, RawSource};

const fn code(id: &'static str, severity: Severity, summary: &'static str) -> Code {
    Code {
        id,
        severity,
        record_type: None,
        summary,
    }
}

pub const UNSIGNED: &Code = &code(
    "dnssec-unsigned",
    Severity::Info,
    "the zone is not signed (no DNSKEY); an error when TLSA records are published",
);
pub const NOT_VALIDATED: &Code = &code(
    "dnssec-not-validated",
    Severity::Info,
    "the answers are not validated and the servers asked are unknown, so signatures were not examined",
);
pub const ANCHOR_MISMATCH: &Code = &code(
    "dnssec-anchor-mismatch",
    Severity::Error,
    "no key of the zone's DNSKEY RRset matches the configured trust anchor and signs the RRset",
);
pub const DS_MISMATCH: &Code = &code(
    "dnssec-ds-mismatch",
    Severity::Error,
    "the parent's DS records match no key that signs the zone's DNSKEY RRset",
);
pub const DS_MISSING: &Code = &code(
    "dnssec-ds-missing",
    Severity::Warning,
    "the parent is reachable but serves no DS for the signed zone",
);
pub const SIGNATURE_INVALID: &Code = &code(
    "dnssec-signature-invalid",
    Severity::Error,
    "an RRSIG does not verify with the zone's keys",
);
pub const SIGNATURE_EXPIRED: &Code = &code(
    "dnssec-signature-expired",
    Severity::Error,
    "an RRSIG has expired",
);
pub const SIGNATURE_NOT_YET_VALID: &Code = &code(
    "dnssec-signature-not-yet-valid",
    Severity::Error,
    "an RRSIG's inception time is in the future",
);
pub const SIGNATURE_MISSING: &Code = &code(
    "dnssec-signature-missing",
    Severity::Error,
    "an RRset of the signed zone is served without RRSIG",
);
pub const ALGORITHM_UNSUPPORTED: &Code = &code(
    "dnssec-algorithm-unsupported",
    Severity::Warning,
    "the zone's keys use an algorithm mailzone cannot verify",
);
pub const CHAIN_UNVERIFIED: &Code = &code(
    "dnssec-chain-unverified",
    Severity::Info,
    "the zone validates against its own keys, but no trust anchor reaches it",
);

pub const CODES: &[&Code] = &[
    UNSIGNED,
    NOT_VALIDATED,
    ANCHOR_MISMATCH,
    DS_MISMATCH,
    DS_MISSING,
    SIGNATURE_INVALID,
    SIGNATURE_EXPIRED,
    SIGNATURE_NOT_YET_VALID,
    SIGNATURE_MISSING,
    ALGORITHM_UNSUPPORTED,
    CHAIN_UNVERIFIED,
];

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let servers = ctx.lookup.servers();
    if servers.is_empty() {
        return without_servers(ctx).await;
    }
    let source = NetworkSource {
        servers,
        timeout: ctx.options.timeout,
    };
    check_with(ctx, &source, now()).await
}

/// Seconds since the epoch, as RRSIG times count them.
pub fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// Without servers: trust the `authenticated` flag of the lookup's answers.
async fn without_servers(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let zone = &ctx.domain.zone;
    match crate::support::query(ctx, zone, "SOA").await {
        Err(finding) => vec![finding],
        Ok(answer) if answer.authenticated => Vec::new(),
        Ok(_) => vec![
            Finding::new(
                NOT_VALIDATED,
                zone.to_string(),
                format!(
                    "the answers for {zone} are not DNSSEC-validated, and the servers asked are not known to mailzone, so their signatures could not be examined"
                ),
            )
            .expected("answers with the AD bit of a validating resolver, or the zone's servers")
            .fix("pass a validating resolver or the zone's servers with --nameserver"),
        ],
    }
}

/// The check, with records from `source` and the time `now` (seconds since the epoch).
pub async fn check_with(ctx: &DomainContext<'_>, source: &dyn RawSource, now: u32) -> Vec<Finding> {
    let zone = &ctx.domain.zone;
    let tlsa_names = tlsa_names(ctx);
    let anchors = match parse_anchors(&ctx.options.trust_anchors) {
        Ok(a) => a,
        Err(why) => {
            return vec![
                Finding::new(
                    ANCHOR_MISMATCH,
                    zone.to_string(),
                    format!("the configured trust anchor cannot be read: {why}"),
                )
                .seen(ctx.options.trust_anchors.join("; "))
                .expected("DS or DNSKEY records in zone-file form")
                .fix("give trust anchors as `<zone>. DS <tag> <alg> <digest type> <hex>` or `<zone>. DNSKEY <flags> 3 <alg> <base64>`"),
            ];
        }
    };
    let validator = Validator::new(source, anchors, now);
    let wire_zone = wire(zone);
    let keys = match validator.zone_keys(wire_zone.clone()).await {
        Ok(keys) => keys,
        Err(ChainError::Unsigned(_)) => {
            let mut finding = Finding::new(
                UNSIGNED,
                zone.to_string(),
                format!("the zone {zone} is not signed: it serves no DNSKEY record"),
            )
            .seen("no DNSKEY RRset")
            .expected("a signed zone (DNSKEY, RRSIG) with its DS at the parent")
            .fix("enable DNSSEC signing for the zone at its DNS host and publish the DS record at the registrar");
            if !tlsa_names.is_empty() {
                finding = finding.severity(Severity::Error);
                finding.message.push_str(
                    ": the TLSA records it publishes are ignored by every sender (DANE needs DNSSEC, RFC 7672 §2.2)",
                );
            }
            return vec![finding];
        }
        Err(e) => return vec![chain_finding(&e, zone)],
    };

    let mut findings = Vec::new();
    findings.extend(ds_findings(&keys, zone));
    if let Trust::Unanchored(why) = &keys.trust {
        findings.push(
            Finding::new(
                CHAIN_UNVERIFIED,
                zone.to_string(),
                format!(
                    "the zone {zone} validates against its own DNSKEY RRset, but the chain of trust from an anchor was not followed: {why}"
                ),
            )
            .expected("a trust anchor for the zone or an ancestor whose zone the servers serve")
            .fix("to validate fully, configure a trust anchor (DS or DNSKEY) or check through a validating resolver"),
        );
    }

    // The RRsets to verify: SOA, the domain's MX when planned, every planned TLSA name.
    let mut questions: Vec<(Name, RecordType)> = vec![(zone.clone(), RecordType::SOA)];
    if ctx
        .desired
        .iter()
        .any(|d| matches!(d.record.data, RData::Mx { .. }) && d.record.name == ctx.domain.name)
    {
        questions.push((ctx.domain.name.clone(), RecordType::MX));
    }
    questions.extend(tlsa_names.iter().map(|n| (n.clone(), RecordType::TLSA)));
    let results = futures::future::join_all(
        questions
            .iter()
            .map(|(name, rtype)| validator.rrset_security(wire(name), *rtype)),
    )
    .await;
    for ((name, _), result) in questions.iter().zip(results) {
        if let Security::Bogus(problem) = &result {
            findings.push(problem_finding(problem, name));
        }
        if let Security::Unknown(why) = &result
            && !why.is_empty()
        {
            findings.push(lookup_failed(name, why));
        }
    }
    findings.sort_by(|a, b| (a.code, &a.name).cmp(&(b.code, &b.name)));
    findings.dedup_by(|a, b| a.code == b.code && a.name == b.name && a.message == b.message);
    findings
}

/// The TLSA names mailzone plans for the domain.
pub fn tlsa_names(ctx: &DomainContext<'_>) -> Vec<Name> {
    let mut names: Vec<Name> = ctx
        .desired
        .iter()
        .filter(|d| matches!(d.record.data, RData::Tlsa { .. }))
        .map(|d| d.record.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// How far an RRset is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// Signatures verify, and a chain of trust leads from a configured anchor.
    Secure,
    /// Signatures verify with the zone's own keys; no anchor reaches the zone (why).
    SignedUnanchored(String),
    /// Provably not protected: the zone is unsigned, or its parent has no DS (why).
    Insecure(String),
    /// Validation fails: resolvers answer SERVFAIL.
    Bogus(Problem),
    /// Not known (the question got no answer: why; empty when there is nothing to judge).
    Unknown(String),
}

/// How each RRset (`name`, `rtype`) is protected, asking `ctx`'s servers with one
/// validator; `None` when the lookup does not say which servers it asks. For the TLSA
/// check.
pub async fn security_of(
    ctx: &DomainContext<'_>,
    questions: &[(Name, &str)],
) -> Option<Vec<Security>> {
    let servers = ctx.lookup.servers();
    if servers.is_empty() {
        return None;
    }
    let source = NetworkSource {
        servers,
        timeout: ctx.options.timeout,
    };
    Some(security_with(ctx, &source, now(), questions).await)
}

/// [`security_of`] with records from `source` and the time `now`.
pub async fn security_with(
    ctx: &DomainContext<'_>,
    source: &dyn RawSource,
    now: u32,
    questions: &[(Name, &str)],
) -> Vec<Security> {
    let anchors = parse_anchors(&ctx.options.trust_anchors).unwrap_or_default();
    let validator = Validator::new(source, anchors, now);
    futures::future::join_all(questions.iter().map(|(name, rtype)| {
        let validator = &validator;
        async move {
            match rtype.parse::<RecordType>() {
                Ok(t) => validator.rrset_security(wire(name), t).await,
                Err(_) => Security::Unknown(format!("unknown record type {rtype}")),
            }
        }
    }))
    .await
}

/// What is wrong with an RRset's signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The RRset concerned (`example.test. MX`).
    pub rrset: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    Missing,
    Invalid,
    NotYetValid,
    Expired,
    Unsupported,
}

/// Why the zone's keys cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// No DNSKEY at the apex.
    Unsigned(WireName),
    /// No key matches the anchor (what was seen, what the anchor wants).
    AnchorMismatch {
        zone: WireName,
        seen: String,
        expected: String,
    },
    /// The parent's DS match no key.
    DsMismatch {
        zone: WireName,
        seen: String,
        expected: String,
    },
    /// A signature on the way fails (the DNSKEY RRset, or the DS RRset at the parent).
    Signature(Problem),
    /// A question got no answer.
    Lookup(String),
}

/// A zone's keys, validated as far as possible.
#[derive(Debug, Clone)]
struct ZoneKeys {
    keys: Vec<DNSKEY>,
    trust: Trust,
    ds: DsStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Trust {
    Anchored,
    Unanchored(String),
    Insecure(String),
}

/// What the parent says about the zone.
#[derive(Debug, Clone)]
enum DsStatus {
    /// DS records match keys of the zone; `anchored` when the DS RRset validated from an
    /// anchor.
    Matched { keys: Vec<DNSKEY>, trust: Trust },
    /// DS records are served, none matches.
    Mismatch { seen: Vec<String> },
    /// The parent answers and has no DS.
    Missing { parent: WireName },
    /// The parent is not served by the servers asked (why).
    Unreachable(String),
    /// The parent's answer failed validation.
    Bogus(ChainError),
}

/// A configured trust anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    Ds(WireName, DS),
    Key(WireName, DNSKEY),
}

impl Anchor {
    fn owner(&self) -> &WireName {
        match self {
            Anchor::Ds(n, _) | Anchor::Key(n, _) => n,
        }
    }

    fn matches(&self, zone: &WireName, key: &DNSKEY) -> bool {
        match self {
            Anchor::Ds(_, ds) => ds_matches(ds, zone, key),
            Anchor::Key(_, anchor) => anchor.public_key() == key.public_key(),
        }
    }
}

fn ds_matches(ds: &DS, zone: &WireName, key: &DNSKEY) -> bool {
    ds.algorithm() == key.public_key().algorithm()
        && key.calculate_key_tag().ok() == Some(ds.key_tag())
        && ds.covers(zone, key).unwrap_or(false)
}

/// Parses trust anchors: `owner [TTL] [IN] DS tag alg digest-type hex` or
/// `owner [TTL] [IN] DNSKEY flags protocol alg base64` (RFC 4034 §5.3, §2.2), one per
/// line or list entry; `;` starts a comment.
pub fn parse_anchors(lines: &[String]) -> Result<Vec<Anchor>, String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for line in lines.iter().flat_map(|l| l.lines()) {
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let owner = WireName::from_ascii(words[0])
            .map_err(|e| format!("`{}` is not a domain name: {e}", words[0]))?;
        let mut owner = owner;
        owner.set_fqdn(true);
        let mut rest = &words[1..];
        while let Some(w) = rest.first()
            && (w.parse::<u32>().is_ok() || w.eq_ignore_ascii_case("IN"))
        {
            rest = &rest[1..];
        }
        let bad = || format!("`{line}` is not a DS or DNSKEY record");
        match rest.first().map(|w| w.to_ascii_uppercase()).as_deref() {
            Some("DS") if rest.len() >= 5 => {
                let tag: u16 = rest[1].parse().map_err(|_| bad())?;
                let alg: u8 = rest[2].parse().map_err(|_| bad())?;
                let digest_type: u8 = rest[3].parse().map_err(|_| bad())?;
                let hex: String = rest[4..].concat();
                let digest = decode_hex(&hex).ok_or_else(bad)?;
                out.push(Anchor::Ds(
                    owner,
                    DS::new(
                        tag,
                        Algorithm::from_u8(alg),
                        DigestType::from(digest_type),
                        digest,
                    ),
                ));
            }
            Some("DNSKEY") if rest.len() >= 5 => {
                let flags: u16 = rest[1].parse().map_err(|_| bad())?;
                let alg: u8 = rest[3].parse().map_err(|_| bad())?;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(rest[4..].concat())
                    .map_err(|_| bad())?;
                out.push(Anchor::Key(
                    owner,
                    DNSKEY::with_flags(flags, PublicKeyBuf::new(key, Algorithm::from_u8(alg))),
                ));
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn wire(name: &Name) -> WireName {
    mailzone_dns::convert::to_wire_name(name)
}

fn key_text(zone: &WireName, key: &DNSKEY) -> String {
    use base64::Engine as _;
    format!(
        "{zone} DNSKEY {} 3 {} {} (key tag {})",
        key.flags(),
        u8::from(key.public_key().algorithm()),
        base64::engine::general_purpose::STANDARD.encode(key.public_key().public_bytes()),
        key.calculate_key_tag().unwrap_or(0)
    )
}

fn ds_text(zone: &WireName, ds: &DS) -> String {
    format!(
        "{zone} DS {} {} {} {}",
        ds.key_tag(),
        u8::from(ds.algorithm()),
        u8::from(ds.digest_type()),
        mailzone_records::zonefile::hex(ds.digest()).to_ascii_uppercase()
    )
}

/// The DS (SHA-256) of a key, for fixes.
fn ds_of(zone: &WireName, key: &DNSKEY) -> Option<String> {
    let digest = key.to_digest(zone, DigestType::SHA256).ok()?;
    Some(format!(
        "{zone} DS {} {} 2 {}",
        key.calculate_key_tag().ok()?,
        u8::from(key.public_key().algorithm()),
        mailzone_records::zonefile::hex(digest.as_ref()).to_ascii_uppercase()
    ))
}

/// Validates zones and RRsets from one source, remembering each zone's keys.
pub struct Validator<'a> {
    source: &'a dyn RawSource,
    anchors: Vec<Anchor>,
    /// No anchor was configured: `anchors` holds the root's KSKs.
    root_default: bool,
    now: u32,
    zones: Mutex<HashMap<WireName, Result<ZoneKeys, ChainError>>>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<'a> Validator<'a> {
    /// A validator from `anchors`; none means the root's KSKs (as hickory-proto ships
    /// them), which only a server that answers for the root and the TLDs (a resolver) can
    /// lead down from.
    pub fn new(source: &'a dyn RawSource, anchors: Vec<Anchor>, now: u32) -> Validator<'a> {
        let root_default = anchors.is_empty();
        let anchors = if root_default {
            let roots = hickory_proto::dnssec::TrustAnchors::default();
            (0..roots.len())
                .filter_map(|i| roots.get(i))
                .map(|key| Anchor::Key(WireName::root(), DNSKEY::with_flags(257, key.clone())))
                .collect()
        } else {
            anchors
        };
        Validator {
            source,
            anchors,
            root_default,
            now,
            zones: Mutex::new(HashMap::new()),
        }
    }

    /// The keys of `zone`, validated from an anchor as far as the servers allow.
    fn zone_keys(&self, zone: WireName) -> BoxFuture<'_, Result<ZoneKeys, ChainError>> {
        Box::pin(async move {
            if let Some(known) = self.zones.lock().ok().and_then(|z| z.get(&zone).cloned()) {
                return known;
            }
            let result = self.zone_keys_uncached(&zone).await;
            if let Ok(mut zones) = self.zones.lock() {
                zones.insert(zone, result.clone());
            }
            result
        })
    }

    async fn zone_keys_uncached(&self, zone: &WireName) -> Result<ZoneKeys, ChainError> {
        let answer = self
            .source
            .ask(zone, RecordType::DNSKEY)
            .await
            .map_err(ChainError::Lookup)?;
        let (records, rrsigs) = rrset(&answer, zone, RecordType::DNSKEY);
        let keys: Vec<DNSKEY> = records
            .iter()
            .filter_map(|r| match &r.data {
                WireRData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return Err(ChainError::Unsigned(zone.clone()));
        }
        let ds = self.ds_status(zone, &keys).await;

        let own_anchors: Vec<&Anchor> = self.anchors.iter().filter(|a| a.owner() == zone).collect();
        let (trusted, trust): (Vec<DNSKEY>, Trust) = if !own_anchors.is_empty() {
            let matching: Vec<DNSKEY> = keys
                .iter()
                .filter(|k| own_anchors.iter().any(|a| a.matches(zone, k)))
                .cloned()
                .collect();
            if matching.is_empty() {
                return Err(ChainError::AnchorMismatch {
                    zone: zone.clone(),
                    seen: keys
                        .iter()
                        .map(|k| key_text(zone, k))
                        .collect::<Vec<_>>()
                        .join("; "),
                    expected: own_anchors
                        .iter()
                        .map(|a| match a {
                            Anchor::Ds(n, ds) => ds_text(n, ds),
                            Anchor::Key(n, k) => key_text(n, k),
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            (matching, Trust::Anchored)
        } else {
            match &ds {
                DsStatus::Matched { keys, trust } => (keys.clone(), trust.clone()),
                DsStatus::Mismatch { seen } => {
                    return Err(ChainError::DsMismatch {
                        zone: zone.clone(),
                        seen: seen.join("; "),
                        expected: sep_keys(&keys)
                            .iter()
                            .filter_map(|k| ds_of(zone, k))
                            .collect::<Vec<_>>()
                            .join("; "),
                    });
                }
                DsStatus::Missing { parent } => (
                    keys.clone(),
                    Trust::Insecure(format!("the parent zone {parent} has no DS for {zone}")),
                ),
                DsStatus::Unreachable(why) => (keys.clone(), Trust::Unanchored(why.clone())),
                DsStatus::Bogus(e) => return Err(e.clone()),
            }
        };
        // RFC 4035 §5.2: the DNSKEY RRset must be signed by a trusted key.
        self.verify(zone, RecordType::DNSKEY, &records, &rrsigs, &trusted, zone)
            .map_err(|mut problem| {
                if problem.kind == ProblemKind::Invalid
                    && trust == Trust::Anchored
                    && !own_anchors.is_empty()
                {
                    problem.detail = format!(
                        "{}; the key matching the trust anchor does not sign the DNSKEY RRset",
                        problem.detail
                    );
                }
                ChainError::Signature(problem)
            })?;
        Ok(ZoneKeys { keys, trust, ds })
    }

    /// What the parent serves as DS for `zone`, validated with the parent's keys.
    async fn ds_status(&self, zone: &WireName, keys: &[DNSKEY]) -> DsStatus {
        if zone.is_root() {
            return DsStatus::Unreachable("the root has no parent".into());
        }
        let answer = match self.source.ask(zone, RecordType::DS).await {
            Ok(a) => a,
            Err(e) => return DsStatus::Unreachable(format!("the DS question got no answer: {e}")),
        };
        let (records, rrsigs) = rrset(&answer, zone, RecordType::DS);
        let ds: Vec<DS> = records
            .iter()
            .filter_map(|r| match &r.data {
                WireRData::DNSSEC(DNSSECRData::DS(d)) => Some(d.clone()),
                _ => None,
            })
            .collect();
        let no_anchor = || {
            if self.root_default {
                "no trust anchor is configured and the root's cannot be followed without a resolver"
                    .to_string()
            } else {
                "no configured trust anchor is for this zone or a parent the servers asked serve"
                    .to_string()
            }
        };
        if ds.is_empty() {
            return match (answer.rcode, answer.negative_soa_owner()) {
                (ResponseCode::NoError | ResponseCode::NXDomain, Some(owner))
                    if owner != zone && owner.zone_of(zone) =>
                {
                    DsStatus::Missing {
                        parent: owner.clone(),
                    }
                }
                _ => DsStatus::Unreachable(format!(
                    "{}; the servers asked do not serve the parent of {zone}",
                    no_anchor()
                )),
            };
        }
        let matching: Vec<DNSKEY> = keys
            .iter()
            .filter(|k| ds.iter().any(|d| ds_matches(d, zone, k)))
            .cloned()
            .collect();
        if matching.is_empty() {
            return DsStatus::Mismatch {
                seen: ds.iter().map(|d| ds_text(zone, d)).collect(),
            };
        }
        // The DS RRset is the parent's data, signed with the parent's keys.
        let Some(parent) = rrsigs
            .iter()
            .map(|s| s.input().signer_name.clone())
            .find(|p| p != zone && p.zone_of(zone))
        else {
            return DsStatus::Matched {
                keys: matching,
                trust: Trust::Unanchored(format!(
                    "the DS records of {zone} are served without a signature of the parent"
                )),
            };
        };
        let parent_keys = match self.zone_keys(parent.clone()).await {
            Ok(k) => k,
            Err(ChainError::Unsigned(p)) => {
                return DsStatus::Matched {
                    keys: matching,
                    trust: Trust::Insecure(format!("the parent zone {p} is not signed")),
                };
            }
            Err(ChainError::Lookup(why)) => {
                return DsStatus::Matched {
                    keys: matching,
                    trust: Trust::Unanchored(why),
                };
            }
            Err(e) => return DsStatus::Bogus(e),
        };
        if let Err(problem) = self.verify(
            zone,
            RecordType::DS,
            &records,
            &rrsigs,
            &parent_keys.keys,
            &parent,
        ) {
            return DsStatus::Bogus(ChainError::Signature(problem));
        }
        DsStatus::Matched {
            keys: matching,
            trust: parent_keys.trust,
        }
    }

    /// How the RRset `name`/`rtype` (and any CNAME leading to it) is protected.
    pub async fn rrset_security(&self, name: WireName, rtype: RecordType) -> Security {
        let answer = match self.source.ask(&name, rtype).await {
            Ok(a) => a,
            Err(e) => return Security::Unknown(e),
        };
        if !matches!(answer.rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
            return Security::Unknown(format!("the answer was {}", answer.rcode));
        }
        // Every RRset of the answer (the CNAMEs and the data), or the SOA of a negative one.
        let mut sets: Vec<(WireName, RecordType)> = Vec::new();
        let section = if answer.answers.is_empty() {
            &answer.authorities
        } else {
            &answer.answers
        };
        for r in section {
            let t = r.record_type();
            if t == RecordType::RRSIG || t == RecordType::NSEC || t == RecordType::NSEC3 {
                continue;
            }
            if !sets.contains(&(r.name.clone(), t)) {
                sets.push((r.name.clone(), t));
            }
        }
        if sets.is_empty() {
            return Security::Unknown(String::new());
        }
        let mut worst = Security::Secure;
        for (owner, t) in sets {
            let (records, rrsigs) = rrset_in(section, &owner, t);
            let signer = rrsigs
                .first()
                .map(|s| s.input().signer_name.clone())
                .unwrap_or_else(|| owner.clone());
            // The zone of the RRset: the signer named by its RRSIG, or (unsigned) the
            // closest enclosing zone that has keys.
            let zone = if rrsigs.is_empty() {
                match self.enclosing_zone(&owner).await {
                    Some(z) => z,
                    None => {
                        return Security::Insecure(format!("{owner} is in no signed zone"));
                    }
                }
            } else {
                signer
            };
            let keys = match self.zone_keys(zone.clone()).await {
                Ok(k) => k,
                Err(ChainError::Unsigned(z)) => {
                    return Security::Insecure(format!("the zone {z} is not signed"));
                }
                Err(ChainError::Signature(problem)) => return Security::Bogus(problem),
                Err(ChainError::Lookup(why)) => return Security::Unknown(why),
                Err(e) => {
                    return Security::Bogus(Problem {
                        kind: ProblemKind::Invalid,
                        rrset: format!("{zone} DNSKEY"),
                        detail: chain_message(&e),
                    });
                }
            };
            if let Err(problem) = self.verify(&owner, t, &records, &rrsigs, &keys.keys, &zone) {
                return Security::Bogus(problem);
            }
            let this = match keys.trust {
                Trust::Anchored => Security::Secure,
                Trust::Unanchored(why) => Security::SignedUnanchored(why),
                Trust::Insecure(why) => Security::Insecure(why),
            };
            if worst == Security::Secure || matches!(this, Security::Insecure(_)) {
                worst = this;
            }
        }
        worst
    }

    /// The closest zone at or above `name` that serves a DNSKEY RRset.
    async fn enclosing_zone(&self, name: &WireName) -> Option<WireName> {
        let mut current = name.clone();
        loop {
            if let Ok(answer) = self.source.ask(&current, RecordType::DNSKEY).await {
                if answer
                    .answers
                    .iter()
                    .any(|r| r.record_type() == RecordType::DNSKEY && r.name == current)
                {
                    return Some(current);
                }
                // A negative answer names its zone: ask that one directly.
                if let Some(owner) = answer.negative_soa_owner()
                    && owner != &current
                    && owner.zone_of(&current)
                {
                    current = owner.clone();
                    continue;
                }
                if answer.negative_soa_owner() == Some(&current) {
                    return None; // the zone exists and has no DNSKEY: unsigned
                }
            }
            if current.is_root() {
                return None;
            }
            current = current.base_name();
        }
    }

    /// RFC 4035 §5.3: some RRSIG of the RRset, by a key of `keys` (zone `zone`), valid now,
    /// verifies.
    fn verify(
        &self,
        owner: &WireName,
        rtype: RecordType,
        records: &[Record],
        rrsigs: &[RRSIG],
        keys: &[DNSKEY],
        zone: &WireName,
    ) -> Result<(), Problem> {
        let rrset = format!("{owner} {rtype}");
        let problem = |kind, detail: String| Problem {
            kind,
            rrset: rrset.clone(),
            detail,
        };
        if rrsigs.is_empty() {
            return Err(problem(
                ProblemKind::Missing,
                format!("{rrset} is served without an RRSIG although the zone {zone} is signed"),
            ));
        }
        let mut failures: Vec<(ProblemKind, String)> = Vec::new();
        for sig in rrsigs {
            let input = sig.input();
            let tag = input.key_tag;
            if &input.signer_name != zone {
                failures.push((
                    ProblemKind::Invalid,
                    format!(
                        "the RRSIG (key tag {tag}) names the signer {}, not {zone}",
                        input.signer_name
                    ),
                ));
                continue;
            }
            let candidates: Vec<&DNSKEY> = keys
                .iter()
                .filter(|k| {
                    k.zone_key()
                        && !k.revoke()
                        && k.public_key().algorithm() == input.algorithm
                        && k.calculate_key_tag().ok() == Some(tag)
                })
                .collect();
            if !input.algorithm.is_supported() {
                failures.push((
                    ProblemKind::Unsupported,
                    format!(
                        "the RRSIG (key tag {tag}) uses algorithm {} which mailzone cannot verify",
                        input.algorithm
                    ),
                ));
                continue;
            }
            if candidates.is_empty() {
                failures.push((
                    ProblemKind::Invalid,
                    format!(
                        "the RRSIG is made with key tag {tag}, algorithm {}, and no trusted key of {zone} has that tag",
                        input.algorithm
                    ),
                ));
                continue;
            }
            let inception = input.sig_inception.get();
            let expiration = input.sig_expiration.get();
            // RFC 4034 §3.1.5: serial-number arithmetic (RFC 1982) on 32-bit times.
            if (self.now.wrapping_sub(expiration) as i32) > 0 {
                failures.push((
                    ProblemKind::Expired,
                    format!(
                        "the RRSIG (key tag {tag}) expired at {} (now {})",
                        rrsig_time(expiration),
                        rrsig_time(self.now)
                    ),
                ));
                continue;
            }
            if (inception.wrapping_sub(self.now) as i32) > 0 {
                failures.push((
                    ProblemKind::NotYetValid,
                    format!(
                        "the RRSIG (key tag {tag}) is valid only from {} (now {})",
                        rrsig_time(inception),
                        rrsig_time(self.now)
                    ),
                ));
                continue;
            }
            let verified = candidates.iter().any(|key| {
                key.verify_rrsig(owner, DNSClass::IN, sig, records.iter())
                    .is_ok()
            });
            if verified {
                return Ok(());
            }
            failures.push((
                ProblemKind::Invalid,
                format!("the RRSIG (key tag {tag}) does not verify over the RRset as served"),
            ));
        }
        // The most telling failure: a time problem explains more than a bad signature.
        let kind = failures
            .iter()
            .map(|(k, _)| *k)
            .max()
            .unwrap_or(ProblemKind::Invalid);
        let detail = failures
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| d.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        Err(problem(kind, detail))
    }
}

/// The keys with the SEP flag (KSKs), or all keys when none has it.
fn sep_keys(keys: &[DNSKEY]) -> Vec<DNSKEY> {
    let sep: Vec<DNSKEY> = keys
        .iter()
        .filter(|k| k.secure_entry_point() && k.zone_key() && !k.revoke())
        .cloned()
        .collect();
    if sep.is_empty() { keys.to_vec() } else { sep }
}

/// An RRSIG time (`YYYYMMDDHHmmSS`, RFC 4034 §3.2).
fn rrsig_time(t: u32) -> String {
    use mailzone_records::calendar::{utc_date, utc_time_of_day};
    let (y, m, d) = utc_date(i64::from(t));
    let (hours, minutes, seconds) = utc_time_of_day(i64::from(t));
    format!("{y:04}{m:02}{d:02}{hours:02}{minutes:02}{seconds:02}")
}

/// The records of `owner`/`rtype` in the answer section and the RRSIGs covering them.
fn rrset(answer: &RawAnswer, owner: &WireName, rtype: RecordType) -> (Vec<Record>, Vec<RRSIG>) {
    rrset_in(&answer.answers, owner, rtype)
}

fn rrset_in(section: &[Record], owner: &WireName, rtype: RecordType) -> (Vec<Record>, Vec<RRSIG>) {
    let records = section
        .iter()
        .filter(|r| &r.name == owner && r.record_type() == rtype)
        .cloned()
        .collect();
    let rrsigs = section
        .iter()
        .filter(|r| &r.name == owner)
        .filter_map(|r| match &r.data {
            WireRData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == rtype => {
                Some(sig.clone())
            }
            _ => None,
        })
        .collect();
    (records, rrsigs)
}

fn ds_findings(keys: &ZoneKeys, zone: &Name) -> Vec<Finding> {
    let wire_zone = wire(zone);
    let wanted = || {
        sep_keys(&keys.keys)
            .iter()
            .filter_map(|k| ds_of(&wire_zone, k))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match &keys.ds {
        DsStatus::Missing { parent } => vec![
            Finding::new(
                DS_MISSING,
                zone.to_string(),
                format!(
                    "the zone {zone} is signed, but its parent {parent} serves no DS record for it: validating resolvers treat the zone as unsigned, and its TLSA records as absent"
                ),
            )
            .seen(format!("no DS at {parent}"))
            .expected(wanted())
            .fix(format!("publish at the parent (registrar): {}", wanted())),
        ],
        DsStatus::Mismatch { seen } => vec![
            Finding::new(
                DS_MISMATCH,
                zone.to_string(),
                format!(
                    "the DS records the parent serves for {zone} match none of its keys: validating resolvers treat the zone as bogus and answer SERVFAIL"
                ),
            )
            .seen(seen.join("; "))
            .expected(wanted())
            .fix(format!("replace the DS at the parent (registrar) by: {}", wanted())),
        ],
        _ => Vec::new(),
    }
}

fn chain_message(e: &ChainError) -> String {
    match e {
        ChainError::Unsigned(z) => format!("the zone {z} is not signed"),
        ChainError::AnchorMismatch { zone, .. } => {
            format!("no key of {zone} matches the configured trust anchor")
        }
        ChainError::DsMismatch { zone, .. } => {
            format!("the parent's DS records for {zone} match none of its keys")
        }
        ChainError::Signature(p) => format!("{}: {}", p.rrset, p.detail),
        ChainError::Lookup(why) => why.clone(),
    }
}

fn chain_finding(e: &ChainError, zone: &Name) -> Finding {
    match e {
        ChainError::AnchorMismatch {
            zone: z,
            seen,
            expected,
        } => Finding::new(
            ANCHOR_MISMATCH,
            z.to_string(),
            format!(
                "no key in the DNSKEY RRset of {z} matches the configured trust anchor: validation from that anchor fails (bogus) for every answer of {zone}"
            ),
        )
        .seen(seen.clone())
        .expected(expected.clone())
        .fix("configure the zone's current DS or DNSKEY as trust anchor, or publish the key the anchor names"),
        ChainError::DsMismatch {
            zone: z,
            seen,
            expected,
        } => Finding::new(
            DS_MISMATCH,
            z.to_string(),
            format!(
                "the DS records the parent serves for {z} match none of its keys: validating resolvers treat the zone as bogus and answer SERVFAIL"
            ),
        )
        .seen(seen.clone())
        .expected(expected.clone())
        .fix(format!("replace the DS at the parent (registrar) by: {expected}")),
        ChainError::Signature(problem) => {
            let owner = problem.rrset.split(' ').next().unwrap_or_default();
            let name = Name::owner(owner).unwrap_or_else(|_| zone.clone());
            problem_finding(problem, &name)
        }
        ChainError::Lookup(why) => lookup_failed(zone, why),
        ChainError::Unsigned(z) => Finding::new(
            UNSIGNED,
            z.to_string(),
            format!("the zone {z} is not signed: it serves no DNSKEY record"),
        ),
    }
}

fn problem_finding(problem: &Problem, name: &Name) -> Finding {
    let (code, what, fix) = match problem.kind {
        ProblemKind::Missing => (
            SIGNATURE_MISSING,
            "is served without a signature in a signed zone: validating resolvers reject it",
            "re-sign the zone (check that the signer covers every RRset)",
        ),
        ProblemKind::Invalid => (
            SIGNATURE_INVALID,
            "has no RRSIG that verifies with the zone's keys: validating resolvers answer SERVFAIL",
            "re-sign the zone with its current keys; check that no one edits the signed zone by hand",
        ),
        ProblemKind::Expired => (
            SIGNATURE_EXPIRED,
            "has only expired RRSIGs: validating resolvers answer SERVFAIL",
            "re-sign the zone now, and check that the signer runs and refreshes signatures",
        ),
        ProblemKind::NotYetValid => (
            SIGNATURE_NOT_YET_VALID,
            "has only RRSIGs whose validity starts in the future: validating resolvers answer SERVFAIL",
            "fix the signer's clock and re-sign the zone",
        ),
        ProblemKind::Unsupported => (
            ALGORITHM_UNSUPPORTED,
            "is signed with an algorithm mailzone cannot verify, so no verdict was reached",
            "sign with algorithm 13 (ECDSA P-256 SHA-256) or 15 (Ed25519)",
        ),
    };
    Finding::new(code, name.to_string(), format!("{} {what}", problem.rrset))
        .seen(problem.detail.clone())
        .expected("an RRSIG by a key of the zone, valid now, that verifies")
        .fix(fix)
}

fn lookup_failed(name: &Name, why: &str) -> Finding {
    Finding::new(
        crate::zone::LOOKUP_FAILED,
        name.to_string(),
        format!("the DNSSEC records for {name} could not be fetched, so DNSSEC was not checked"),
    )
    .seen(why.to_string())
    .expected("an answer (NOERROR or NXDOMAIN)")
    .fix("make sure the zone's name servers answer over TCP (or pass working servers with --nameserver)")
}
