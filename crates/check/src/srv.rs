//! SRV records of the client services (RFC 2782; RFC 6186 §3 IMAP, POP3 and submission,
//! RFC 8314 §5.1 implicit TLS, RFC 8620 §2.2 JMAP, RFC 6764 §3 CalDAV/CardDAV, and
//! Microsoft's `_autodiscover._tcp`): every offered service points to the configured host
//! and port, the target is a host name with an address and not an alias (RFC 2782: "the
//! domain name … must not be an alias"). `0 0 0 .` (RFC 6186 §3.4: not offered) is fine
//! wherever the service is off, and a switched-off service advertised with a real target is
//! reported.

use mailzone_records::{DnsRecordType, Name, RData, Record};

use crate::codes::Code;
use crate::context::DomainContext;
use crate::finding::{Finding, Severity};
use crate::support;

pub const WRONG_ENDPOINT: &Code = &Code {
    id: "srv-wrong-endpoint",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Srv),
    summary: "an offered service's SRV points to another host or port than configured",
};

pub const TARGET_CNAME: &Code = &Code {
    id: "srv-target-cname",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Srv),
    summary: "an SRV target is an alias (CNAME), which RFC 2782 forbids",
};

pub const TARGET_NO_ADDRESS: &Code = &Code {
    id: "srv-target-no-address",
    severity: Severity::Error,
    record_type: Some(DnsRecordType::Srv),
    summary: "an SRV target has no A or AAAA record",
};

pub const ADVERTISES_UNOFFERED: &Code = &Code {
    id: "srv-advertises-unoffered",
    severity: Severity::Warning,
    record_type: Some(DnsRecordType::Srv),
    summary: "a service that is switched off is advertised with a real SRV target",
};

