//! How checks ask DNS. A check never talks to the network itself: it asks a [`Lookup`], so
//! the same check runs against the zone's authoritative servers, against servers given with
//! `--nameserver`, or against a test double in unit tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mailzone_records::Name;
use mailzone_records::diff::LiveRecord;
use tokio::sync::OnceCell;

/// The response code of an answer, as far as checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    NxDomain,
    ServFail,
    Refused,
    Other(String),
}

/// An answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: Rcode,
    /// Records of the asked type at the end of any CNAME chain.
    pub records: Vec<LiveRecord>,
    /// The CNAME chain followed from the asked name (empty when the name is not an alias).
    pub cname_chain: Vec<Name>,
    /// Whether the answer was DNSSEC-validated (AD bit from a validating resolver, or
    /// validated by mailzone against its trust anchor).
    pub authenticated: bool,
}

impl Answer {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Why a question got no answer at all (network trouble, not "the record does not exist").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Asks DNS questions for the checks.
#[async_trait]
pub trait Lookup: Send + Sync {
    /// Records of type `rtype` (`"TXT"`, `"MX"`, `"PTR"`, …) at `name`, following CNAMEs.
    async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError>;

    /// The servers this lookup asks (address and port), for checks that send questions of
    /// their own: DNSSEC validation (`dnssec.rs`) needs the RRSIG, DNSKEY and DS records
    /// that an [`Answer`] does not carry. Empty when unknown (test doubles): those checks
    /// then rely on [`Answer::authenticated`] alone.
    fn servers(&self) -> Vec<std::net::SocketAddr> {
        Vec::new()
    }

    /// The servers a question about `name` goes to, as far as known without asking (for
    /// messages about questions that got no answer): by default [`Lookup::servers`].
    fn servers_for_report(&self, name: &Name) -> Vec<std::net::SocketAddr> {
        let _ = name;
        self.servers()
    }
}

/// The key of a question: the name and the type, uppercase.
type Question = (Name, String);

/// The one answer to a question, filled by its first asker.
type SharedAnswer = Arc<OnceCell<Result<Answer, LookupError>>>;

/// A run-wide answer cache in front of another [`Lookup`]: each question (name, type) is
/// sent once per run, and concurrent askers of the same question wait for the one query in
/// flight instead of sending their own (the mail host shared by a thousand domains is asked
/// once, not once per domain). Failures are kept too: a server that did not answer is not
/// asked the same question again within the run. A run is short (seconds), so TTLs are not
/// consulted.
pub struct CachedLookup<'a> {
    inner: &'a dyn Lookup,
    answers: Mutex<HashMap<Question, SharedAnswer>>,
    /// Questions sent to `inner` (for the benchmark and tests).
    sent: AtomicUsize,
    /// Questions asked of this cache.
    asked: AtomicUsize,
}

impl<'a> CachedLookup<'a> {
    pub fn new(inner: &'a dyn Lookup) -> CachedLookup<'a> {
        CachedLookup {
            inner,
            answers: Mutex::new(HashMap::new()),
            sent: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
        }
    }

    /// (questions asked of the cache, questions sent to the lookup behind it).
    pub fn counts(&self) -> (usize, usize) {
        (
            self.asked.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
        )
    }
}

#[async_trait]
impl Lookup for CachedLookup<'_> {
    async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let key = (name.clone(), rtype.to_ascii_uppercase());
        let cell = self
            .answers
            .lock()
            .expect("answer cache lock")
            .entry(key)
            .or_default()
            .clone();
        // The first asker sends the query; the others wait for it. When the first asker is
        // dropped (its domain ran out of time), a waiting one sends it instead.
        cell.get_or_init(|| async {
            self.sent.fetch_add(1, Ordering::Relaxed);
            self.inner.query(name, rtype).await
        })
        .await
        .clone()
    }

    fn servers(&self) -> Vec<std::net::SocketAddr> {
        self.inner.servers()
    }

    fn servers_for_report(&self, name: &Name) -> Vec<std::net::SocketAddr> {
        self.inner.servers_for_report(name)
    }
}

/// The [`Lookup`] of one domain's checks: every question must be answered before the
/// domain's deadline, after which it fails with a [`LookupError`] naming the servers asked
/// and the question, so the checks still report everything else (each unanswered
/// question as `dns-lookup-failed`). An answer with an error RCODE (SERVFAIL, REFUSED, …)
/// fails the same way, naming the servers and the question. The questions still in flight are known at any time
/// ([`DeadlineLookup::unanswered`]).
pub struct DeadlineLookup<'a> {
    inner: &'a dyn Lookup,
    deadline: tokio::time::Instant,
    limit: Duration,
    in_flight: Mutex<Vec<Question>>,
}

