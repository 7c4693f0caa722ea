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
}
