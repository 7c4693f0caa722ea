//! Waiting for propagation: after a write, wait `propagationDelay`, then poll
//! every authoritative server directly (never a cache) each `pollingInterval` until all of
//! them serve the new data, or fail after `propagationTimeout` naming the server that lags
//! and what it serves.
//!
//! A server serving exactly the serial the primary reported after the UPDATE serves that
//! version of the zone (RFC 1996 §1: secondaries copy whole versions, named by serial), so
//! one SOA query settles it. A higher serial may be a later version or a server numbering
//! its own versions (a signing secondary): then the changed RRsets are compared one by one.
//! The server the UPDATE went to answered it after committing and reported the serial
//! itself, so it is not polled again. A zone read whole by transfer from that server names
//! its own name servers (its apex NS RRset and the in-zone addresses of their hosts): the
//! servers to poll are then taken from it rather than asked for again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use mailzone_dns::resolver::Resolver;
use mailzone_dns::{ZoneSnapshot, query};
use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{DnsProvider, DnsServer, Name, RData, Record, RrType};

use crate::EngineError;
use crate::progress::Progress;

/// What one RRset must hold once the change has propagated.
type Expected = BTreeMap<(Name, RrType), BTreeSet<RData>>;

/// Where a change was sent: the DNS server's settings and, for a server spoken to over
/// DNS, the address its host resolved to when connecting (resolved once per run, by
/// `connect`).
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    pub server: &'a DnsServer,
    pub primary: Option<SocketAddr>,
    /// The zone as read just before the change: read whole by transfer from `primary`, it
    /// names the servers to poll itself.
    pub transferred: Option<&'a ZoneSnapshot>,
}

/// Waits until every authoritative server of the zone serves `serial` (or later) and the
/// changed RRsets as they should now be.
pub async fn wait(
    origin: Origin<'_>,
    zone: &Name,
    changes: &ChangeSet,
    before: &[LiveRecord],
    serial: u32,
    progress: &dyn Progress,
    sent: &AtomicU64,
) -> Result<(), EngineError> {
    let Origin {
        server, primary, ..
    } = origin;
    // The delay is waited even with nothing to poll: it stands for distribution the
    // provider does behind the servers mailzone can ask (anycast nodes, caches in front).
    tokio::time::sleep(server.propagation_delay).await;
    // The primary applied the change itself: only the other servers need a poll.
    let targets: Vec<SocketAddr> = poll_targets(origin, zone, changes, progress, sent)
        .await?
        .into_iter()
        .filter(|t| Some(*t) != primary)
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let expected = &expected_rrsets(changes, before);
    let deadline = crate::clock::deadline(server.propagation_timeout);
    let mut pending: Vec<SocketAddr> = targets;
    loop {
        let polls = pending.iter().map(|&target| async move {
            (
                target,
                lag(target, zone, serial, expected, server, sent).await,
            )
        });
        let lagging: Vec<(SocketAddr, String)> = futures::future::join_all(polls)
            .await
            .into_iter()
            .filter_map(|(target, reason)| reason.map(|r| (target, r)))
            .collect();
        if lagging.is_empty() {
            return Ok(());
        }
        progress.step(
            zone,
            &format!(
                "waiting for propagation to {} of the authoritative servers",
                lagging.len()
            ),
        );
        if Instant::now() >= deadline {
            let (server_addr, reason) = &lagging[0];
            return Err(EngineError::Propagation {
                zone: zone.as_str().to_string(),
                server: *server_addr,
                timeout: server.propagation_timeout,
                reason: reason.clone(),
                others: lagging.len() - 1,
            });
        }
        pending = lagging.into_iter().map(|(t, _)| t).collect();
        tokio::time::sleep(server.polling_interval).await;
    }
}

