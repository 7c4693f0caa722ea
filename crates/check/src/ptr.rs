//! Reverse DNS of the server's addresses (RFC 1912 §2.1: every address should have a PTR,
//! and the name it gives should resolve back to it; RFC 8499 §3 calls this
//! forward-confirmed reverse DNS, FCrDNS): a PTR in `in-addr.arpa` (RFC 1035 §3.5) or
//! `ip6.arpa` (RFC 3596 §2.5) for every IPv4 and IPv6 address, some PTR name whose A/AAAA
//! records include the address (several PTR names are allowed; any may match), and that
//! name is best the server host name, which receivers compare with the EHLO name.

use std::net::IpAddr;

use mailzone_records::{Name, RData};

use crate::codes::Code;
use crate::context::DomainContext;
use crate::finding::{Finding, Severity};
use crate::support;

pub const MISSING: &Code = &Code {
    id: "ptr-missing",
    severity: Severity::Error,
    record_type: None,
    summary: "a server address has no PTR record",
};

pub const NOT_CONFIRMED: &Code = &Code {
    id: "ptr-not-confirmed",
    severity: Severity::Error,
    record_type: None,
    summary: "no PTR name of a server address resolves back to it (FCrDNS fails)",
};

pub const NOT_HOSTNAME: &Code = &Code {
    id: "ptr-not-hostname",
    severity: Severity::Warning,
    record_type: None,
    summary: "a server address's confirmed PTR is not the server host name",
};

pub const CODES: &[&Code] = &[MISSING, NOT_CONFIRMED, NOT_HOSTNAME];

/// The reverse-mapping name of an address: `10.2.0.192.in-addr.arpa`,
/// `0.1.0.0.….8.b.d.0.1.0.0.2.ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> Name {
    let text = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels = Vec::with_capacity(34);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0x0f));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.push("ip6.arpa".into());
            labels.join(".")
        }
    };
    Name::owner(&text).expect("a reverse name is a valid name")
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let ips = support::server_ips(ctx);
    let results = futures::future::join_all(ips.iter().map(|ip| check_ip(ctx, *ip))).await;
    results.into_iter().flatten().collect()
}

async fn check_ip(ctx: &DomainContext<'_>, ip: IpAddr) -> Vec<Finding> {
    let reverse = reverse_name(ip);
    let host = &ctx.server.hostname;
    let wanted = format!("{reverse} IN PTR {host}");
    let answer = match support::query(ctx, &reverse, "PTR").await {
        Ok(a) => a,
        Err(f) => return vec![f],
    };
    let names: Vec<Name> = answer
        .records
        .iter()
        .filter_map(|l| match &l.record.data {
            RData::Ptr(target) => Some(target.clone()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return vec![
            Finding::new(
                MISSING,
                reverse.to_string(),
                format!(
                    "the server address {ip} has no PTR record: many receivers reject mail from it or score it as spam"
                ),
            )
            .seen("no PTR record")
            .expected(wanted.clone())
            .fix(format!(
                "publish {wanted} (in the reverse zone, usually through the provider of the address)"
            )),
        ];
    }
    let forward = futures::future::join_all(names.iter().map(|n| support::addresses(ctx, n))).await;
    let mut confirmed = Vec::new();
    let mut findings = Vec::new();
    let mut seen = Vec::new();
    for (name, result) in names.iter().zip(forward) {
        match result {
            Ok((addresses, _)) => {
                seen.push(format!(
                    "{name} → {}",
                    if addresses.is_empty() {
                        "no address".to_string()
                    } else {
                        addresses
                            .iter()
                            .map(IpAddr::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ));
                if addresses.contains(&ip) {
                    confirmed.push(name.clone());
                }
            }
            Err(f) => findings.push(f),
        }
    }
    let ptr_list = names
        .iter()
        .map(Name::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if confirmed.is_empty() {
        if findings.is_empty() {
            let fix = if names.contains(host) {
                format!(
                    "publish {host} IN {} {ip}",
                    if ip.is_ipv4() { "A" } else { "AAAA" }
                )
            } else {
                format!("publish {wanted} and make sure {host} resolves to {ip}")
            };
            findings.push(
                Finding::new(
                    NOT_CONFIRMED,
                    reverse.to_string(),
                    format!(
                        "the server address {ip} has the PTR {ptr_list}, but no such name resolves back to {ip}: forward-confirmed reverse DNS fails, and receivers treat the address as unnamed"
                    ),
                )
                .seen(seen.join("; "))
                .expected(format!("a PTR name whose A/AAAA records include {ip}"))
                .fix(fix),
            );
        }
        return findings;
    }
    if !confirmed.contains(host) {
        findings.push(
            Finding::new(
                NOT_HOSTNAME,
                reverse.to_string(),
                format!(
                    "the server address {ip} has the PTR {ptr_list}, not the server host name {host}: receivers that compare it with the EHLO name may score the mail down"
                ),
            )
            .seen(ptr_list.clone())
            .expected(wanted.clone())
            .fix(format!("replace the PTR by {wanted} (through the provider of the address)")),
        );
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Fixture, assert_quiet, with_code};

    const V4: &str = "10.2.0.192.in-addr.arpa.";
    const V6: &str = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("192.0.2.10".parse().unwrap()).to_string(), V4);
        assert_eq!(
            reverse_name("2001:db8::10".parse().unwrap()).to_string(),
            V6
        );
    }

    #[tokio::test]
    async fn confirmed_ptrs_are_quiet_and_any_of_several_names_may_match() {
        let f = Fixture::new("");
        assert_quiet(&check(&f.ctx(&f.zone_with(&[], ""))).await);
        let zone = f.zone_with(
            &[],
            "10.2.0.192.in-addr.arpa. 300 IN PTR other.example.net.\n",
        );
        assert_quiet(&check(&f.ctx(&zone)).await);
    }

    #[tokio::test]
    async fn missing_ptr_fires_for_ipv4_and_ipv6() {
        let f = Fixture::new("");
        let zone = f.zone_with(&["in-addr.arpa"], "");
        let findings = check(&f.ctx(&zone)).await;
        assert_eq!(
            with_code(&findings, "ptr-missing"),
            [(Severity::Error, V4.to_string())]
        );
        let zone = f.zone_with(&["ip6.arpa"], "");
        let findings = check(&f.ctx(&zone)).await;
        assert_eq!(
            with_code(&findings, "ptr-missing"),
            [(Severity::Error, V6.to_string())]
        );
    }

    #[tokio::test]
    async fn unconfirmed_ptr_fires() {
        let f = Fixture::new("");
        let zone = f.zone_with(
            &["in-addr.arpa"],
            "10.2.0.192.in-addr.arpa. 300 IN PTR host.example.net.\n\
             host.example.net. 300 IN A 198.51.100.1\n",
        );
        let findings = check(&f.ctx(&zone)).await;
        assert_eq!(
            with_code(&findings, "ptr-not-confirmed"),
            [(Severity::Error, V4.to_string())]
        );
        assert_eq!(
            findings[0].seen.as_deref(),
            Some("host.example.net. → 198.51.100.1")
        );
    }

    #[tokio::test]
    async fn confirmed_ptr_to_another_name_warns() {
        let f = Fixture::new("");
        let zone = f.zone_with(
            &["ip6.arpa"],
            &format!(
                "{V6} 300 IN PTR static.provider.example.\n\
                 static.provider.example. 300 IN AAAA 2001:db8::10\n"
            ),
        );
        let findings = check(&f.ctx(&zone)).await;
        assert_eq!(
            with_code(&findings, "ptr-not-hostname"),
            [(Severity::Warning, V6.to_string())]
        );
    }
}
