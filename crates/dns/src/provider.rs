//! The provider trait: read a zone, apply a change set, report the SOA serial.

use async_trait::async_trait;
use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{Name, Record, RrType};

use crate::DnsError;

/// How a zone was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMethod {
    /// A full zone transfer (AXFR, RFC 5936).
    Transfer,
    /// Transfer refused, or the provider reads RRset by RRset: one question per RRset
    /// mailzone cares about.
    Queries,
    /// One listing of the whole zone through the provider's HTTP API.
    Listing,
    /// The zone file read from disk.
    File,
}

impl ReadMethod {
    /// The name in reports (`readBy`).
    pub fn name(self) -> &'static str {
        match self {
            ReadMethod::Transfer => "transfer",
            ReadMethod::Queries => "queries",
            ReadMethod::Listing => "listing",
            ReadMethod::File => "file",
        }
    }
}

/// The zone as read: every record of a type mailzone models (A, AAAA, MX, TXT, CNAME, SRV,
/// CAA, TLSA), with TXT strings as served; other types are invisible to mailzone.
#[derive(Debug, Clone)]
pub struct ZoneSnapshot {
    pub zone: Name,
    pub serial: u32,
    pub records: Vec<LiveRecord>,
    pub method: ReadMethod,
    /// Every NS record of a zone read whole by transfer (its apex NS RRset and any
    /// delegation below it), `None` for any other read or when one of them names a host
    /// mailzone cannot represent: NS is no type mailzone writes, but the apex RRset names
    /// the servers a change must reach.
    pub ns_records: Option<Vec<Record>>,
}

/// What an apply sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// UPDATE messages sent (one per zone unless the message size limit split it).
    pub messages: u32,
    /// The zone's SOA serial after the change, when the provider can tell.
    pub serial: Option<u32>,
}

/// How much of a zone a provider can read in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadScope {
    /// The whole zone at once (AXFR, an API listing, a file).
    WholeZone,
    /// Only RRsets asked for by owner name and type.
    Rrsets,
}

/// How a provider guards a write against an edit made since the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// Every touched RRset is a prerequisite of the write (RFC 2136 §2.4): checked by the
    /// server in the same transaction.
    Prerequisites,
    /// The zone's serial is compared with the one read just before writing.
    Serial,
    /// Not guarded: the last writer wins.
    No,
}

/// What a back end can do; the engine and `plan` read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub read: ReadScope,
    /// A zone's change is applied all or nothing; otherwise RRset by RRset.
    pub atomic: bool,
    pub conditional: Conditional,
    /// The zone has a serial (or version) that moves with every change, so an unchanged
    /// zone is recognised with one question.
    pub serial: bool,
    /// TXT character-strings are stored as sent (a provider that re-splits long values
    /// does not keep them).
    pub txt_strings_kept: bool,
    /// A read gives each record's TTL (a listing without TTLs: the desired TTL is taken
    /// as the live one, so only a change of data is seen).
    pub ttl_read: bool,
    /// The lowest TTL the back end accepts; lower desired TTLs are raised to it.
    pub min_ttl: u32,
}

/// The keys in the order serde_json's maps keep them (sorted): serialized straight into
/// a report or turned into a value, the bytes are the same.
impl serde::Serialize for Capabilities {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("atomic", &self.atomic)?;
        map.serialize_entry(
            "conditional",
            match self.conditional {
                Conditional::Prerequisites => "prerequisites",
                Conditional::Serial => "serial",
                Conditional::No => "none",
            },
        )?;
        map.serialize_entry("minTtl", &self.min_ttl)?;
        map.serialize_entry(
            "read",
            match self.read {
                ReadScope::WholeZone => "zone",
                ReadScope::Rrsets => "rrsets",
            },
        )?;
        map.serialize_entry("serial", &self.serial)?;
        map.serialize_entry("ttlRead", &self.ttl_read)?;
        map.serialize_entry("txtStringsKept", &self.txt_strings_kept)?;
        map.end()
    }
}

impl Capabilities {
    /// The JSON shape shown by `plan --format json`, the API and `mailzone providers`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("capabilities are plain JSON")
    }

    /// One line for `plan`: "atomic: yes, conditional: prerequisites, serial: yes, …".
    pub fn summary(&self) -> String {
        let atomic = if self.atomic {
            "yes"
        } else {
            "no — applied RRset by RRset"
        };
        let read = match self.read {
            ReadScope::WholeZone => "whole zone",
            ReadScope::Rrsets => "RRset by RRset",
        };
        let conditional = match self.conditional {
            Conditional::Prerequisites => "prerequisites",
            Conditional::Serial => "serial compared before writing",
            Conditional::No => "no",
        };
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        format!(
            "read: {read}; atomic: {atomic}; conditional writes: {conditional}; serial: {}; TXT strings kept: {}; TTLs read: {}; minimum TTL: {}",
            yes_no(self.serial),
            yes_no(self.txt_strings_kept),
            yes_no(self.ttl_read),
            self.min_ttl
        )
    }
}

