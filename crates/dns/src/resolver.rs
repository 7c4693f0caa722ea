//! Finding the servers that answer for a name, and asking them: the resolver `mailzone
//! check` and the propagation watcher share.
//!
//! Two modes:
//! - **given servers** (`--nameserver IP[:PORT]`): every question goes to the first server
//!   that answers; the next one is asked on a network error, SERVFAIL or REFUSED;
//! - **authoritative** (no `--nameserver`): the zone holding each name is found through the
//!   system's resolvers (`/etc/resolv.conf`): NS records asked from the name up to its
//!   first zone cut (RFC 1034 §4.2.1), then the A/AAAA records of those NS names; the
//!   question then goes to those authoritative servers directly, so no resolver cache hides
//!   a recent change. Zone cuts and server addresses are remembered for the resolver's
//!   life; answers never are.
//!
//! Every question is [`crate::lookup`] (RD and DO set, UDP with TCP on truncation).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailzone_records::diff::LiveRecord;
use mailzone_records::{Name, RData};

use crate::Response;

/// At most this many CNAME links are followed.
pub const MAX_CNAME_CHAIN: usize = 8;

/// Why a name could not be resolved, for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

enum Mode {
    Servers(Vec<SocketAddr>),
    Authoritative {
        resolvers: Vec<SocketAddr>,
        /// The port authoritative servers are asked on (53; tests use another).
        port: u16,
        /// Zone-cut cache: a name → the servers of the zone whose apex it is (`None`: not a
        /// zone apex).
        cuts: Mutex<HashMap<Name, Option<Arc<Vec<SocketAddr>>>>>,
    },
}

/// Finds and asks the servers of a name (see the module documentation).
pub struct Resolver {
    mode: Mode,
    timeout: Duration,
    /// Questions sent (each server tried counts once), for a run's message count.
    sent: AtomicU64,
}

impl Resolver {
    /// Every question to `servers` (a resolver or authoritative servers), in order.
    pub fn with_servers(servers: Vec<SocketAddr>, timeout: Duration) -> Resolver {
        Resolver {
            mode: Mode::Servers(servers),
            timeout,
            sent: AtomicU64::new(0),
        }
    }

    /// Every question to the authoritative servers of the name's zone, found through
    /// `resolvers`.
    pub fn authoritative(resolvers: Vec<SocketAddr>, timeout: Duration) -> Resolver {
        Resolver::authoritative_on_port(resolvers, 53, timeout)
    }

    /// [`Resolver::authoritative`], asking the authoritative servers on `port` instead of
    /// 53 (for tests, where every server listens on one loopback port).
    pub fn authoritative_on_port(
        resolvers: Vec<SocketAddr>,
        port: u16,
        timeout: Duration,
    ) -> Resolver {
        Resolver {
            mode: Mode::Authoritative {
                resolvers,
                port,
                cuts: Mutex::new(HashMap::new()),
            },
            timeout,
            sent: AtomicU64::new(0),
        }
    }

    /// [`Resolver::authoritative`] with the resolvers of `/etc/resolv.conf`.
    pub fn from_system(timeout: Duration) -> Result<Resolver, ResolveError> {
        let resolvers = system_resolvers()?;
        if resolvers.is_empty() {
            return Err(ResolveError(format!(
                "{RESOLV_CONF} names no nameserver: pass the servers to ask with --nameserver"
            )));
        }
        Ok(Resolver::authoritative(resolvers, timeout))
    }

    /// The given servers; in authoritative mode the resolvers (they answer for every zone,
    /// RRSIGs included when asked with DO).
    pub fn configured_servers(&self) -> Vec<SocketAddr> {
        match &self.mode {
            Mode::Servers(servers) => servers.clone(),
            Mode::Authoritative { resolvers, .. } => resolvers.clone(),
        }
    }

    /// How many questions this resolver has sent so far.
    pub fn messages_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The servers a question about `name` goes to, as far as known without asking: the
    /// given servers, or in authoritative mode the zone's servers when its cut is cached
    /// (otherwise the resolvers that find it). For messages about unanswered questions.
    pub fn known_servers_for(&self, name: &Name) -> Vec<SocketAddr> {
        match &self.mode {
            Mode::Servers(servers) => servers.clone(),
            Mode::Authoritative {
                resolvers, cuts, ..
            } => {
                let cuts = cuts.lock().expect("cache lock");
                let mut candidate = Some(name.clone());
                while let Some(at) = candidate {
                    if let Some(Some(servers)) = cuts.get(&at) {
                        return servers.to_vec();
                    }
                    candidate = parent(&at);
                }
                resolvers.clone()
            }
        }
    }

