//! TLSA records (DANE): for every TLSA name mailzone plans — `_25._tcp.<exchanger>` for the
//! mail exchangers inside the zone, and `_<port>._tcp.<host>` for the TLS ports (and
//! STARTTLS ports) of the services hosted in the zone (see the planner's `tlsa()`) — the
//! served RRset must let senders authenticate the configured certificate.
//!
//! The rules and where they come from:
//! - A record matches the configured certificate (RFC 6698 §2.1, RFC 7672 §3.1): `3 1 1`
//!   (DANE-EE, SubjectPublicKeyInfo, SHA-256) with the digest of the leaf's key, or
//!   `2 1 1` (DANE-TA) with the digest of the issuer's key. With none matching, a
//!   DANE-enabled sender finds no usable match and must not deliver (RFC 7672 §2.2, §3) →
//!   `tlsa-no-match`. mailzone holds SHA-256 digests of the keys only, so records of other
//!   selectors or matching types cannot be matched; the fix lists the records to publish.
//! - During a key rollover (`server.tls.nextKey`), the next key's `3 1 1` is published
//!   before the key is put in service, for at least two TTLs (RFC 7671 §8.1) →
//!   `tlsa-next-key-missing` (warning) while it is not served.
//! - Records senders cannot use: usage 0 (PKIX-TA) and 1 (PKIX-EE) on the SMTP port, which
//!   SMTP clients treat as unusable (RFC 7672 §3.1.3), and any unknown usage, selector or
//!   matching type (RFC 6698 §2.1, RFC 7671 §4, §5) → `tlsa-unusable` (warning).
//! - TLSA records are used only from DNSSEC-validated answers (RFC 7672 §2.2, RFC 6698
//!   §4.1): served without validation they protect nothing → `tlsa-not-authenticated`.
//!   An answer is validated when the lookup says so (`Answer::authenticated`, the AD bit of
//!   a validating resolver), or when mailzone's own validation (`crate::dnssec`) from the
//!   configured trust anchor finds the RRset secure; when no anchor reaches the zone
//!   (offline, root anchor) valid signatures by the zone's keys are accepted and the
//!   DNSSEC check says the chain was not followed.
//! - An exchanger host that is a CNAME: senders look for TLSA first at the CNAME target's
//!   name (`_25._tcp.<target>`, RFC 7672 §2.2.2) and use the original name only when the
//!   target has none, so a TLSA RRset served at the target is checked the same way.
//!
//! An absent RRset is not reported here: `record-missing` already says so.

use mailzone_records::tlsa::{
    MATCHING_SHA256, SELECTOR_SPKI, TlsaKeys, USAGE_DANE_EE, USAGE_DANE_TA,
};
use mailzone_records::zonefile::hex;
use mailzone_records::{Name, RData, Record, RecordPurpose};

use crate::context::DomainContext;
use crate::dnssec::Security;
use crate::dnssec::source::RawSource;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: Some(RecordPurpose::Tlsa);
    NO_MATCH: Error, "tlsa-no-match",
        "no TLSA record matches the configured certificate: DANE-enabled senders will not deliver";
    NEXT_KEY_MISSING: Warning, "tlsa-next-key-missing",
        "a key rollover is configured but the next key's 3 1 1 record is not served";
    UNUSABLE: Warning, "tlsa-unusable",
        "a TLSA record senders ignore (PKIX usage on SMTP, or unknown parameters)";
    NOT_AUTHENTICATED: Error, "tlsa-not-authenticated",
        "TLSA records are served without DNSSEC validation: senders ignore them";
    DISCOURAGED: Info, "tlsa-discouraged",
        "a TLSA record uses selector 0 (whole certificate) or matching type 0 (full data)";
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    check_inner(ctx, None).await
}

/// The check, with DNSSEC records from `source` at time `now` (tests).
pub async fn check_with(ctx: &DomainContext<'_>, source: &dyn RawSource, now: u32) -> Vec<Finding> {
    check_inner(ctx, Some((source, now))).await
}

/// One TLSA name to judge, and why it is judged.
struct Target {
    name: Name,
    /// The planned name this one stands for (a CNAME-expanded exchanger).
    via: Option<Name>,
}

