//! How checks ask DNS. A check never talks to the network itself: it asks a [`Lookup`], so
//! the same check runs against the zone's authoritative servers, against servers given with
//! `--nameserver`, or against a test double in unit tests.

use async_trait::async_trait;
use mailzone_records::Name;
use mailzone_records::diff::LiveRecord;

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
