//! Client autoconfiguration names: PACC's `ua-auto-config.<domain>`
//! (draft-ietf-mailmaint-pacc-02 §4), Thunderbird's `autoconfig.<domain>` and Microsoft's
//! `autodiscover.<domain>` must reach the mail host: a CNAME to it (RFC 1034 §3.6.2), or
//! A/AAAA records equal to its addresses. Which names are checked follows the planner: the
//! CNAMEs it wants for the `autoConfig`, `autoConfigLegacy` and `autoDiscover` types.

use std::collections::BTreeSet;
use std::net::IpAddr;

use mailzone_records::{RData, RecordPurpose};

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: Some(RecordPurpose::AutoConfig);
    UNRESOLVED: Warning, "autoconfig-unresolved",
        "an autoconfiguration name does not resolve to any address";
    WRONG_HOST: Warning, "autoconfig-wrong-host",
        "an autoconfiguration name resolves, but not to the mail host";
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let wanted: Vec<_> = ctx
        .desired
        .iter()
        .filter(|d| {
            matches!(
                d.purpose,
                RecordPurpose::AutoConfig
                    | RecordPurpose::AutoConfigLegacy
                    | RecordPurpose::AutoDiscover
            )
        })
        .filter_map(|d| match &d.record.data {
            RData::Cname(target) => Some((d, target)),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut findings = Vec::new();
    // The mail host's addresses (each wanted target, usually one host).
    let targets: BTreeSet<_> = wanted.iter().map(|(_, t)| *t).collect();
    let mut target_addresses = std::collections::BTreeMap::new();
    for target in targets {
        match support::addresses(ctx, target).await {
            Ok((addresses, _)) => {
                target_addresses.insert(target, addresses.into_iter().collect::<BTreeSet<_>>());
            }
            Err(f) => findings.push(f),
        }
    }
    let resolved = futures::future::join_all(
        wanted
            .iter()
            .map(|(d, _)| support::addresses(ctx, &d.record.name)),
    )
    .await;
    for ((desired, target), result) in wanted.iter().zip(resolved) {
        let Some(expected) = target_addresses.get(target) else {
            continue;
        };
        let name = &desired.record.name;
        let (addresses, chain) = match result {
            Ok(r) => r,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        let line = support::line(&desired.record);
        if chain.contains(target) {
            continue; // a CNAME (chain) to the mail host
        }
        let seen = describe(&chain, &addresses);
        if addresses.is_empty() {
            findings.push(
                Finding::new(
                    UNRESOLVED,
                    name.to_string(),
                    format!(
                        "{name} does not resolve to any address: mail clients cannot find their settings there"
                    ),
                )
                .seen(seen)
                .expected(format!("a CNAME to {target}"))
                .fix(format!("publish {line}"))
                .typed(desired.purpose),
            );
            continue;
        }
        let got: BTreeSet<IpAddr> = addresses.iter().copied().collect();
        if &got != expected {
            findings.push(
                Finding::new(
                    WRONG_HOST,
                    name.to_string(),
                    format!(
                        "{name} resolves to {seen}, not to the mail host {target}: clients get their settings from another server, or none"
                    ),
                )
                .seen(seen.clone())
                .expected(format!(
                    "a CNAME to {target} (or its addresses {})",
                    expected
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .fix(format!(
                    "replace the records at {name} by {line}"
                ))
                .typed(desired.purpose),
            );
        }
    }
    findings
}

fn describe(chain: &[mailzone_records::Name], addresses: &[IpAddr]) -> String {
    let mut parts: Vec<String> = chain.iter().map(|n| format!("CNAME {n}")).collect();
    if addresses.is_empty() {
        parts.push("no address".into());
    } else {
        parts.push(
            addresses
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    parts.join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::testutil::{case, check_cases};

    check_cases!(
        autoconfig_cases,
        [
            case("the same addresses")
                .remove(&["^autodiscover.example.org."])
                .add(
                    "autodiscover.example.org. 300 IN A 192.0.2.10\n\
                     autodiscover.example.org. 300 IN AAAA 2001:db8::10\n",
                )
                .quiet(),
            case("unresolved name")
                .remove(&["^autoconfig.example.org."])
                .fires(
                    "autoconfig-unresolved",
                    Severity::Warning,
                    "autoconfig.example.org.",
                )
                .purpose(RecordPurpose::AutoConfigLegacy)
                .fix("publish autoconfig.example.org. 3600 IN CNAME mail.example.org."),
            case("other host")
                .remove(&["^ua-auto-config.example.org."])
                .add(
                    "ua-auto-config.example.org. 300 IN CNAME web.example.net.\n\
                     web.example.net. 300 IN A 198.51.100.7\n",
                )
                .fires(
                    "autoconfig-wrong-host",
                    Severity::Warning,
                    "ua-auto-config.example.org.",
                )
                .seen("CNAME web.example.net. → 198.51.100.7"),
        ]
    );
}
