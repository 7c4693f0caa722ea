//! CAA (RFC 8659): the relevant RRset is found by climbing from the domain to its parents
//! until a non-empty CAA RRset appears (§3, aliases followed); its `issue` properties
//! (§4.2) must allow every configured CA, its `issuewild` properties (§4.3, falling back to
//! `issue`) every configured wildcard CA, and no property may carry the critical flag with a
//! tag CAs do not know (§4.1: the CA must then refuse to issue). No CAA at all means any CA
//! may issue: worth knowing, not a fault. An `iodef` property (§4.4) must be a `mailto:`,
//! `http:` or `https:` URL, or CAs cannot report refused requests to it.

use mailzone_records::{Name, RData, RecordPurpose};

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: Some(RecordPurpose::Caa);
    MISSING: Info, "caa-missing",
        "no CAA record applies to the domain: any CA may issue certificates for it";
    FORBIDS_CA: Error, "caa-forbids-ca",
        "the CAA records that apply do not allow the configured CA: renewal will fail";
    UNKNOWN_CRITICAL: Error, "caa-unknown-critical",
        "a CAA property with the critical flag has a tag CAs do not know: no CA may issue";
    IODEF_INVALID: Warning, "caa-iodef-invalid",
        "a CAA `iodef` value is not a `mailto:`, `http:` or `https:` URL: reports are lost";
}

/// Tags defined by RFC 8659 §4 and later RFCs (RFC 9495 issuemail, issuevmc in use by
/// BIMI, contactemail/contactphone of the CA/B Forum).
const KNOWN_TAGS: [&str; 7] = [
    "issue",
    "issuewild",
    "iodef",
    "issuemail",
    "issuevmc",
    "contactemail",
    "contactphone",
];

struct Property {
    flags: u8,
    tag: String,
    value: String,
}

/// The issuer domain of an `issue`/`issuewild` value (RFC 8659 §4.2: before any `;`),
/// lowercase; empty for "no CA".
fn issuer(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn parent(name: &Name) -> Option<Name> {
    let (_, rest) = name.as_str().split_once('.')?;
    Name::owner(rest).ok()
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let domain = &ctx.domain.name;
    // RFC 8659 §3: climb until a non-empty CAA RRset.
    let mut at = Some(domain.clone());
    let mut found: Option<(Name, Vec<Property>)> = None;
    while let Some(name) = at {
        let answer = match support::query(ctx, &name, "CAA").await {
            Ok(a) => a,
            Err(f) => return vec![f],
        };
        let properties: Vec<Property> = answer
            .records
            .iter()
            .filter_map(|l| match &l.record.data {
                RData::Caa { flags, tag, value } => Some(Property {
                    flags: *flags,
                    tag: tag.to_ascii_lowercase(),
                    value: value.clone(),
                }),
                _ => None,
            })
            .collect();
        if !properties.is_empty() {
            found = Some((name, properties));
            break;
        }
        at = parent(&name);
    }
    let policy = ctx.domain.caa.as_ref();
    let Some((owner, properties)) = found else {
        let wanted: Vec<_> = ctx
            .desired
            .iter()
            .filter(|d| d.purpose == RecordPurpose::Caa)
            .map(|d| &d.record)
            .collect();
        let mut finding = Finding::new(
            MISSING,
            domain.to_string(),
            format!("no CAA record applies to {domain} or its parents: any CA may issue certificates for it"),
        )
        .seen("no CAA record");
        if !wanted.is_empty() {
            finding = finding
                .expected(support::lines(wanted.iter().copied()))
                .fix(format!(
                    "publish {}",
                    support::lines(wanted.iter().copied())
                ));
        } else {
            finding = finding.fix(format!(
                "to restrict issuance, configure `caa` for {domain} and publish the records mailzone lists"
            ));
        }
        return vec![finding];
    };
    let mut findings = Vec::new();
    let seen = properties
        .iter()
        .map(|p| format!("{owner} CAA {} {} \"{}\"", p.flags, p.tag, p.value))
        .collect::<Vec<_>>()
        .join("; ");
    for p in &properties {
        if p.flags & 0x80 != 0 && !KNOWN_TAGS.contains(&p.tag.as_str()) {
            findings.push(
                Finding::new(
                    UNKNOWN_CRITICAL,
                    owner.to_string(),
                    format!(
                        "{owner} has a CAA property `{}` with the critical flag (128), which CAs do not know: RFC 8659 §4.1 requires every CA to refuse issuance",
                        p.tag
                    ),
                )
                .seen(seen.clone())
                .expected(format!("no critical property with an unknown tag at {owner}"))
                .fix(format!(
                    "remove {owner} IN CAA {} {} \"{}\" (or publish it with flags 0)",
                    p.flags, p.tag, p.value
                )),
            );
        }
    }
    findings.extend(iodef_findings(&owner, &seen, &properties));
    let Some(policy) = policy else {
        return findings;
    };
    let issuers = |tag: &str| -> Option<Vec<String>> {
        let list: Vec<String> = properties
            .iter()
            .filter(|p| p.tag == tag)
            .map(|p| issuer(&p.value))
            .collect();
        (!list.is_empty()).then_some(list)
    };
    let issue = issuers("issue");
    let wild = issuers("issuewild").or_else(|| issue.clone());
    let mut check_ca = |ca: &Name, allowed: &Option<Vec<String>>, tag: &str, what: &str| {
        let Some(allowed) = allowed else {
            return; // no property of that kind: unrestricted
        };
        if allowed.iter().any(|a| a == ca.as_str()) {
            return;
        }
        let line = ctx
            .desired
            .iter()
            .filter(|d| d.purpose == RecordPurpose::Caa)
            .find(|d| matches!(&d.record.data, RData::Caa { tag: t, value, .. } if t == tag && issuer(value) == ca.as_str()))
            .map(|d| support::line(&d.record))
            .unwrap_or_else(|| format!("{domain} {} IN CAA 0 {tag} \"{}\"", ctx.domain.ttl, ca.as_str()));
        let allowed_text = if allowed.iter().all(String::is_empty) {
            "no CA at all".to_string()
        } else {
            allowed
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        findings.push(
            Finding::new(
                FORBIDS_CA,
                owner.to_string(),
                format!(
                    "the CAA records at {owner} allow {allowed_text} to issue {what} certificates, not {}: the next certificate for the domain will be refused",
                    ca.as_str()
                ),
            )
            .seen(seen.clone())
            .expected(format!("a `{tag}` property for {}", ca.as_str()))
            .fix(format!("publish {line}")),
        );
    };
    for ca in &policy.issuers {
        check_ca(ca, &issue, "issue", "non-wildcard");
    }
    if let Some(wild_cas) = &policy.issuers_wild {
        for ca in wild_cas {
            check_ca(ca, &wild, "issuewild", "wildcard");
        }
    }
    findings
}

/// RFC 8659 §4.4: `iodef` is a URL of scheme `mailto:` (with an address), `http:` or
/// `https:`; anything else, CAs cannot report to.
fn iodef_error(value: &str) -> Option<String> {
    let value = value.trim();
    let ok = match value.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mailto") => rest
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.')),
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest.strip_prefix("//")
                .is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        }
        _ => false,
    };
    (!ok).then(|| format!("`{value}` is not a mailto:, http: or https: URL"))
}

