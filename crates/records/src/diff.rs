//! Reconciling: the [`ChangeSet`] that turns the live zone into the desired records while
//! touching only what mailzone owns (what its ledger says it published), with the RRset prerequisites that make
//! an RFC 2136 UPDATE fail cleanly on a concurrent edit (RFC 2136 §2.4.2, §2.4.3).
//!
//! Ownership works per *slot*: an (owner, type) pair, narrowed for TXT to a record family
//! (`v=spf1`, `v=DMARC1`, …) and for CAA to a (tag, CA) pair. Every slot the planner fills
//! is owned: live values there that are not desired are replaced. A live record outside
//! every owned slot is deleted only if the ledger shows mailzone published it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::name::Name;
use crate::record::{DesiredRecord, RData, Record, RecordPurpose, RrType};

/// A record as read from a server, with TXT character-strings exactly as the server holds
/// them: an RFC 2136 delete or prerequisite must repeat the RDATA byte for byte, however
/// the strings were split.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LiveRecord {
    pub record: Record,
    pub txt_strings: Option<Vec<Vec<u8>>>,
}

impl LiveRecord {
    /// A live record whose TXT strings (if any) are split the way mailzone splits them.
    pub fn from_record(record: Record) -> LiveRecord {
        LiveRecord {
            record,
            txt_strings: None,
        }
    }
}

/// A published record remembered in the ledger: what mailzone wrote, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LedgerEntry {
    pub purpose: RecordPurpose,
    pub name: Name,
    pub data: RData,
}

/// The state of one RRset as it was read: the prerequisite of an atomic update.
/// An empty `records` means "this RRset must not exist" (RFC 2136 §2.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsetPrerequisite {
    pub name: Name,
    pub rtype: RrType,
    pub records: Vec<LiveRecord>,
}

/// The adds and deletes that turn live into desired for one zone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeSet {
    pub zone: Option<Name>,
    pub adds: Vec<DesiredRecord>,
    pub deletes: Vec<(Option<RecordPurpose>, LiveRecord)>,
    pub prerequisites: Vec<RrsetPrerequisite>,
    /// How many desired records are managed (for the deletion safety limit).
    pub managed: usize,
    /// The zone's serial when it was read, set by the engine: a provider without
    /// prerequisites compares it with the serial just before writing.
    pub read_serial: Option<u32>,
}

/// One line of a plan as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanEntry {
    Add(DesiredRecord),
    Replace {
        purpose: RecordPurpose,
        old: Vec<Record>,
        new: Vec<Record>,
    },
    Delete(Option<RecordPurpose>, Record),
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty() && self.deletes.is_empty()
    }

    /// Adds and deletes in the same slot are shown as one replacement.
    pub fn entries(&self) -> Vec<PlanEntry> {
        let mut deletes_by_slot: BTreeMap<Slot, Vec<(Option<RecordPurpose>, Record)>> =
            BTreeMap::new();
        for (t, live) in &self.deletes {
            deletes_by_slot
                .entry(slot(&live.record))
                .or_default()
                .push((*t, live.record.clone()));
        }
        let mut adds_by_slot: BTreeMap<Slot, Vec<DesiredRecord>> = BTreeMap::new();
        for add in &self.adds {
            adds_by_slot
                .entry(slot(&add.record))
                .or_default()
                .push(add.clone());
        }
        let mut out = Vec::new();
        for (s, adds) in adds_by_slot {
            match deletes_by_slot.remove(&s) {
                Some(old) => out.push(PlanEntry::Replace {
                    purpose: adds[0].purpose,
                    old: old.into_iter().map(|(_, r)| r).collect(),
                    new: adds.into_iter().map(|a| a.record).collect(),
                }),
                None => out.extend(adds.into_iter().map(PlanEntry::Add)),
            }
        }
        for (_, deletes) in deletes_by_slot {
            out.extend(deletes.into_iter().map(|(t, r)| PlanEntry::Delete(t, r)));
        }
        out
    }

    /// How many of each [`PlanEntry`] [`ChangeSet::entries`] gives, counted without
    /// building them (a report counts every zone's).
    pub fn entry_counts(&self) -> EntryCounts {
        let adds = self.adds_per_slot();
        let mut counts = EntryCounts::default();
        let mut replaced = BTreeSet::new();
        for (_, live) in &self.deletes {
            let slot = slot(&live.record);
            if adds.contains_key(&slot) {
                replaced.insert(slot);
            } else {
                counts.deletes += 1;
            }
        }
        for (slot, n) in adds {
            if replaced.contains(&slot) {
                counts.replaces += 1;
            } else {
                counts.adds += n;
            }
        }
        counts
    }

    /// The records of the [`PlanEntry::Delete`]s of [`ChangeSet::entries`]: the deletes
    /// in a slot without adds (the others are part of a replacement).
    pub fn plain_deletes(&self) -> impl Iterator<Item = &Record> {
        let adds = self.adds_per_slot();
        self.deletes
            .iter()
            .map(|(_, live)| &live.record)
            .filter(move |record| !adds.contains_key(&slot(record)))
    }

    fn adds_per_slot(&self) -> BTreeMap<Slot<'_>, usize> {
        let mut adds = BTreeMap::new();
        for add in &self.adds {
            *adds.entry(slot(&add.record)).or_insert(0) += 1;
        }
        adds
    }
}

