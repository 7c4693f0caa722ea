//! The provider trait: read a zone, apply a change set, report the SOA serial.

use async_trait::async_trait;
use mailzone_records::Name;
use mailzone_records::diff::{ChangeSet, LiveRecord};

use crate::DnsError;

/// How a zone was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMethod {
    /// A full zone transfer (AXFR, RFC 5936).
    Transfer,
    /// Transfer refused: one query per RRset mailzone cares about.
    Queries,
}

/// The zone as read: every record of a type mailzone models (A, AAAA, MX, TXT, CNAME, SRV,
/// CAA, TLSA), with TXT strings as served; other types are invisible to mailzone.
#[derive(Debug, Clone)]
pub struct ZoneSnapshot {
    pub zone: Name,
    pub serial: u32,
    pub records: Vec<LiveRecord>,
    pub method: ReadMethod,
}

/// What an apply sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// UPDATE messages sent (one per zone unless the message size limit split it).
    pub messages: u32,
    /// The zone's SOA serial after the change, when the provider can tell.
    pub serial: Option<u32>,
}

/// A place where zones are published: what a `DnsServer` of the config connects to.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Reads the zone. `wanted` lists the (owner, RR type) pairs to query one by one when
    /// a transfer is refused.
    async fn read_zone(
        &self,
        zone: &Name,
        wanted: &[(Name, &'static str)],
    ) -> Result<ZoneSnapshot, DnsError>;

    /// The zone's current SOA serial (one query): a zone whose serial has not moved has
    /// not changed.
    async fn serial(&self, zone: &Name) -> Result<u32, DnsError>;

    /// Applies the changes atomically where the protocol allows it, with the change set's
    /// prerequisites: a concurrent edit makes it fail with [`DnsError::Conflict`] and
    /// change nothing.
    async fn apply(&self, changes: &ChangeSet) -> Result<ApplyReport, DnsError>;

    /// DNS messages sent so far by this provider (for benchmarks and tests).
    fn messages_sent(&self) -> u64;
}