fn iodef_findings(owner: &Name, seen: &str, properties: &[Property]) -> Vec<Finding> {
    properties
        .iter()
        .filter(|p| p.tag == "iodef")
        .filter_map(|p| iodef_error(&p.value).map(|why| (p, why)))
        .map(|(p, why)| {
            Finding::new(
                IODEF_INVALID,
                owner.to_string(),
                format!(
                    "the CAA property `iodef \"{}\"` at {owner} is unusable: {why} (RFC 8659 §4.4), so CAs cannot report refused certificate requests",
                    p.value
                ),
            )
            .seen(seen.to_string())
            .expected("iodef \"mailto:<address>\" or iodef \"https://<host>/<path>\"")
            .fix(format!(
                "replace it by {owner} IN CAA 0 iodef \"mailto:postmaster@{}\"",
                owner.as_str().trim_end_matches('.')
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::testutil::{case, check_cases};

    check_cases!(caa_cases, [
        case("the allowed CA beside another")
            .add("example.org. 300 IN CAA 0 issue \"digicert.com\"\n")
            .quiet(),
        case("the allowed CA from a parent")
            .remove(&["IN CAA"])
            .add("org. 300 IN CAA 0 issue \"letsencrypt.org\"\n")
            .quiet(),
        // Only iodef: issuance unrestricted.
        case("only iodef")
            .remove(&["IN CAA"])
            .add("example.org. 300 IN CAA 0 iodef \"mailto:a@example.org\"\n")
            .quiet(),
        case("missing CAA")
            .remove(&["IN CAA"])
            .fires("caa-missing", Severity::Info, "example.org.")
            .fix("publish example.org. 3600 IN CAA 0 iodef \"mailto:postmaster@example.org\"; example.org. 3600 IN CAA 0 issue \"letsencrypt.org\""),
        case("issue list without the CA")
            .remove(&["IN CAA"])
            .add("example.org. 300 IN CAA 0 issue \"digicert.com\"\n")
            .fires("caa-forbids-ca", Severity::Error, "example.org.")
            .fix("publish example.org. 3600 IN CAA 0 issue \"letsencrypt.org\""),
        // `issue ";"`: nobody may issue.
        case("nobody may issue")
            .zone("example.org. 300 IN CAA 0 issue \";\"\n")
            .count("caa-forbids-ca", 1),
        case("unknown critical tag")
            .add("example.org. 300 IN CAA 128 tbs \"unknown\"\n")
            .fires("caa-unknown-critical", Severity::Error, "example.org."),
    ]);
}