async fn check_inner(
    ctx: &DomainContext<'_>,
    source: Option<(&dyn RawSource, u32)>,
) -> Vec<Finding> {
    let Some(keys) = ctx.tlsa else {
        return Vec::new();
    };
    let planned = crate::dnssec::tlsa_names(ctx);
    if planned.is_empty() {
        return Vec::new();
    }
    let mut findings = Vec::new();
    let mut targets: Vec<Target> = planned
        .iter()
        .map(|name| Target {
            name: name.clone(),
            via: None,
        })
        .collect();
    // RFC 7672 §2.2.2: an exchanger that is a CNAME has its TLSA looked up at the target.
    for name in planned
        .iter()
        .filter(|n| n.as_str().starts_with("_25._tcp."))
    {
        let host = Name::owner(&name.as_str()["_25._tcp.".len()..]);
        let Ok(host) = host else { continue };
        match support::query(ctx, &host, "A").await {
            Ok(answer) => {
                if let Some(target) = answer.cname_chain.last()
                    && let Ok(expanded) = target.prefixed("_25._tcp")
                    && !planned.contains(&expanded)
                {
                    targets.push(Target {
                        name: expanded,
                        via: Some(name.clone()),
                    });
                }
            }
            Err(f) => findings.push(f),
        }
    }

    let answers =
        futures::future::join_all(targets.iter().map(|t| support::query(ctx, &t.name, "TLSA")))
            .await;
    let mut served: Vec<(&Target, crate::lookup::Answer)> = Vec::new();
    for (target, answer) in targets.iter().zip(answers) {
        match answer {
            Ok(a) if !a.records.is_empty() => served.push((target, a)),
            Ok(_) => {} // absent: `record-missing` (or, at a CNAME target, allowed)
            Err(f) => {
                if target.via.is_none() {
                    findings.push(f);
                }
            }
        }
    }

    // DNSSEC status of the RRsets not already authenticated by the lookup.
    let unvalidated: Vec<(Name, &str)> = served
        .iter()
        .filter(|(_, a)| !a.authenticated)
        .map(|(t, _)| (t.name.clone(), "TLSA"))
        .collect();
    let securities = if unvalidated.is_empty() {
        Some(Vec::new())
    } else {
        match source {
            Some((source, now)) => {
                Some(crate::dnssec::security_with(ctx, source, now, &unvalidated).await)
            }
            None => crate::dnssec::security_of(ctx, &unvalidated).await,
        }
    };

    for (target, answer) in &served {
        let security = if answer.authenticated {
            None
        } else {
            Some(
                securities
                    .as_ref()
                    .and_then(|s| {
                        unvalidated
                            .iter()
                            .position(|(n, _)| n == &target.name)
                            .and_then(|i| s.get(i).cloned())
                    })
                    .unwrap_or(Security::Unknown(
                        "the answer is not DNSSEC-validated (no AD bit), and the servers asked are not known to mailzone".into(),
                    )),
            )
        };
        findings.extend(judge(ctx, keys, target, answer, security));
        findings.extend(discouraged(&target.name, answer));
    }
    findings
}

/// RFC 7671 §5, RFC 7672 §3.1: DANE-EE and DANE-TA records should be `1 1` (SHA-256 of the
/// public key): selector 0 (the whole certificate) must change at every renewal even when
/// the key is kept, and matching type 0 (the full data) makes large answers and breaks
/// digest agility. Only usages 2 and 3 are judged (0 and 1 are `tlsa-unusable`).
fn discouraged(name: &Name, answer: &crate::lookup::Answer) -> Vec<Finding> {
    let lines: Vec<String> = answer
        .records
        .iter()
        .filter(|r| {
            matches!(r.record.data, RData::Tlsa { usage: 2 | 3, selector, matching_type, .. }
                if selector == 0 || matching_type == 0)
        })
        .map(|r| support::line(&r.record))
        .collect();
    if lines.is_empty() {
        return Vec::new();
    }
    vec![
        Finding::new(
            DISCOURAGED,
            name.to_string(),
            format!(
                "{name} serves TLSA records with selector 0 (the whole certificate, which changes at every renewal even when the key is kept) or matching type 0 (the full data instead of a digest): RFC 7671 §5 and RFC 7672 §3.1 recommend `3 1 1` and `2 1 1`"
            ),
        )
        .seen(lines.join("; "))
        .expected("`3 1 1` / `2 1 1` records (SHA-256 of the public key)")
        .fix("publish the `3 1 1` / `2 1 1` records mailzone lists and remove these"),
    ]
}