/// The number of adds, replacements and deletes a [`ChangeSet`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryCounts {
    pub adds: usize,
    pub replaces: usize,
    pub deletes: usize,
}

impl EntryCounts {
    pub fn is_empty(&self) -> bool {
        self.adds + self.replaces + self.deletes == 0
    }
}

/// Where a record sits for ownership purposes. Borrowed from the record: a zone's diff
/// computes a slot for every desired and live record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Slot<'a> {
    name: &'a Name,
    rtype: RrType,
    family: Option<Cow<'a, str>>,
}

/// The families of TXT values mailzone writes. Others are never touched.
const TXT_FAMILIES: [&str; 6] = [
    "v=spf1",
    "v=dmarc1",
    "v=stsv1",
    "v=tlsrptv1",
    "v=dkim1",
    "v=uaac1",
];

fn slot(record: &Record) -> Slot<'_> {
    let family = match &record.data {
        RData::Txt(bytes) => Some(Cow::Borrowed(txt_family(bytes).unwrap_or("foreign"))),
        RData::Caa { tag, value, .. } => Some(Cow::Owned(caa_family(tag, value))),
        _ => None,
    };
    Slot {
        name: &record.name,
        rtype: record.data.rtype(),
        family,
    }
}

/// The family of a TXT value: its version tag, compared case-insensitively, followed by
/// the end of the value, a space or a `;` (so `v=spf10` is not SPF).
fn txt_family(bytes: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start();
    TXT_FAMILIES.into_iter().find(|f| {
        text.get(..f.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(f))
            && text[f.len()..]
                .chars()
                .next()
                .is_none_or(|c| c == ' ' || c == ';')
    })
}

/// CAA ownership is per tag and CA: `issue "letsencrypt.org; accounturi=…"` replaces
/// `issue "letsencrypt.org"` but leaves `issue "digicert.com"` alone.
fn caa_family(tag: &str, value: &str) -> String {
    let tag = tag.to_ascii_lowercase();
    match tag.as_str() {
        "issue" | "issuewild" => {
            let ca = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            format!("{tag} {ca}")
        }
        _ => tag,
    }
}