impl<'a> DeadlineLookup<'a> {
    /// Questions to `inner`, each bounded by `limit` from now.
    pub fn new(inner: &'a dyn Lookup, limit: Duration) -> DeadlineLookup<'a> {
        DeadlineLookup {
            inner,
            deadline: tokio::time::Instant::now() + limit,
            limit,
            in_flight: Mutex::new(Vec::new()),
        }
    }

    /// The questions asked and not answered yet, each with the servers it went to, as text
    /// (`mta-sts.example.org. A to 127.0.0.1:53`).
    pub fn unanswered(&self) -> Vec<String> {
        let questions = self.in_flight.lock().expect("in-flight lock").clone();
        questions
            .iter()
            .map(|(name, rtype)| {
                format!(
                    "{name} {rtype} to {}",
                    servers_text(&self.inner.servers_for_report(name))
                )
            })
            .collect()
    }
}

#[async_trait]
impl Lookup for DeadlineLookup<'_> {
    async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
        let question = (name.clone(), rtype.to_ascii_uppercase());
        self.in_flight
            .lock()
            .expect("in-flight lock")
            .push(question.clone());
        let result = tokio::time::timeout_at(self.deadline, self.inner.query(name, rtype)).await;
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        if let Some(at) = in_flight.iter().position(|q| q == &question) {
            in_flight.swap_remove(at);
        }
        drop(in_flight);
        let servers = || servers_text(&self.inner.servers_for_report(name));
        match result {
            Err(_) => Err(LookupError(format!(
                "no answer to {name} {rtype} from {} within the domain's time limit of {}",
                servers(),
                seconds(self.limit)
            ))),
            Ok(Ok(answer)) => match unusable(&answer.rcode) {
                // An error RCODE is no answer either: said with the server and the question,
                // as every check reports it as `dns-lookup-failed` anyway.
                Some(why) => Err(LookupError(format!(
                    "{} answered {name} {rtype} with {why}",
                    servers()
                ))),
                None => Ok(answer),
            },
            Ok(Err(e)) => Err(e),
        }
    }

    fn servers(&self) -> Vec<std::net::SocketAddr> {
        self.inner.servers()
    }

    fn servers_for_report(&self, name: &Name) -> Vec<std::net::SocketAddr> {
        self.inner.servers_for_report(name)
    }
}

/// What an error RCODE means for a person; `None` for a usable answer (NOERROR, NXDOMAIN).
fn unusable(rcode: &Rcode) -> Option<String> {
    match rcode {
        Rcode::NoError | Rcode::NxDomain => None,
        Rcode::ServFail => Some(
            "SERVFAIL (the server could not answer; with DNSSEC, often a validation failure)"
                .into(),
        ),
        Rcode::Refused => Some("REFUSED (the server does not serve this name's zone)".into()),
        Rcode::Other(other) => Some(other.clone()),
    }
}

