//! DNSSEC chain validation (RFC 4035 §5): trust anchors, DS against DNSKEY (RFC 4034
//! §5.1.4), RRSIG verification over the canonical RRset (RFC 4034 §6) and validity
//! periods, walking up through the parents to an anchor. No findings here: the problems
//! found are values the checks turn into findings.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey as _, PublicKeyBuf, Verifier as _};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{
    DNSClass, Name as WireName, RData as WireRData, Record, RecordData, RecordType,
};
use mailzone_records::Name;

use crate::context::DomainContext;
use source::{NetworkSource, RawAnswer, RawSource};

use super::*;

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
pub(crate) struct ZoneKeys {
    pub(crate) keys: Vec<DNSKEY>,
    pub(crate) trust: Trust,
    pub(crate) ds: DsStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    Anchored,
    Unanchored(String),
    Insecure(String),
}

/// What the parent says about the zone.
#[derive(Debug, Clone)]
pub(crate) enum DsStatus {
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

pub(crate) fn ds_matches(ds: &DS, zone: &WireName, key: &DNSKEY) -> bool {
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

pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn wire(name: &Name) -> WireName {
    mailzone_dns::convert::to_wire_name(name)
}

pub(crate) fn key_text(zone: &WireName, key: &DNSKEY) -> String {
    use base64::Engine as _;
    format!(
        "{zone} DNSKEY {} 3 {} {} (key tag {})",
        key.flags(),
        u8::from(key.public_key().algorithm()),
        base64::engine::general_purpose::STANDARD.encode(key.public_key().public_bytes()),
        key.calculate_key_tag().unwrap_or(0)
    )
}

pub(crate) fn ds_text(zone: &WireName, ds: &DS) -> String {
    format!(
        "{zone} DS {} {} {} {}",
        ds.key_tag(),
        u8::from(ds.algorithm()),
        u8::from(ds.digest_type()),
        mailzone_records::zonefile::hex(ds.digest()).to_ascii_uppercase()
    )
}

/// The DS (SHA-256) of a key, for fixes.
pub(crate) fn ds_of(zone: &WireName, key: &DNSKEY) -> Option<String> {
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

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
    pub(crate) fn zone_keys(&self, zone: WireName) -> BoxFuture<'_, Result<ZoneKeys, ChainError>> {
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
        let keys: Vec<DNSKEY> = rdata_of(&records);
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
        let ds: Vec<DS> = rdata_of(&records);
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
pub(crate) fn sep_keys(keys: &[DNSKEY]) -> Vec<DNSKEY> {
    let sep: Vec<DNSKEY> = keys
        .iter()
        .filter(|k| k.secure_entry_point() && k.zone_key() && !k.revoke())
        .cloned()
        .collect();
    if sep.is_empty() { keys.to_vec() } else { sep }
}

/// An RRSIG time (`YYYYMMDDHHmmSS`, RFC 4034 §3.2).
pub(crate) fn rrsig_time(t: u32) -> String {
    use mailzone_records::calendar::{utc_date, utc_time_of_day};
    let (y, m, d) = utc_date(i64::from(t));
    let (hours, minutes, seconds) = utc_time_of_day(i64::from(t));
    format!("{y:04}{m:02}{d:02}{hours:02}{minutes:02}{seconds:02}")
}

/// The records of `owner`/`rtype` in the answer section and the RRSIGs covering them.
pub(crate) fn rrset(
    answer: &RawAnswer,
    owner: &WireName,
    rtype: RecordType,
) -> (Vec<Record>, Vec<RRSIG>) {
    rrset_in(&answer.answers, owner, rtype)
}

/// The data of the records of type `T` among `records`.
fn rdata_of<T: RecordData>(records: &[Record]) -> Vec<T> {
    records
        .iter()
        .filter_map(|r| T::try_borrow(&r.data).cloned())
        .collect()
}

pub(crate) fn rrset_in(
    section: &[Record],
    owner: &WireName,
    rtype: RecordType,
) -> (Vec<Record>, Vec<RRSIG>) {
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