/// The findings for one served TLSA RRset.
fn judge(
    ctx: &DomainContext<'_>,
    keys: &TlsaKeys,
    target: &Target,
    answer: &crate::lookup::Answer,
    security: Option<Security>,
) -> Vec<Finding> {
    let name = &target.name;
    let planned_name = target.via.as_ref().unwrap_or(name);
    let smtp = name.as_str().starts_with("_25._tcp.");
    let records = support::tlsa_records(&answer.records);
    let seen = support::lines(records.iter().map(|t| t.record));
    // The records to publish, at the name judged.
    let desired: Vec<Record> = ctx
        .desired
        .iter()
        .filter(|d| &d.record.name == planned_name && matches!(d.record.data, RData::Tlsa { .. }))
        .map(|d| Record {
            name: name.clone(),
            ..d.record.clone()
        })
        .collect();
    let desired_lines = support::lines(desired.iter());
    let via_note = match &target.via {
        Some(original) => format!(
            " ({original} names an exchanger that is a CNAME: senders use the TLSA records at the target's name first, RFC 7672 §2.2.2)"
        ),
        None => String::new(),
    };
    let mut findings = Vec::new();

    for support::TlsaRecord {
        usage,
        selector,
        matching,
        data,
        record,
    } in &records
    {
        let why = if *usage > 3 || *selector > 1 || *matching > 2 {
            Some(format!(
                "`{usage} {selector} {matching}` has an unknown certificate usage, selector or matching type: senders ignore it (RFC 6698 §2.1)"
            ))
        } else if smtp && *usage <= 1 {
            Some(format!(
                "usage {usage} ({}) is unusable for SMTP: senders ignore it (RFC 7672 §3.1.3)",
                if *usage == 0 { "PKIX-TA" } else { "PKIX-EE" }
            ))
        } else {
            None
        };
        if let Some(why) = why {
            findings.push(
                Finding::new(
                    UNUSABLE,
                    name.to_string(),
                    format!("a TLSA record at {name} is not usable: {why}{via_note}"),
                )
                .seen(support::line(record))
                .expected(format!("DANE-EE or DANE-TA records: {desired_lines}"))
                .fix(format!(
                    "remove {} (data {})",
                    support::line(record),
                    hex(data)
                )),
            );
        }
    }

    let matches = |usage: u8, digest: &[u8]| {
        records.iter().any(|t| {
            t.usage == usage
                && t.selector == SELECTOR_SPKI
                && t.matching == MATCHING_SHA256
                && t.data == digest
        })
    };
    let leaf = matches(USAGE_DANE_EE, &keys.leaf);
    let issuer = keys
        .issuer
        .as_ref()
        .is_some_and(|i| matches(USAGE_DANE_TA, i));
    if !leaf && !issuer {
        findings.push(
            Finding::new(
                NO_MATCH,
                name.to_string(),
                format!(
                    "no TLSA record at {name} matches the configured certificate ({}): DANE-enabled senders will not deliver{}",
                    keys.leaf_subject,
                    if smtp { " mail to this host" } else { " (and DANE clients will not connect)" }
                ) + &via_note,
            )
            .seen(seen.clone())
            .expected(desired_lines.clone())
            .fix(format!("publish {desired_lines}, and remove the records that match no key")),
        );
    }
    if let Some(next) = &keys.next
        && !matches(USAGE_DANE_EE, next)
    {
        let record = Record {
            name: name.clone(),
            ttl: desired.first().map(|r| r.ttl).unwrap_or(ctx.domain.ttl),
            data: RData::Tlsa {
                usage: USAGE_DANE_EE,
                selector: SELECTOR_SPKI,
                matching_type: MATCHING_SHA256,
                data: next.clone(),
            },
        };
        findings.push(
            Finding::new(
                NEXT_KEY_MISSING,
                name.to_string(),
                format!(
                    "a key rollover is configured, but the next key's `3 1 1` record is not served at {name}: putting the new key in service now breaks DANE (RFC 7671 §8.1){via_note}"
                ),
            )
            .seen(seen.clone())
            .expected(support::line(&record))
            .fix(format!(
                "publish {} and wait at least two TTLs before switching to the new key",
                support::line(&record)
            )),
        );
    }

    let problem = match security {
        None | Some(Security::Secure) | Some(Security::SignedUnanchored(_)) => None,
        Some(Security::Insecure(why)) => Some(why),
        Some(Security::Bogus(p)) => Some(format!(
            "its DNSSEC validation fails ({}: {}), so validating resolvers answer SERVFAIL",
            p.rrset, p.detail
        )),
        Some(Security::Unknown(why)) => Some(if why.is_empty() {
            "its DNSSEC status could not be determined".to_string()
        } else {
            why
        }),
    };
    if let Some(why) = problem {
        findings.push(
            Finding::new(
                NOT_AUTHENTICATED,
                name.to_string(),
                format!(
                    "the TLSA records at {name} are not DNSSEC-authenticated: DANE without DNSSEC is ignored by senders and protects nothing (RFC 7672 §2.2){via_note}"
                ),
            )
            .seen(why)
            .expected("TLSA records in a signed zone whose chain of trust validates")
            .fix("sign the zone and publish its DS at the parent (see the dnssec-* findings)"),
        );
    }
    findings
}