    /// Asks `servers` in order: the first answer that is not SERVFAIL or REFUSED wins; with
    /// none, the first such answer, or the last error.
    pub async fn ask(
        &self,
        servers: &[SocketAddr],
        name: &Name,
        rtype: &str,
    ) -> Result<Response, ResolveError> {
        let mut fallback: Option<Response> = None;
        let mut error = None;
        for server in servers {
            self.sent.fetch_add(1, Ordering::Relaxed);
            match crate::lookup(*server, name, rtype, self.timeout).await {
                Ok(r) if r.rcode == "SERVFAIL" || r.rcode == "REFUSED" => {
                    tracing::debug!(%server, %name, rtype, rcode = r.rcode, "trying the next server");
                    fallback.get_or_insert(r);
                }
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(%server, %name, rtype, "no answer: {e}");
                    error = Some(e.to_string());
                }
            }
        }
        if let Some(r) = fallback {
            return Ok(r);
        }
        Err(ResolveError(error.unwrap_or_else(|| {
            format!("no server to ask for {name} {rtype}")
        })))
    }

    /// The servers to ask about `name`.
    pub async fn servers_for(&self, name: &Name) -> Result<Arc<Vec<SocketAddr>>, ResolveError> {
        match &self.mode {
            Mode::Servers(servers) => Ok(Arc::new(servers.clone())),
            Mode::Authoritative {
                resolvers,
                port,
                cuts,
            } => {
                let mut candidate = Some(name.clone());
                while let Some(at) = candidate {
                    let cached = cuts.lock().expect("cache lock").get(&at).cloned();
                    let servers = match cached {
                        Some(entry) => entry,
                        None => {
                            let entry = self.zone_servers(resolvers, *port, &at).await?;
                            cuts.lock()
                                .expect("cache lock")
                                .insert(at.clone(), entry.clone());
                            entry
                        }
                    };
                    if let Some(servers) = servers {
                        return Ok(servers);
                    }
                    candidate = parent(&at);
                }
                Err(ResolveError(format!(
                    "found no zone holding {name} through the resolvers {}",
                    list(resolvers)
                )))
            }
        }
    }

    /// The authoritative servers of the zone whose apex is `apex`, or `None` when `apex`
    /// is not a zone apex.
    async fn zone_servers(
        &self,
        resolvers: &[SocketAddr],
        port: u16,
        apex: &Name,
    ) -> Result<Option<Arc<Vec<SocketAddr>>>, ResolveError> {
        let response = self.ask(resolvers, apex, "NS").await?;
        let ns: Vec<Name> = response
            .answers
            .iter()
            .filter(|l| &l.record.name == apex)
            .filter_map(|l| match &l.record.data {
                RData::Ns(host) => Some(host.clone()),
                _ => None,
            })
            .collect();
        if ns.is_empty() {
            return Ok(None);
        }
        let mut addresses = Vec::new();
        for host in &ns {
            for rtype in ["A", "AAAA"] {
                let Ok(response) = self.ask(resolvers, host, rtype).await else {
                    continue;
                };
                for l in follow(&response.answers, host, rtype).0 {
                    match l.record.data {
                        RData::A(ip) => addresses.push(SocketAddr::new(IpAddr::V4(ip), port)),
                        RData::Aaaa(ip) => addresses.push(SocketAddr::new(IpAddr::V6(ip), port)),
                        _ => {}
                    }
                }
            }
        }
        addresses.dedup();
        if addresses.is_empty() {
            return Err(ResolveError(format!(
                "the name servers of {apex} ({}) have no address",
                ns.iter()
                    .map(Name::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Some(Arc::new(addresses)))
    }
}

/// Follows the CNAME chain from `name` through `answers`: the records of `rtype` at its
/// end, and the links followed.
pub fn follow(answers: &[LiveRecord], name: &Name, rtype: &str) -> (Vec<LiveRecord>, Vec<Name>) {
    let mut current = name.clone();
    let mut links = Vec::new();
    for _ in 0..=MAX_CNAME_CHAIN {
        let wanted: Vec<LiveRecord> = answers
            .iter()
            .filter(|l| {
                l.record.name == current
                    && l.record.data.rtype().as_str().eq_ignore_ascii_case(rtype)
            })
            .cloned()
            .collect();
        if !wanted.is_empty() {
            return (wanted, links);
        }
        let next = answers.iter().find_map(|l| match &l.record.data {
            RData::Cname(target) if l.record.name == current => Some(target.clone()),
            _ => None,
        });
        match next {
            Some(target) if !links.contains(&target) && &target != name => {
                links.push(target.clone());
                current = target;
            }
            _ => break,
        }
    }
    (Vec::new(), links)
}

fn parent(name: &Name) -> Option<Name> {
    let (_, rest) = name.as_str().split_once('.')?;
    Name::owner(rest).ok()
}

fn list(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The system's resolver configuration.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The `nameserver` addresses of `/etc/resolv.conf` (empty when it names none).
pub fn system_resolvers() -> Result<Vec<SocketAddr>, ResolveError> {
    let text = std::fs::read_to_string(RESOLV_CONF)
        .map_err(|e| ResolveError(format!("cannot read {RESOLV_CONF}: {e}")))?;
    Ok(parse_resolv_conf(&text))
}

/// The `nameserver` addresses of a resolv.conf text (port 53; an IPv6 zone index such as
/// `%eth0` is dropped, as a link-local resolver cannot be told apart without it anyway).
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(address) = words.next() else {
            continue;
        };
        let address = address.split('%').next().unwrap_or(address);
        if let Ok(ip) = address.parse::<IpAddr>() {
            let addr = SocketAddr::new(ip, 53);
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

/// A `--nameserver` value: `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address; port 53
/// by default.
pub fn parse_nameserver(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "`{text}` is not an IP address with an optional port (192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# generated\nsearch example.org\nnameserver 192.0.2.53\n\
                    nameserver   2001:db8::53 # second\nnameserver fe80::1%eth0\n\
                    options ndots:2\nnameserver not-an-ip\nnameserver 192.0.2.53\n;nameserver 10.0.0.1\n";
        assert_eq!(
            parse_resolv_conf(text),
            [
                "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
                "[2001:db8::53]:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap(),
            ]
        );
        assert!(parse_resolv_conf("").is_empty());
    }

    #[test]
    fn nameserver_arguments() {
        let p = |s: &str| parse_nameserver(s).unwrap().to_string();
        assert_eq!(p("127.0.0.1"), "127.0.0.1:53");
        assert_eq!(p("127.0.0.1:5300"), "127.0.0.1:5300");
        assert_eq!(p("::1"), "[::1]:53");
        assert_eq!(p("[::1]"), "[::1]:53");
        assert_eq!(p("[::1]:5300"), "[::1]:5300");
        assert!(parse_nameserver("ns1.example.org").is_err());
        assert!(parse_nameserver("127.0.0.1:99999").is_err());
    }

    fn live(owner: &str, data: RData) -> LiveRecord {
        LiveRecord::from_record(mailzone_records::Record {
            name: Name::owner(owner).unwrap(),
            ttl: 300,
            data,
        })
    }

    #[test]
    fn chains_are_followed_in_the_answer() {
        let n = |s: &str| Name::owner(s).unwrap();
        let answers = vec![
            live("a.example.org", RData::Cname(n("b.example.org"))),
            live("b.example.org", RData::Cname(n("c.example.net"))),
            live("c.example.net", RData::A("192.0.2.1".parse().unwrap())),
        ];
        let (records, links) = follow(&answers, &n("a.example.org"), "A");
        assert_eq!(records.len(), 1);
        assert_eq!(links, [n("b.example.org"), n("c.example.net")]);
        // Target not in the answer: the links so far, no records (asked again).
        let (records, links) = follow(&answers[..1], &n("a.example.org"), "A");
        assert!(records.is_empty());
        assert_eq!(links, [n("b.example.org")]);
        // A loop stops.
        let looped = vec![
            live("a.example.org", RData::Cname(n("b.example.org"))),
            live("b.example.org", RData::Cname(n("a.example.org"))),
        ];
        let (records, _) = follow(&looped, &n("a.example.org"), "A");
        assert!(records.is_empty());
    }
}
