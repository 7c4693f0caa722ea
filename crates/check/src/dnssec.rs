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

mod chain;
pub mod source;

use hickory_proto::rr::RecordType;
use mailzone_records::{Name, RData};

use crate::context::DomainContext;
use crate::finding::{Finding, Severity};
use source::{NetworkSource, RawSource};

use chain::*;
pub use chain::{
    Anchor, ChainError, Problem, ProblemKind, Security, Validator, parse_anchors, security_of,
    security_with,
};

crate::codes::declare! {
    purpose: None;
    UNSIGNED: Info, "dnssec-unsigned",
        "the zone is not signed (no DNSKEY); an error when TLSA records are published";
    NOT_VALIDATED: Info, "dnssec-not-validated",
        "the answers are not validated and the servers asked are unknown, so signatures were not examined";
    ANCHOR_MISMATCH: Error, "dnssec-anchor-mismatch",
        "no key of the zone's DNSKEY RRset matches the configured trust anchor and signs the RRset";
    DS_MISMATCH: Error, "dnssec-ds-mismatch",
        "the parent's DS records match no key that signs the zone's DNSKEY RRset";
    DS_MISSING: Warning, "dnssec-ds-missing",
        "the parent is reachable but serves no DS for the signed zone";
    SIGNATURE_INVALID: Error, "dnssec-signature-invalid",
        "an RRSIG does not verify with the zone's keys";
    SIGNATURE_EXPIRED: Error, "dnssec-signature-expired",
        "an RRSIG has expired";
    SIGNATURE_NOT_YET_VALID: Error, "dnssec-signature-not-yet-valid",
        "an RRSIG's inception time is in the future";
    SIGNATURE_MISSING: Error, "dnssec-signature-missing",
        "an RRset of the signed zone is served without RRSIG";
    ALGORITHM_UNSUPPORTED: Warning, "dnssec-algorithm-unsupported",
        "the zone's keys use an algorithm mailzone cannot verify";
    CHAIN_UNVERIFIED: Info, "dnssec-chain-unverified",
        "the zone validates against its own keys, but no trust anchor reaches it";
}

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
    crate::support::lookup_failed(
        name,
        format!("the DNSSEC records for {name} could not be fetched, so DNSSEC was not checked"),
        why.to_string(),
        "make sure the zone's name servers answer over TCP (or pass working servers with --nameserver)",
    )
}