/// Computes the change set for a zone.
///
/// - `desired`: the planned records of the managed types (already narrowed by
///   `publishRecords` and `updateRecords`);
/// - `live`: the zone as read;
/// - `ledger`: what mailzone published earlier in this zone;
/// - `managed_types`: the types this run may change (ledger entries of other types are
///   left alone).
///
/// TTLs: desired records carry the configured TTL, except in an RRset that also holds
/// records mailzone does not own, where the RRset's existing TTL is kept (RFC 2181 §5.2:
/// an RRset has one TTL, and changing it would change other people's records).
pub fn diff(
    zone: &Name,
    desired: &[DesiredRecord],
    live: &[LiveRecord],
    ledger: &BTreeSet<LedgerEntry>,
    managed_types: &[RecordPurpose],
) -> ChangeSet {
    // Each owned slot with the purpose of the first desired record in it.
    let mut owned: BTreeMap<Slot<'_>, RecordPurpose> = BTreeMap::new();
    for d in desired {
        owned.entry(slot(&d.record)).or_insert(d.purpose);
    }
    // The owned slot of each live record (by position), found once: the TTLs and the
    // deletes below both ask.
    let live_slots: Vec<Option<RecordPurpose>> = live
        .iter()
        .map(|l| owned.get(&slot(&l.record)).copied())
        .collect();
    let live_by_rrset = group_rrsets(live);
    let ttls = shared_rrset_ttls(desired, live, &live_slots);
    // RRsets hold a few records: a record is looked up by its RRset, then by a scan.
    let mut desired_by_rrset: BTreeMap<(&Name, RrType), Vec<(&RData, u32)>> = BTreeMap::new();
    for (d, ttl) in desired.iter().zip(&ttls) {
        desired_by_rrset
            .entry((&d.record.name, d.record.data.rtype()))
            .or_default()
            .push((&d.record.data, *ttl));
    }

    let adds: Vec<DesiredRecord> = desired
        .iter()
        .zip(&ttls)
        .filter(|(d, ttl)| {
            !live_by_rrset
                .get(&(&d.record.name, d.record.data.rtype()))
                .is_some_and(|rrset| {
                    rrset
                        .iter()
                        .any(|l| l.record.data == d.record.data && l.record.ttl == **ttl)
                })
        })
        .map(|(d, ttl)| {
            let mut add = d.clone();
            add.record.ttl = *ttl;
            add
        })
        .collect();

    // What the ledger says mailzone published, by record: the first entry of a managed
    // type in the ledger's order.
    let mut published: HashMap<(&Name, &RData), RecordPurpose> = HashMap::new();
    for e in ledger.iter().filter(|e| managed_types.contains(&e.purpose)) {
        published.entry((&e.name, &e.data)).or_insert(e.purpose);
    }
    let mut deletes = Vec::new();
    for (l, slot_purpose) in live.iter().zip(&live_slots) {
        let r = &l.record;
        let is_desired = desired_by_rrset
            .get(&(&r.name, r.data.rtype()))
            .is_some_and(|rrset| {
                rrset
                    .iter()
                    .any(|(data, ttl)| **data == r.data && *ttl == r.ttl)
            });
        if is_desired {
            continue;
        }
        let published = published.get(&(&r.name, &r.data)).copied();
        if slot_purpose.is_some() || published.is_some() {
            deletes.push((published.or(*slot_purpose), l.clone()));
        }
    }

    let touched: BTreeSet<(&Name, RrType)> = adds
        .iter()
        .map(|a| (&a.record.name, a.record.data.rtype()))
        .chain(
            deletes
                .iter()
                .map(|(_, l)| (&l.record.name, l.record.data.rtype())),
        )
        .collect();
    let prerequisites = touched
        .into_iter()
        .map(|(name, rtype)| RrsetPrerequisite {
            records: live_by_rrset
                .get(&(name, rtype))
                .map(|rrset| rrset.iter().map(|l| (*l).clone()).collect())
                .unwrap_or_default(),
            name: name.clone(),
            rtype,
        })
        .collect();

    ChangeSet {
        zone: Some(zone.clone()),
        adds,
        deletes,
        prerequisites,
        managed: desired.len(),
        read_serial: None,
    }
}

fn group_rrsets(live: &[LiveRecord]) -> BTreeMap<(&Name, RrType), Vec<&LiveRecord>> {
    let mut out: BTreeMap<(&Name, RrType), Vec<&LiveRecord>> = BTreeMap::new();
    for l in live {
        out.entry((&l.record.name, l.record.data.rtype()))
            .or_default()
            .push(l);
    }
    out
}

/// The TTL each desired record gets: its own, or that of a live record mailzone does not
/// own in the same RRset (`live_slots`: each live record's owned slot, if any).
fn shared_rrset_ttls(
    desired: &[DesiredRecord],
    live: &[LiveRecord],
    live_slots: &[Option<RecordPurpose>],
) -> Vec<u32> {
    // The first foreign record of each RRset, in the order read.
    let mut foreign_ttls: BTreeMap<(&Name, RrType), u32> = BTreeMap::new();
    for (l, _) in live.iter().zip(live_slots).filter(|(_, s)| s.is_none()) {
        foreign_ttls
            .entry((&l.record.name, l.record.data.rtype()))
            .or_insert(l.record.ttl);
    }
    desired
        .iter()
        .map(|d| {
            foreign_ttls
                .get(&(&d.record.name, d.record.data.rtype()))
                .copied()
                .unwrap_or(d.record.ttl)
        })
        .collect()
}

/// The ledger after a successful apply: published adds are remembered, deleted records
/// forgotten.
pub fn ledger_after(ledger: &BTreeSet<LedgerEntry>, changes: &ChangeSet) -> BTreeSet<LedgerEntry> {
    let mut next = ledger.clone();
    for (_, l) in &changes.deletes {
        next.retain(|e| !(e.name == l.record.name && e.data == l.record.data));
    }
    for add in &changes.adds {
        next.insert(LedgerEntry {
            purpose: add.purpose,
            name: add.record.name.clone(),
            data: add.record.data.clone(),
        });
    }
    next
}

#[cfg(test)]
mod tests;
