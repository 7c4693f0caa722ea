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
//! itself, so it is not polled again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use mailzone_dns::query;
use mailzone_dns::resolver::Resolver;
use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{DnsProvider, DnsServer, Name, RData, RrType};

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
    let Origin { server, primary } = origin;
    // The delay is waited even with nothing to poll: it stands for distribution the
    // provider does behind the servers mailzone can ask (anycast nodes, caches in front).
    tokio::time::sleep(server.propagation_delay).await;
    // The primary applied the change itself: only the other servers need a poll.
    let targets: Vec<SocketAddr> = poll_targets(origin, zone, progress, sent)
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
/// address's port (where a zone's servers usually listen alike), else on 53.
async fn poll_targets(
    origin: Origin<'_>,
    zone: &Name,
    progress: &dyn Progress,
    sent: &AtomicU64,
) -> Result<Vec<SocketAddr>, EngineError> {
    if let Some(listed) = &origin.server.authoritative_servers {
        return Ok(listed.clone());
    }
    progress.step(zone, "finding the zone's name servers");
    let serving = origin.primary.or(match &origin.server.provider {
        DnsProvider::PowerDns { dns_address, .. } => *dns_address,
        _ => None,
    });
    let mut resolvers: Vec<SocketAddr> = serving.into_iter().collect();
    // Without a readable resolv.conf, the DNS server itself is the only one asked.
    resolvers.extend(mailzone_dns::resolver::system_resolvers().unwrap_or_default());
    let port = serving.map_or(53, |p| p.port());
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
    #[test]
    fn serial_arithmetic_wraps() {
        assert!(super::serial_lt(1, 2));
        assert!(!super::serial_lt(2, 1));
        assert!(super::serial_lt(u32::MAX, 1));
        assert!(!super::serial_lt(5, 5));
    }
}