pub const CODES: &[&Code] = &[
    WRONG_ENDPOINT,
    TARGET_CNAME,
    TARGET_NO_ADDRESS,
    ADVERTISES_UNOFFERED,
];

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
    let wanted: Vec<(DnsRecordType, Srv)> = ctx
        .desired
        .iter()
        .filter_map(|d| srv(&d.record).map(|s| (d.record_type, s)))
        .collect();
    let answers = futures::future::join_all(
        wanted
            .iter()
            .map(|(_, w)| support::query(ctx, &w.record.name, "SRV")),
    )
    .await;
    let mut findings = Vec::new();
    let mut targets: Vec<(Name, DnsRecordType, Name)> = Vec::new();
    for ((record_type, want), answer) in wanted.iter().zip(answers) {
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
        let typed = |mut f: Finding| {
            f.record_type = Some(*record_type);
            f
        };
        if want.target.is_root() {
            let live: Vec<&Srv> = served.iter().filter(|s| !s.target.is_root()).collect();
            if !live.is_empty() {
                findings.push(typed(
                    Finding::new(
                        ADVERTISES_UNOFFERED,
                        name.to_string(),
                        format!(
                            "{name} advertises {}, but the service is switched off in the config: clients will try to use it",
                            live.iter()
                                .map(|s| format!("{}:{}", s.target, s.port))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                    .seen(srv_values(&served))
                    .expected(want.record.data.value())
                    .fix(format!(
                        "remove {}; publish {}",
                        support::lines(live.iter().map(|s| &s.record)),
                        support::line(&want.record)
                    )),
                ));
            }
        } else if !served.is_empty()
            && !served
                .iter()
                .any(|s| s.target == want.target && s.port == want.port)
        {
            findings.push(typed(
                Finding::new(
                    WRONG_ENDPOINT,
                    name.to_string(),
                    format!(
                        "{name} points to {}, but the service is at {}:{}",
                        served
                            .iter()
                            .map(|s| format!("{}:{}", s.target, s.port))
                            .collect::<Vec<_>>()
                            .join(", "),
                        want.target,
                        want.port
                    ),
                )
                .seen(srv_values(&served))
                .expected(want.record.data.value())
                .fix(format!(
                    "remove {}; publish {}",
                    support::lines(served.iter().map(|s| &s.record)),
                    support::line(&want.record)
                )),
            ));
        }
        for s in &served {
            if !s.target.is_root() && !targets.iter().any(|(n, _, t)| n == name && t == &s.target) {
                targets.push((name.clone(), *record_type, s.target.clone()));
            }
        }
    }

    let resolved = futures::future::join_all(
        targets
            .iter()
            .map(|(_, _, target)| support::addresses(ctx, target)),
    )
    .await;
    for ((name, record_type, target), result) in targets.iter().zip(resolved) {
        let (addresses, chain) = match result {
            Ok(r) => r,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        let typed = |mut f: Finding| {
            f.record_type = Some(*record_type);
            f
        };
        if let Some(end) = chain.last() {
            findings.push(typed(
                Finding::new(
                    TARGET_CNAME,
                    name.to_string(),
                    format!(
                        "the SRV target {target} is an alias of {end}; RFC 2782 requires the host name itself, and some clients do not follow the alias"
                    ),
                )
                .seen(format!("{target} IN CNAME {}", chain[0]))
                .expected(format!("{target} with its own A/AAAA records"))
                .fix(format!(
                    "point the SRV record at {end}, or replace the CNAME at {target} by the addresses of {end}"
                )),
            ));
        }
        if addresses.is_empty() {
            findings.push(typed(
                Finding::new(
                    TARGET_NO_ADDRESS,
                    name.to_string(),
                    format!(
                        "the SRV target {target} has no A or AAAA record: clients cannot connect"
                    ),
                )
                .seen(format!("{target}: no address"))
                .expected(format!("{target} IN A / AAAA"))
                .fix(format!("publish the A/AAAA records of {target}")),
            ));
        }
    }
    findings
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
    use crate::testutil::{Fixture, assert_quiet, with_code};

    fn one(severity: Severity, name: &str) -> Vec<(Severity, String)> {
        vec![(severity, name.to_string())]
    }

    #[tokio::test]
    async fn correct_srv_records_are_quiet() {
        let f = Fixture::new("");
        assert_quiet(&check(&f.ctx(&f.zone_with(&[], ""))).await);
    }

    #[tokio::test]
    async fn wrong_port_fires() {
        let f = Fixture::new("");
        let zone = f.zone_with(
            &["_imaps._tcp"],
            "_imaps._tcp.example.org. 300 IN SRV 0 1 143 mail.example.org.\n",
        );
        let findings = check(&f.ctx(&zone)).await;
        assert_eq!(
            with_code(&findings, "srv-wrong-endpoint"),
            one(Severity::Error, "_imaps._tcp.example.org.")
        );
        assert_eq!(
            findings[0].seen.as_deref(),
            Some("0 1 143 mail.example.org.")
        );
        assert_eq!(
            findings[0].expected.as_deref(),
            Some("0 1 993 mail.example.org.")
        );
    }

    #[tokio::test]
    async fn cname_target_fires() {
        let f = Fixture::new("");
        let zone = f.zone_with(
            &["_imaps._tcp"],
            "_imaps._tcp.example.org. 300 IN SRV 0 1 993 imap.example.org.\n\
             imap.example.org. 300 IN CNAME mail.example.org.\n",
        );
        let findings = check(&f.ctx(&zone)).await;
        assert_eq!(
            with_code(&findings, "srv-target-cname"),
            one(Severity::Error, "_imaps._tcp.example.org.")
        );
    }

    #[tokio::test]
    async fn target_without_address_fires() {
        let f = Fixture::new("");
        let zone = f.zone_with(
            &["_jmap._tcp"],
            "_jmap._tcp.example.org. 300 IN SRV 0 1 443 jmap.example.org.\n",
        );
        let findings = check(&f.ctx(&zone)).await;
        assert_eq!(
            with_code(&findings, "srv-target-no-address"),
            one(Severity::Error, "_jmap._tcp.example.org.")
        );
    }

    #[tokio::test]
    async fn switched_off_service_advertised_fires() {
        let f = Fixture::new("");
        // POP3 is off: mailzone publishes `0 0 0 .`.
        let zone = f.zone_with(
            &["_pop3s._tcp"],
            "_pop3s._tcp.example.org. 300 IN SRV 0 1 995 mail.example.org.\n",
        );
        let findings = check(&f.ctx(&zone)).await;
        assert_eq!(
            with_code(&findings, "srv-advertises-unoffered"),
            one(Severity::Warning, "_pop3s._tcp.example.org.")
        );
        assert_eq!(
            findings[0].fix.as_deref(),
            Some(
                "remove _pop3s._tcp.example.org. 300 IN SRV 0 1 995 mail.example.org.; publish _pop3s._tcp.example.org. 3600 IN SRV 0 0 0 ."
            )
        );
    }
}
