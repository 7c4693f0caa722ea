//! SRV records of the client services (RFC 2782; RFC 6186 §3 IMAP, POP3 and submission,
//! RFC 8314 §5.1 implicit TLS, RFC 8620 §2.2 JMAP, RFC 6764 §3 CalDAV/CardDAV, and
//! Microsoft's `_autodiscover._tcp`): every offered service points to the configured host
//! and port, the target is a host name with an address and not an alias (RFC 2782: "the
//! domain name … must not be an alias"). `0 0 0 .` (RFC 6186 §3.4: not offered) is fine
//! wherever the service is off, and a switched-off service advertised with a real target is
//! reported.

use mailzone_records::{Name, RData, Record, RecordPurpose};

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: Some(RecordPurpose::Srv);
    WRONG_ENDPOINT: Error, "srv-wrong-endpoint",
        "an offered service's SRV points to another host or port than configured";
    TARGET_CNAME: Error, "srv-target-cname",
        "an SRV target is an alias (CNAME), which RFC 2782 forbids";
    TARGET_NO_ADDRESS: Error, "srv-target-no-address",
        "an SRV target has no A or AAAA record";
    ADVERTISES_UNOFFERED: Warning, "srv-advertises-unoffered",
        "a service that is switched off is advertised with a real SRV target";
}

struct Srv {
    port: u16,
    target: Name,
    record: Record,
}

fn srv(record: &Record) -> Option<Srv> {
    match &record.data {
        RData::Srv { port, target, .. } => Some(Srv {
            port: *port,
            target: target.clone(),
            record: record.clone(),
        }),
        _ => None,
    }
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let wanted: Vec<(RecordPurpose, Srv)> = ctx
        .desired
        .iter()
        .filter_map(|d| srv(&d.record).map(|s| (d.purpose, s)))
        .collect();
    let answers = futures::future::join_all(
        wanted
            .iter()
            .map(|(_, w)| support::query(ctx, &w.record.name, "SRV")),
    )
    .await;
    let mut findings = Vec::new();
    let mut targets: Vec<(Name, RecordPurpose, Name)> = Vec::new();
    for ((purpose, want), answer) in wanted.iter().zip(answers) {
        let name = &want.record.name;
        let answer = match answer {
            Ok(a) => a,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        let served: Vec<Srv> = support::at_name(&answer, name)
            .into_iter()
            .filter_map(|l| srv(&l.record))
            .collect();
        if want.target.is_root() {
            let live: Vec<&Srv> = served.iter().filter(|s| !s.target.is_root()).collect();
            if !live.is_empty() {
                let finding = Finding::new(
                    ADVERTISES_UNOFFERED,
                    name.to_string(),
                    format!(
                        "{name} advertises {}, but the service is switched off in the config: clients will try to use it",
                        endpoints(live.iter().copied())
                    ),
                );
                findings.push(replacing(finding, &served, live, want).typed(*purpose));
            }
        } else if !served.is_empty()
            && !served
                .iter()
                .any(|s| s.target == want.target && s.port == want.port)
        {
            let finding = Finding::new(
                WRONG_ENDPOINT,
                name.to_string(),
                format!(
                    "{name} points to {}, but the service is at {}:{}",
                    endpoints(&served),
                    want.target,
                    want.port
                ),
            );
            findings.push(replacing(finding, &served, &served, want).typed(*purpose));
        }
        for s in &served {
            if !s.target.is_root() && !targets.iter().any(|(n, _, t)| n == name && t == &s.target) {
                targets.push((name.clone(), *purpose, s.target.clone()));
            }
        }
    }

    let resolved = futures::future::join_all(
        targets
            .iter()
            .map(|(_, _, target)| support::addresses(ctx, target)),
    )
    .await;
    for ((name, purpose, target), result) in targets.iter().zip(resolved) {
        let (addresses, chain) = match result {
            Ok(r) => r,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        if let Some(end) = chain.last() {
            findings.push(
                support::alias_target(
                    Finding::new(
                        TARGET_CNAME,
                        name.to_string(),
                        format!(
                            "the SRV target {target} is an alias of {end}; RFC 2782 requires the host name itself, and some clients do not follow the alias"
                        ),
                    ),
                    target,
                    &chain,
                )
                .fix(format!(
                    "point the SRV record at {end}, or replace the CNAME at {target} by the addresses of {end}"
                ))
                .typed(*purpose),
            );
        }
        if addresses.is_empty() {
            findings.push(
                Finding::new(
                    TARGET_NO_ADDRESS,
                    name.to_string(),
                    format!(
                        "the SRV target {target} has no A or AAAA record: clients cannot connect"
                    ),
                )
                .seen(format!("{target}: no address"))
                .expected(format!("{target} IN A / AAAA"))
                .fix(format!("publish the A/AAAA records of {target}"))
                .typed(*purpose),
            );
        }
    }
    findings
}

/// `target:port` of each record, comma-separated.
fn endpoints<'a>(srvs: impl IntoIterator<Item = &'a Srv>) -> String {
    srvs.into_iter()
        .map(|s| format!("{}:{}", s.target, s.port))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `finding` with the served values as seen, the wanted one as expected, and the fix that
/// replaces the records `remove` by it.
fn replacing<'a>(
    finding: Finding,
    served: &[Srv],
    remove: impl IntoIterator<Item = &'a Srv>,
    want: &Srv,
) -> Finding {
    finding
        .seen(srv_values(served))
        .expected(want.record.data.value())
        .fix(format!(
            "remove {}; publish {}",
            support::lines(remove.into_iter().map(|s| &s.record)),
            support::line(&want.record)
        ))
}

fn srv_values(served: &[Srv]) -> String {
    served
        .iter()
        .map(|s| s.record.data.value())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::testutil::{case, check_cases};

    check_cases!(srv_cases, [
        case("wrong port")
            .remove(&["_imaps._tcp"])
            .add("_imaps._tcp.example.org. 300 IN SRV 0 1 143 mail.example.org.\n")
            .fires("srv-wrong-endpoint", Severity::Error, "_imaps._tcp.example.org.")
            .seen("0 1 143 mail.example.org.")
            .expected("0 1 993 mail.example.org."),
        case("CNAME target")
            .remove(&["_imaps._tcp"])
            .add(
                "_imaps._tcp.example.org. 300 IN SRV 0 1 993 imap.example.org.\n\
                 imap.example.org. 300 IN CNAME mail.example.org.\n",
            )
            .fires("srv-target-cname", Severity::Error, "_imaps._tcp.example.org."),
        case("target without address")
            .remove(&["_jmap._tcp"])
            .add("_jmap._tcp.example.org. 300 IN SRV 0 1 443 jmap.example.org.\n")
            .fires("srv-target-no-address", Severity::Error, "_jmap._tcp.example.org."),
        // POP3 is off: mailzone publishes `0 0 0 .`.
        case("switched-off service advertised")
            .remove(&["_pop3s._tcp"])
            .add("_pop3s._tcp.example.org. 300 IN SRV 0 1 995 mail.example.org.\n")
            .fires("srv-advertises-unoffered", Severity::Warning, "_pop3s._tcp.example.org.")
            .fix("remove _pop3s._tcp.example.org. 300 IN SRV 0 1 995 mail.example.org.; publish _pop3s._tcp.example.org. 3600 IN SRV 0 0 0 ."),
    ]);
}