/// `127.0.0.1:53, [::1]:53`, or words when no server is known.
pub fn servers_text(servers: &[std::net::SocketAddr]) -> String {
    if servers.is_empty() {
        return "the servers asked".into();
    }
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration as `30 s` or `1.5 s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// A [`Lookup`] that answers from zone-file text, for unit tests of the checks: CNAMEs are
/// followed, a name with no records at all is NXDOMAIN, and every answer is
/// `authenticated` when built with [`ZoneLookup::signed`].
#[derive(Debug, Clone, Default)]
pub struct ZoneLookup {
    records: Vec<mailzone_records::Record>,
    authenticated: bool,
}

impl ZoneLookup {
    /// Parses records in the form `mailzone_records::zonefile::render` writes (absolute
    /// names, one per line). Panics on bad text: this is for tests.
    pub fn new(zone_text: &str) -> ZoneLookup {
        let records = mailzone_records::zonefile::parse(zone_text)
            .unwrap_or_else(|e| panic!("bad test zone: {e}"));
        ZoneLookup {
            records,
            authenticated: false,
        }
    }

    /// The same, with every answer marked DNSSEC-validated.
    pub fn signed(zone_text: &str) -> ZoneLookup {
        ZoneLookup {
            authenticated: true,
            ..ZoneLookup::new(zone_text)
        }
    }
}

#[async_trait]
impl Lookup for ZoneLookup {
    async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
        let mut current = name.clone();
        let mut chain = Vec::new();
        for _ in 0..8 {
            let at_name: Vec<&mailzone_records::Record> =
                self.records.iter().filter(|r| r.name == current).collect();
            let wanted: Vec<LiveRecord> = at_name
                .iter()
                .filter(|r| r.data.rtype().as_str().eq_ignore_ascii_case(rtype))
                .map(|r| LiveRecord::from_record((*r).clone()))
                .collect();
            if (!wanted.is_empty() || !rtype.eq_ignore_ascii_case("CNAME"))
                && let Some(mailzone_records::RData::Cname(target)) = at_name
                    .iter()
                    .map(|r| &r.data)
                    .find(|d| matches!(d, mailzone_records::RData::Cname(_)))
                    .filter(|_| wanted.is_empty())
            {
                chain.push(target.clone());
                current = target.clone();
                continue;
            }
            let exists = !at_name.is_empty()
                || self
                    .records
                    .iter()
                    .any(|r| r.name.is_within(&current) && r.name != current);
            return Ok(Answer {
                rcode: if exists {
                    Rcode::NoError
                } else {
                    Rcode::NxDomain
                },
                records: wanted,
                cname_chain: chain,
                authenticated: self.authenticated,
            });
        }
        Err(LookupError(format!("CNAME loop at {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup that counts the questions it gets, answers after `delay`, and never answers
    /// names starting with `silent`.
    struct Slow {
        zone: ZoneLookup,
        delay: Duration,
        asked: AtomicUsize,
    }

    #[async_trait]
    impl Lookup for Slow {
        async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            if name.as_str().starts_with("silent") {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(self.delay).await;
            self.zone.query(name, rtype).await
        }

        fn servers(&self) -> Vec<std::net::SocketAddr> {
            vec!["127.0.0.1:5353".parse().unwrap()]
        }
    }

    /// A lookup whose server refuses everything.
    struct Refusing;

    #[async_trait]
    impl Lookup for Refusing {
        async fn query(&self, _: &Name, _: &str) -> Result<Answer, LookupError> {
            Ok(Answer {
                rcode: Rcode::Refused,
                records: Vec::new(),
                cname_chain: Vec::new(),
                authenticated: false,
            })
        }

        fn servers(&self) -> Vec<std::net::SocketAddr> {
            vec!["127.0.0.1:5353".parse().unwrap()]
        }
    }

    fn slow(delay: Duration) -> Slow {
        Slow {
            zone: ZoneLookup::new("mail.example.org. 300 IN A 192.0.2.10\n"),
            delay,
            asked: AtomicUsize::new(0),
        }
    }

    #[tokio::test]
    async fn concurrent_askers_of_one_question_send_one_query() {
        let inner = slow(Duration::from_millis(50));
        let cached = CachedLookup::new(&inner);
        let host = Name::owner("mail.example.org").unwrap();
        let answers = futures::future::join_all((0..20).map(|_| cached.query(&host, "a"))).await;
        assert!(
            answers
                .iter()
                .all(|a| a.as_ref().unwrap().records.len() == 1)
        );
        // Later askers, other spelling of the type: still the one query.
        cached.query(&host, "A").await.unwrap();
        assert_eq!(inner.asked.load(Ordering::Relaxed), 1);
        assert_eq!(cached.counts(), (21, 1));
        // Another question is its own query.
        cached.query(&host, "AAAA").await.unwrap();
        assert_eq!(inner.asked.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_domain_out_of_time_names_the_server_and_the_question() {
        let inner = slow(Duration::from_millis(1));
        let bounded = DeadlineLookup::new(&inner, Duration::from_millis(200));
        let silent = Name::owner("silent.example.org").unwrap();
        let host = Name::owner("mail.example.org").unwrap();
        let started = tokio::time::Instant::now();
        let (stuck, answered) = tokio::join!(bounded.query(&silent, "MX"), async {
            let a = bounded.query(&host, "A").await;
            (a, bounded.unanswered())
        });
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            stuck.unwrap_err().0,
            "no answer to silent.example.org. MX from 127.0.0.1:5353 within the domain's time limit of 0.2 s"
        );
        // An error RCODE names the servers and the question too.
        let refused = DeadlineLookup::new(&Refusing, Duration::from_secs(1));
        assert_eq!(
            refused.query(&host, "TXT").await.unwrap_err().0,
            "127.0.0.1:5353 answered mail.example.org. TXT with REFUSED (the server does not serve this name's zone)"
        );
        // The other question was answered, while the silent one was still in flight.
        assert_eq!(answered.0.unwrap().records.len(), 1);
        assert_eq!(answered.1, ["silent.example.org. MX to 127.0.0.1:5353"]);
        assert!(bounded.unanswered().is_empty());
    }

    #[tokio::test]
    async fn zone_lookup_follows_cnames_and_knows_nxdomain() {
        let zone = ZoneLookup::new(
            "mta-sts.example.org. 300 IN CNAME mail.example.org.\n\
             mail.example.org. 300 IN A 192.0.2.10\n\
             example.org. 300 IN TXT \"v=spf1 mx -all\"\n",
        );
        let name = |s: &str| Name::owner(s).unwrap();
        let a = zone.query(&name("mta-sts.example.org"), "A").await.unwrap();
        assert_eq!(a.records.len(), 1);
        assert_eq!(a.cname_chain, vec![name("mail.example.org")]);
        let txt = zone.query(&name("example.org"), "TXT").await.unwrap();
        assert_eq!(txt.records.len(), 1);
        let none = zone.query(&name("nope.example.org"), "TXT").await.unwrap();
        assert_eq!(none.rcode, Rcode::NxDomain);
        let nodata = zone.query(&name("example.org"), "MX").await.unwrap();
        assert_eq!(nodata.rcode, Rcode::NoError);
        assert!(nodata.is_empty());
        let cname = zone
            .query(&name("mta-sts.example.org"), "CNAME")
            .await
            .unwrap();
        assert_eq!(cname.records.len(), 1);
    }
}
