//! Reverse DNS of the server's addresses (RFC 1912 §2.1: every address should have a PTR,
//! and the name it gives should resolve back to it; RFC 8499 §3 calls this
//! forward-confirmed reverse DNS, FCrDNS): a PTR in `in-addr.arpa` (RFC 1035 §3.5) or
//! `ip6.arpa` (RFC 3596 §2.5) for every IPv4 and IPv6 address, some PTR name whose A/AAAA
//! records include the address (several PTR names are allowed; any may match), and that
//! name is best the server host name, which receivers compare with the EHLO name.

use std::net::IpAddr;

use mailzone_records::Name;

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: None;
    MISSING: Error, "ptr-missing",
        "a server address has no PTR record";
    NOT_CONFIRMED: Error, "ptr-not-confirmed",
        "no PTR name of a server address resolves back to it (FCrDNS fails)";
    NOT_HOSTNAME: Warning, "ptr-not-hostname",
        "a server address's confirmed PTR is not the server host name";
}

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
    let names = support::ptr_names(&answer.records);
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
    use crate::finding::Severity;
    use crate::testutil::{case, check_cases};

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

    check_cases!(
        ptr_cases,
        [
            case("any of several names may match")
                .add("10.2.0.192.in-addr.arpa. 300 IN PTR other.example.net.\n")
                .quiet(),
            case("missing IPv4 PTR").remove(&["in-addr.arpa"]).fires(
                "ptr-missing",
                Severity::Error,
                V4,
            ),
            case("missing IPv6 PTR").remove(&["ip6.arpa"]).fires(
                "ptr-missing",
                Severity::Error,
                V6,
            ),
            case("unconfirmed PTR")
                .remove(&["in-addr.arpa"])
                .add(
                    "10.2.0.192.in-addr.arpa. 300 IN PTR host.example.net.\n\
                     host.example.net. 300 IN A 198.51.100.1\n",
                )
                .fires("ptr-not-confirmed", Severity::Error, V4)
                .seen("host.example.net. → 198.51.100.1"),
            case("confirmed PTR to another name")
                .remove(&["ip6.arpa"])
                .add(format!(
                    "{V6} 300 IN PTR static.provider.example.\n\
                     static.provider.example. 300 IN AAAA 2001:db8::10\n"
                ))
                .fires("ptr-not-hostname", Severity::Warning, V6),
        ]
    );
}
