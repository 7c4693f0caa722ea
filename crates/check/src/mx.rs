//! MX (RFC 5321 §5.1): each exchanger must be a host name with an address, not an alias
//! (RFC 5321 §5.1, RFC 2181 §10.3); a null MX `0 .` (RFC 7505 §3) says the domain
//! receives no mail and must be the only MX; the served exchangers and their order of
//! preference must be the configured ones.
//!
//! Priorities: equal preferences between hosts are fine (load sharing, RFC 5321 §5.1).
//! What is checked is that every served exchanger is a configured one
//! (`mx-unexpected-host`) and that the configured order of preference is kept: a host
//! configured as backup must not be preferred to (or tie with) one configured before it
//! (`mx-priority-order`).
//!
//! Each target must also be reachable from the Internet: an MX written as an IP address
//! (`10 192.0.2.1.`) is looked up as a name (RFC 5321 §5.1, `mx-target-ip-literal`); an
//! address in 127/8, 10/8, 172.16/12, 192.168/16, 169.254/16, `::1`, fc00::/7 or fe80::/10
//! cannot be reached by senders (`mx-target-private-address`; mox flags a host name on a
//! loopback address); a target without AAAA is unreachable over IPv6 (`mx-no-ipv6`, information, as
//! internet.nl's IPv6 test reports).

use std::collections::BTreeMap;
use std::net::IpAddr;

use mailzone_records::{Name, RecordPurpose};

use crate::context::DomainContext;
use crate::finding::Finding;
use crate::support;