/// The servers to poll: `authoritativeServers` as listed, or, without that key, the
/// zone's name servers (its apex NS RRset, RFC 1034 §4.2.1) and their addresses. The DNS
/// server the change went to is asked first — it serves the zone, so its NS RRset and
/// in-zone host addresses are authoritative and no cache delays them (PowerDNS: its
/// `dnsAddress`) — then the resolvers of `/etc/resolv.conf` (a name server outside the
/// zone, or a provider mailzone speaks HTTP to). Name servers are polled on that DNS
/// address's port (where a zone's servers usually listen alike), else on 53. When that
/// server's answers are already at hand (the zone transferred from it before the change),
/// they are read there instead.
async fn poll_targets(
    origin: Origin<'_>,
    zone: &Name,
    changes: &ChangeSet,
    progress: &dyn Progress,
    sent: &AtomicU64,
) -> Result<Vec<SocketAddr>, EngineError> {
    if let Some(listed) = &origin.server.authoritative_servers {
        return Ok(listed.clone());
    }
    let serving = origin.primary.or(match &origin.server.provider {
        DnsProvider::PowerDns { dns_address, .. } => *dns_address,
        _ => None,
    });
    let port = serving.map_or(53, |p| p.port());
    // Only a read from the primary by transfer holds the zone's NS records.
    let from_zone = origin
        .transferred
        .filter(|_| origin.primary.is_some())
        .and_then(|read| {
            let ns = read.ns_records.as_deref()?;
            servers_in_zone(zone, ns, &read.records, changes, port)
        });
    if let Some(servers) = from_zone {
        return Ok(servers);
    }
    progress.step(zone, "finding the zone's name servers");
    let mut resolvers: Vec<SocketAddr> = serving.into_iter().collect();
    // Without a readable resolv.conf, the DNS server itself is the only one asked.
    resolvers.extend(mailzone_dns::resolver::system_resolvers().unwrap_or_default());
    let resolver = Resolver::authoritative_on_port(resolvers, port, origin.server.timeout);
    let found = resolver.servers_for(zone).await;
    sent.fetch_add(
        resolver.messages_sent(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let servers = found.map_err(|e| EngineError::NameServers {
        zone: zone.as_str().to_string(),
        reason: e.to_string(),
    })?;
    Ok(servers.to_vec())
}

/// The zone's name servers as the transferred zone names them, on `port`: the hosts of its
/// apex NS RRset and their addresses, the answers its primary would give to the questions
/// [`poll_targets`] asks it (RFC 1034 §4.3.2: the zone's own data, authoritative there).
/// `None` when the zone cannot answer them all alone: a host outside the zone, below a
/// delegation, or an alias (RFC 2181 §10.3), no NS RRset, no address at all, or a change
/// that touches the NS RRset or a host's addresses.
fn servers_in_zone(
    apex: &Name,
    ns_records: &[Record],
    zone: &[LiveRecord],
    changes: &ChangeSet,
    port: u16,
) -> Option<Vec<SocketAddr>> {
    let hosts: Vec<&Name> = ns_records
        .iter()
        .filter_map(|r| match &r.data {
            RData::Ns(host) if &r.name == apex => Some(host),
            _ => None,
        })
        .collect();
    let below_a_cut = |host: &Name| {
        ns_records
            .iter()
            .any(|r| &r.name != apex && host.is_within(&r.name))
    };
    let answerable = |host: &&Name| {
        host.is_within(apex)
            && !below_a_cut(host)
            && !zone
                .iter()
                .any(|l| &l.record.name == *host && matches!(l.record.data, RData::Cname(_)))
    };
    if hosts.is_empty() || !hosts.iter().all(answerable) {
        return None;
    }
    let changed = |name: &Name, rtype: RrType| {
        let touches = |record: &Record| &record.name == name && record.data.rtype() == rtype;
        changes.adds.iter().any(|a| touches(&a.record))
            || changes.deletes.iter().any(|(_, l)| touches(&l.record))
    };
    let host_changed = |host: &&Name| {
        [RrType::A, RrType::Aaaa, RrType::Cname]
            .into_iter()
            .any(|rtype| changed(host, rtype))
    };
    if changed(apex, RrType::Ns) || hosts.iter().any(host_changed) {
        return None;
    }
    let mut addresses = Vec::new();
    for host in hosts {
        let at_host = zone.iter().filter(|l| &l.record.name == host);
        let v4 = at_host.clone().filter_map(|l| match l.record.data {
            RData::A(ip) => Some(SocketAddr::new(ip.into(), port)),
            _ => None,
        });
        let v6 = at_host.filter_map(|l| match l.record.data {
            RData::Aaaa(ip) => Some(SocketAddr::new(ip.into(), port)),
            _ => None,
        });
        addresses.extend(v4.chain(v6));
    }
    addresses.dedup();
    (!addresses.is_empty()).then_some(addresses)
}

fn expected_rrsets(changes: &ChangeSet, before: &[LiveRecord]) -> Expected {
    let mut expected: Expected = BTreeMap::new();
    let touched: BTreeSet<(Name, RrType)> = changes
        .adds
        .iter()
        .map(|a| (a.record.name.clone(), a.record.data.rtype()))
        .chain(
            changes
                .deletes
                .iter()
                .map(|(_, l)| (l.record.name.clone(), l.record.data.rtype())),
        )
        .collect();
    for key in touched {
        let mut set: BTreeSet<RData> = before
            .iter()
            .filter(|l| l.record.name == key.0 && l.record.data.rtype() == key.1)
            .map(|l| l.record.data.clone())
            .collect();
        for (_, deleted) in &changes.deletes {
            if deleted.record.name == key.0 {
                set.remove(&deleted.record.data);
            }
        }
        for add in &changes.adds {
            if add.record.name == key.0 && add.record.data.rtype() == key.1 {
                set.insert(add.record.data.clone());
            }
        }
        expected.insert(key, set);
    }
    expected
}

/// Why `target` does not serve the change yet, or `None` when it does.
async fn lag(
    target: SocketAddr,
    zone: &Name,
    serial: u32,
    expected: &Expected,
    server: &DnsServer,
    sent: &AtomicU64,
) -> Option<String> {
    match query::query_serial_counted(target, zone, server.timeout, sent).await {
        Ok(served) if serial_lt(served, serial) => {
            return Some(format!(
                "it serves serial {served}, expected {serial} or later"
            ));
        }
        Ok(served) if served == serial => return None,
        Ok(_) => {}
        Err(e) => return Some(format!("no answer: {e}")),
    }
    for ((name, rtype), want) in expected {
        match query::query_rrset_counted(target, name, rtype.as_str(), server.timeout, sent).await {
            Ok(records) => {
                let got: BTreeSet<RData> = records.into_iter().map(|l| l.record.data).collect();
                if &got != want {
                    let shown: Vec<String> = got
                        .iter()
                        .map(mailzone_records::zonefile::rdata_presentation)
                        .collect();
                    return Some(format!("{name} {rtype} is [{}]", shown.join(", ")));
                }
            }
            Err(e) => return Some(format!("no answer for {name} {rtype}: {e}")),
        }
    }
    None
}

/// RFC 1982 §3.2 serial number arithmetic: `a < b` with wrap-around.
fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < (1 << 31)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use mailzone_records::diff::{ChangeSet, LiveRecord};
    use mailzone_records::{DesiredRecord, Name, Record, RecordPurpose, RrType, zonefile};

    use super::servers_in_zone;

    /// A zone file split the way a transfer is read: its NS records, and the others.
    fn zone(text: &str) -> (Vec<Record>, Vec<LiveRecord>) {
        let (ns, others): (Vec<Record>, Vec<Record>) = zonefile::parse(text)
            .expect("test zone parses")
            .into_iter()
            .partition(|r| r.data.rtype() == RrType::Ns);
        (
            ns,
            others.into_iter().map(LiveRecord::from_record).collect(),
        )
    }

    fn servers(text: &str, changes: &ChangeSet, port: u16) -> Option<Vec<SocketAddr>> {
        let (ns, records) = zone(text);
        servers_in_zone(&apex(), &ns, &records, changes, port)
    }

    fn apex() -> Name {
        Name::owner("example.org").unwrap()
    }

    const TWO_SERVERS: &str = "example.org. 3600 IN NS ns1.example.org.
example.org. 3600 IN NS ns2.example.org.
example.org. 3600 IN MX 10 mail.example.org.
ns1.example.org. 3600 IN A 127.0.0.1
ns1.example.org. 3600 IN AAAA ::1
ns2.example.org. 3600 IN A 127.0.0.2
mail.example.org. 3600 IN A 127.0.0.9
";

    fn addresses(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn the_name_servers_are_read_from_the_transferred_zone_on_the_servers_port() {
        let found = servers(TWO_SERVERS, &ChangeSet::default(), 5353);
        assert_eq!(
            found,
            Some(addresses(&[
                "127.0.0.1:5353",
                "[::1]:5353",
                "127.0.0.2:5353"
            ]))
        );
    }

    #[test]
    fn a_change_to_the_mail_host_keeps_the_zone_as_the_answer_but_not_one_to_a_name_server() {
        let change = |line: &str| ChangeSet {
            adds: vec![DesiredRecord {
                purpose: RecordPurpose::Mx,
                record: zonefile::parse(line).unwrap().remove(0),
            }],
            ..ChangeSet::default()
        };
        let mail = change("mail.example.org. 3600 IN A 127.0.0.10");
        assert!(servers(TWO_SERVERS, &mail, 53).is_some());
        let glue = change("ns2.example.org. 3600 IN AAAA ::2");
        assert_eq!(servers(TWO_SERVERS, &glue, 53), None);
        let ns = change("example.org. 3600 IN NS ns3.example.org.");
        assert_eq!(servers(TWO_SERVERS, &ns, 53), None);
    }

    #[test]
    fn a_zone_that_cannot_name_its_servers_alone_is_asked() {
        let none = ChangeSet::default();
        let outside = "example.org. 3600 IN NS ns1.example.org.
example.org. 3600 IN NS ns.provider.net.
ns1.example.org. 3600 IN A 127.0.0.1
";
        let delegated = "example.org. 3600 IN NS ns.sub.example.org.
sub.example.org. 3600 IN NS ns.sub.example.org.
ns.sub.example.org. 3600 IN A 127.0.0.1
";
        let alias = "example.org. 3600 IN NS ns1.example.org.
ns1.example.org. 3600 IN CNAME host.example.org.
host.example.org. 3600 IN A 127.0.0.1
";
        let no_address = "example.org. 3600 IN NS ns1.example.org.
";
        let no_ns = "example.org. 3600 IN MX 10 mail.example.org.
";
        for text in [outside, delegated, alias, no_address, no_ns] {
            assert_eq!(servers(text, &none, 53), None, "{text}");
        }
    }

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(super::serial_lt(1, 2));
        assert!(!super::serial_lt(2, 1));
        assert!(super::serial_lt(u32::MAX, 1));
        assert!(!super::serial_lt(5, 5));
    }
}