/// A place where zones are published: what a `DnsServer` of the config connects to.
#[async_trait]
pub trait Provider: Send + Sync {
    /// What this back end can do.
    fn capabilities(&self) -> Capabilities;

    /// Reads the zone. `wanted` lists the (owner, RR type) pairs to query one by one when
    /// a transfer is refused.
    async fn read_zone(
        &self,
        zone: &Name,
        wanted: &[(Name, RrType)],
    ) -> Result<ZoneSnapshot, DnsError>;

    /// The zone's current SOA serial (one question): a zone whose serial has not moved has
    /// not changed. Providers without a serial (`Capabilities::serial` false) answer 0.
    async fn serial(&self, zone: &Name) -> Result<u32, DnsError>;

    /// Applies the changes atomically where the protocol allows it, with the change set's
    /// prerequisites: a concurrent edit makes it fail with [`DnsError::Conflict`] and
    /// change nothing.
    async fn apply(&self, changes: &ChangeSet) -> Result<ApplyReport, DnsError>;

    /// Requests sent so far by this provider, DNS messages or HTTP requests (for benchmarks
    /// and tests).
    fn messages_sent(&self) -> u64;
}

/// An RRset's owner and type.
pub type RrsetKey = (Name, RrType);

/// One RRset as a change leaves it, for back ends that replace whole RRsets: the records
/// read (foreign ones included, TXT strings as read) minus the deletes, plus the adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsetAfter {
    pub name: Name,
    pub rtype: RrType,
    /// The adds' TTL, else the TTL read; `None` for an emptied RRset.
    pub ttl: Option<u32>,
    pub records: Vec<LiveRecord>,
}

/// The RRsets a change touches that it does not carry as read (a change without
/// prerequisites, such as an ACME challenge's): the provider reads them before writing.
pub fn unread_rrsets(changes: &ChangeSet) -> Vec<RrsetKey> {
    let read: std::collections::BTreeSet<RrsetKey> = changes
        .prerequisites
        .iter()
        .map(|p| (p.name.clone(), p.rtype))
        .collect();
    let touched: std::collections::BTreeSet<RrsetKey> = changes
        .adds
        .iter()
        .map(|a| &a.record)
        .chain(changes.deletes.iter().map(|(_, l)| &l.record))
        .map(|r| (r.name.clone(), r.data.rtype()))
        .filter(|key| !read.contains(key))
        .collect();
    touched.into_iter().collect()
}

/// Every RRset the change touches, whole, from the prerequisites and `read` (the
/// [`unread_rrsets`] as read): RRsets that keep records first, emptied ones last, so that
/// a back end writing them one by one adds before it deletes.
pub fn rrsets_after(
    changes: &ChangeSet,
    read: std::collections::BTreeMap<RrsetKey, Vec<LiveRecord>>,
) -> Vec<RrsetAfter> {
    let mut rrsets: std::collections::BTreeMap<RrsetKey, RrsetAfter> = read
        .into_iter()
        .chain(
            changes
                .prerequisites
                .iter()
                .map(|p| ((p.name.clone(), p.rtype), p.records.clone())),
        )
        .map(|((name, rtype), records)| {
            let after = RrsetAfter {
                ttl: records.first().map(|r| r.record.ttl),
                name: name.clone(),
                rtype,
                records,
            };
            ((name, rtype), after)
        })
        .collect();
    for (_, live) in &changes.deletes {
        let rrset = rrsets
            .entry((live.record.name.clone(), live.record.data.rtype()))
            .or_insert_with(|| empty(&live.record.name, live.record.data.rtype()));
        rrset.records.retain(|r| r.record.data != live.record.data);
    }
    for add in &changes.adds {
        let rrset = rrsets
            .entry((add.record.name.clone(), add.record.data.rtype()))
            .or_insert_with(|| empty(&add.record.name, add.record.data.rtype()));
        rrset.records.retain(|r| r.record.data != add.record.data);
        rrset
            .records
            .push(LiveRecord::from_record(add.record.clone()));
        rrset.ttl = Some(add.record.ttl);
    }
    let mut out: Vec<RrsetAfter> = rrsets.into_values().collect();
    for rrset in &mut out {
        if rrset.records.is_empty() {
            rrset.ttl = None;
        }
    }
    out.sort_by_key(|r| r.records.is_empty());
    out
}

fn empty(name: &Name, rtype: RrType) -> RrsetAfter {
    RrsetAfter {
        name: name.clone(),
        rtype,
        ttl: None,
        records: Vec::new(),
    }
}