crate::codes::declare! {
    purpose: Some(RecordPurpose::Mx);
    TARGET_CNAME: Error, "mx-target-cname",
        "an MX target is an alias (CNAME), which RFC 5321 §5.1 forbids";
    TARGET_NO_ADDRESS: Error, "mx-target-no-address",
        "an MX target has no A or AAAA record: mail cannot be delivered to it";
    NULL_MX: Error, "mx-null",
        "a null MX (`0 .`) says the domain accepts no mail, but it should";
    UNEXPECTED_HOST: Warning, "mx-unexpected-host",
        "an MX names a host that is not a configured mail exchanger";
    PRIORITY_ORDER: Warning, "mx-priority-order",
        "the served MX preferences do not keep the configured order of the exchangers";
    TARGET_IP_LITERAL: Error, "mx-target-ip-literal",
        "an MX target is written as an IP address: RFC 5321 §5.1 wants a host name";
    TARGET_PRIVATE_ADDRESS: Error, "mx-target-private-address",
        "an MX target has a loopback, private or link-local address no sender can reach";
    NO_IPV6: Info, "mx-no-ipv6",
        "an MX target has no AAAA record: senders on IPv6-only networks cannot deliver";
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    let domain = &ctx.domain.name;
    let answer = match support::query(ctx, domain, "MX").await {
        Ok(a) => a,
        Err(f) => return vec![f],
    };
    let mut findings = Vec::new();
    let served = support::exchangers(support::at_name(&answer, domain));
    let line = |pref: u16, host: &Name| format!("{domain} IN MX {pref} {host}");
    let expected_lines: Vec<String> = ctx
        .server
        .mail_exchangers
        .iter()
        .map(|mx| line(mx.priority, &mx.hostname))
        .collect();
    let receives = support::receives_mail(ctx);

    // Null MX (RFC 7505).
    if let Some((pref, _)) = served.iter().find(|(_, host)| host.is_root()) {
        let message = if receives {
            format!(
                "{domain} publishes a null MX (`{pref} .`): senders are told it accepts no mail at all (RFC 7505)"
            )
        } else {
            format!("{domain} publishes a null MX beside other MX records (RFC 7505 §3 forbids it)")
        };
        if receives || served.len() > 1 {
            findings.push(
                Finding::new(NULL_MX, domain.to_string(), message)
                    .seen(line(*pref, &Name::root()))
                    .expected(expected_lines.join("; "))
                    .fix(format!(
                        "remove {}; publish {}",
                        line(*pref, &Name::root()),
                        expected_lines.join("; ")
                    )),
            );
        }
    }

    // Each target: an address, not an alias.
    let hosts: Vec<&Name> = {
        let mut h: Vec<&Name> = served
            .iter()
            .map(|(_, h)| h)
            .filter(|h| !h.is_root())
            .collect();
        h.sort();
        h.dedup();
        h
    };
    let resolved =
        futures::future::join_all(hosts.iter().map(|h| support::addresses(ctx, h))).await;
    for (host, result) in hosts.iter().zip(resolved) {
        findings.extend(ip_literal(domain, host));
        let (addresses, chain) = match result {
            Ok(r) => r,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        if let Some(target) = chain.last() {
            findings.push(
                support::alias_target(
                    Finding::new(
                        TARGET_CNAME,
                        domain.to_string(),
                        format!(
                            "the MX target {host} is an alias of {target}; an MX must name the host itself (RFC 5321 §5.1), and some senders refuse to follow the alias"
                        ),
                    ),
                    host,
                    &chain,
                )
                .fix(format!(
                    "point the MX at {target} instead, or replace the CNAME at {host} by the addresses of {target}"
                )),
            );
        }
        findings.extend(target_reachability(domain, host, &addresses));
        if addresses.is_empty() {
            findings.push(
                Finding::new(
                    TARGET_NO_ADDRESS,
                    domain.to_string(),
                    format!(
                        "the MX target {host} has no A or AAAA record: senders cannot deliver mail to it"
                    ),
                )
                .seen(format!("{host}: no address"))
                .expected(format!("{host} IN A / AAAA of the mail server"))
                .fix(address_fix(ctx, host)),
            );
        }
    }

    // Hosts and order of preference.
    let configured: BTreeMap<&Name, (usize, u16)> = ctx
        .server
        .mail_exchangers
        .iter()
        .enumerate()
        .map(|(i, mx)| (&mx.hostname, (i, mx.priority)))
        .collect();
    if receives {
        for (pref, host) in served.iter().filter(|(_, h)| !h.is_root()) {
            if !configured.contains_key(host) {
                findings.push(
                    Finding::new(
                        UNEXPECTED_HOST,
                        domain.to_string(),
                        format!(
                            "{domain} has an MX for {host}, which is not a configured mail exchanger: mail may go to a host that does not expect it"
                        ),
                    )
                    .seen(line(*pref, host))
                    .expected(expected_lines.join("; "))
                    .fix(format!("remove {}", line(*pref, host))),
                );
            }
        }
        // Best (lowest) served preference of each configured host.
        let mut best: BTreeMap<&Name, u16> = BTreeMap::new();
        for (pref, host) in &served {
            if configured.contains_key(host) {
                let e = best.entry(host).or_insert(*pref);
                *e = (*e).min(*pref);
            }
        }
        let mut order: Vec<(&Name, usize, u16, u16)> = best
            .iter()
            .map(|(h, served)| {
                let (i, configured_pref) = configured[h];
                (*h, i, configured_pref, *served)
            })
            .collect();
        order.sort_by_key(|(_, i, _, _)| *i);
        for (a, b) in order.iter().zip(order.iter().skip(1)) {
            // Configured: a before b (a.pref < b.pref); served must keep it.
            let (host_a, _, conf_a, served_a) = a;
            let (host_b, _, conf_b, served_b) = b;
            if conf_a < conf_b && served_a >= served_b {
                findings.push(
                    Finding::new(
                        PRIORITY_ORDER,
                        domain.to_string(),
                        format!(
                            "{host_b} is configured as a backup of {host_a} (priority {conf_b} after {conf_a}) but is served with preference {served_b}, not after {host_a}'s {served_a}: senders will use it first or as often"
                        ),
                    )
                    .seen(format!("{}; {}", line(*served_a, host_a), line(*served_b, host_b)))
                    .expected(format!("{}; {}", line(*conf_a, host_a), line(*conf_b, host_b)))
                    .fix(format!(
                        "remove {}; publish {}",
                        line(*served_b, host_b),
                        line(*conf_b, host_b)
                    )),
                );
            }
        }
    }
    findings
}

/// True for an address senders on the Internet cannot reach (loopback, RFC 1918 private,
/// link-local, unique local, unspecified).
fn unreachable_address(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// RFC 5321 §5.1: the target is a host name, not an address written as one.
fn ip_literal(domain: &Name, host: &Name) -> Option<Finding> {
    let written = host.as_str().trim_end_matches('.');
    written.parse::<IpAddr>().is_ok().then(|| {
            Finding::new(
                TARGET_IP_LITERAL,
                domain.to_string(),
                format!(
                    "the MX target of {domain} is written as an IP address ({written}): an MX names a host (RFC 5321 §5.1), so senders look up {host} as a name and find no address"
                ),
            )
            .seen(format!("{domain} IN MX … {host}"))
            .expected("a host name with A/AAAA records")
            .fix(format!(
                "publish a host name (such as mail.{domain}) with `A {written}` and point the MX at it"
            ))
    })
}

/// The target's addresses are ones senders on the Internet can connect to.
fn target_reachability(domain: &Name, host: &Name, addresses: &[IpAddr]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let bad: Vec<String> = addresses
        .iter()
        .filter(|ip| unreachable_address(ip))
        .map(IpAddr::to_string)
        .collect();
    if !bad.is_empty() {
        findings.push(
            Finding::new(
                TARGET_PRIVATE_ADDRESS,
                domain.to_string(),
                format!(
                    "the MX target {host} has addresses no sender on the Internet can reach ({}): loopback, private or link-local; delivery to them fails or goes to the sender's own network",
                    bad.join(", ")
                ),
            )
            .seen(format!("{host}: {}", bad.join(", ")))
            .expected(format!("{host} with public addresses only"))
            .fix(format!("replace those records of {host} by the server's public addresses")),
        );
    }
    if !addresses.is_empty() && !addresses.iter().any(IpAddr::is_ipv6) {
        findings.push(
            Finding::new(
                NO_IPV6,
                domain.to_string(),
                format!(
                    "the MX target {host} has no AAAA record: senders on IPv6-only networks cannot deliver to it (internet.nl's mail test asks for IPv6 on every MX)"
                ),
            )
            .seen(format!("{host}: no AAAA"))
            .expected(format!("{host} IN AAAA <the server's IPv6 address>"))
            .fix(format!("give the server an IPv6 address and publish {host} AAAA (mailzone: `server.ipv6`)")),
        );
    }
    findings
}

fn address_fix(ctx: &DomainContext<'_>, host: &Name) -> String {
    let ours = host == &ctx.server.hostname
        || ctx
            .server
            .mail_exchangers
            .iter()
            .any(|mx| &mx.hostname == host);
    let ips = support::server_ips(ctx);
    if ours && !ips.is_empty() {
        let lines: Vec<String> = ips
            .iter()
            .map(|ip| {
                let t = if ip.is_ipv4() { "A" } else { "AAAA" };
                format!("{host} {} IN {t} {ip}", ctx.domain.ttl)
            })
            .collect();
        format!("publish {}", lines.join("; "))
    } else {
        format!("publish the A/AAAA records of {host}, or point the MX at a host that has them")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::testutil::{Fixture, assert_cases, case, check_cases};

    const MX: &[&str] = &["IN MX"];

    check_cases!(mx_cases, [
        case("CNAME target")
            .remove(MX)
            .add(
                "example.org. 300 IN MX 10 mx.example.org.\n\
                 mx.example.org. 300 IN CNAME mail.example.org.\n",
            )
            .fires("mx-target-cname", Severity::Error, "example.org.")
            .silent("mx-target-no-address"),
        // Only AAAA left: still an address.
        case("IPv6 only")
            .remove(&["mail.example.org. 3600 IN A "])
            .quiet(),
        case("target without address")
            .remove(&[
                "mail.example.org. 3600 IN A ",
                "mail.example.org. 3600 IN AAAA ",
            ])
            .fires("mx-target-no-address", Severity::Error, "example.org.")
            .fix("publish mail.example.org. 3600 IN A 192.0.2.10; mail.example.org. 3600 IN AAAA 2001:db8::10"),
        case("null MX for a domain that receives mail")
            .remove(MX)
            .add("example.org. 300 IN MX 0 .\n")
            .fires("mx-null", Severity::Error, "example.org."),
        case("unexpected host")
            .add(
                "example.org. 300 IN MX 20 other.example.net.\n\
                 other.example.net. 300 IN A 198.51.100.1\n\
                 other.example.net. 300 IN AAAA 2001:db8::1\n",
            )
            .fires("mx-unexpected-host", Severity::Warning, "example.org.")
            .alone(),
    ]);

    fn two_exchangers() -> Fixture {
        let mut config = crate::testutil::config("");
        config
            .server
            .mail_exchangers
            .push(mailzone_records::MailExchanger {
                hostname: Name::host("backup.example.org").unwrap(),
                priority: 20,
            });
        Fixture::from_config(config)
    }

    #[tokio::test]
    async fn priority_order_is_checked_but_equal_hosts_are_fine() {
        let cases = [
            case("the configured order").quiet(),
            case("swapped preferences")
                .remove(MX)
                .add(
                    "example.org. 300 IN MX 20 mail.example.org.\n\
                     example.org. 300 IN MX 10 backup.example.org.\n",
                )
                .fires("mx-priority-order", Severity::Warning, "example.org.")
                .fix("remove example.org. IN MX 10 backup.example.org.; publish example.org. IN MX 20 backup.example.org."),
        ];
        assert_cases(check, &two_exchangers(), &cases).await;
    }
}
