//! The publication ledger (the records mailzone published, the only ones it may delete)
//! and the per-zone sync state.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mailzone_records::diff::LedgerEntry;
use mailzone_records::{Name, Record, RecordPurpose, zonefile};

use sqlx::AssertSqlSafe;

use crate::query::{
    FIELD_SEPARATOR, GROUP_SEPARATOR, JsonField, KEY_SEPARATOR, Marks, Param, ROW_SEPARATOR,
    RowError, params, rows_as_json,
};
use crate::{Store, StoreError, StoreRow};

/// What mailzone remembers of a zone after a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneState {
    pub serial: u32,
    pub desired_digest: String,
    /// The digest of what the desired records were planned from, when the run could
    /// compute it: found unchanged, it stands for `desired_digest` without planning.
    pub inputs_digest: Option<String>,
}

/// Zones per `IN (…)` list when reading zone states: one parameter each, below every
/// database's limit (SQLite before 3.32 allowed 999).
const ZONES_PER_QUERY: usize = 500;

impl Store {
    /// Every record mailzone published in `zone`.
    pub async fn ledger(&self, zone: &Name) -> Result<BTreeSet<LedgerEntry>, StoreError> {
        let mut ledgers = self.ledgers_of(&[zone]).await?;
        Ok(ledgers.remove(zone.as_str()).unwrap_or_default())
    }

    /// The records mailzone published in each of `zones`, keyed by zone (a zone without
    /// any is left out): one query per [`ZONES_PER_QUERY`] zones, so that a run reads the
    /// ledgers of a batch of zones at once instead of one query per zone. Each zone's rows
    /// come joined in one text ([`Store::rows_joined`]), and the zones' texts in one row
    /// ([`Store::groups_joined`]): the database's driver hands rows over one by one between
    /// threads, and a zone holds a few dozen.
    pub async fn ledgers_of(
        &self,
        zones: &[&Name],
    ) -> Result<HashMap<String, BTreeSet<LedgerEntry>>, StoreError> {
        let mut out: HashMap<String, BTreeSet<LedgerEntry>> = HashMap::new();
        let joined = self.rows_joined(&["name", "rtype", "rdata", "record_type"]);
        let groups = self.groups_joined("zone", "entries");
        for zones in zones.chunks(ZONES_PER_QUERY) {
            let sql = format!(
                "SELECT {groups} AS ledgers FROM (SELECT zone, {joined} AS entries \
                 FROM published_records WHERE zone IN ({}) GROUP BY zone) AS per_zone",
                self.marks().list(1, zones.len())
            );
            let params: Vec<Param<'_>> = zones.iter().map(|zone| zone.as_str().into()).collect();
            let ledgers = self
                .db()
                .fetch_one(AssertSqlSafe(sql), &params, |row| {
                    Ok(row.opt_text("ledgers")?)
                })
                .await?;
            for group in ledgers.iter().flat_map(|text| text.split(GROUP_SEPARATOR)) {
                let (zone, entries) =
                    group
                        .split_once(KEY_SEPARATOR)
                        .ok_or_else(|| StoreError::CorruptLedger {
                            path: self.db_path.clone(),
                            zone: group.chars().take(64).collect(),
                            name: String::new(),
                            reason: "a zone's rows without the zone's name".to_string(),
                        })?;
                let ledger = self.joined_entries(zone, entries)?;
                out.insert(zone.to_string(), ledger);
            }
        }
        Ok(out)
    }

    /// A zone's ledger rows read back from their joined text.
    fn joined_entries(
        &self,
        zone: &str,
        joined: &str,
    ) -> Result<BTreeSet<LedgerEntry>, StoreError> {
        joined
            .split(ROW_SEPARATOR)
            .map(|row| {
                let fields: Vec<&str> = row.split(FIELD_SEPARATOR).collect();
                match fields[..] {
                    [name, rtype, rdata, purpose] => {
                        self.ledger_entry(zone, name.to_string(), rtype, rdata, purpose)
                    }
                    _ => Err(StoreError::CorruptLedger {
                        path: self.db_path.clone(),
                        zone: zone.to_string(),
                        name: fields.first().copied().unwrap_or_default().to_string(),
                        reason: format!("a row of {} fields where 4 were written", fields.len()),
                    }),
                }
            })
            .collect()
    }

    /// A ledger row read back as the entry it was written from.
    fn ledger_entry(
        &self,
        zone: &str,
        name: String,
        rtype: &str,
        rdata: &str,
        purpose: &str,
    ) -> Result<LedgerEntry, StoreError> {
        let corrupt = |reason: String| StoreError::CorruptLedger {
            path: self.db_path.clone(),
            zone: zone.to_string(),
            name: name.clone(),
            reason,
        };
        // The owner and the type have columns of their own: only the RDATA is tokenized.
        let owner = Name::owner(&name).map_err(|e| corrupt(e.to_string()))?;
        let data = zonefile::parse_rdata_only(rtype, rdata).map_err(corrupt)?;
        let purpose: RecordPurpose = purpose
            .parse()
            .map_err(|e: mailzone_records::record::UnknownRecordPurpose| corrupt(e.to_string()))?;
        Ok(LedgerEntry {
            purpose,
            name: owner,
            data,
        })
    }

    /// Remembers records about to be published (called before the UPDATE is sent).
    pub async fn ledger_add(
        &self,
        zone: &Name,
        entries: &[LedgerEntry],
        now: i64,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = entries.iter().map(|entry| (zone, entry)).collect();
        self.write_rows(&rows, &[], &[], now).await
    }

    /// Forgets records that were deleted (called after the UPDATE succeeded).
    pub async fn ledger_remove(&self, zone: &Name, records: &[Record]) -> Result<(), StoreError> {
        let rows: Vec<_> = records.iter().map(|record| (zone, record)).collect();
        self.write_rows(&[], &rows, &[], 0).await
    }

    /// The writes of several zones in one transaction, a few multi-row statements in all:
    /// a run commits what its zones in flight wrote meanwhile together, instead of a
    /// transaction (and a round trip to SQLite's worker thread per statement) per zone.
    /// Every add is applied before every removal, whatever their order in `writes`: a run
    /// never hands both for one row (a zone's intent is committed before its UPDATE is
    /// sent, the rows of what it deleted after).
    pub async fn write_zones(&self, writes: &[ZoneWrite], now: i64) -> Result<(), StoreError> {
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        let mut states = Vec::new();
        for write in writes {
            match write {
                ZoneWrite::LedgerAdd { zone, entries } => {
                    adds.extend(entries.iter().map(|entry| (zone, entry)));
                }
                ZoneWrite::LedgerRemove { zone, records } => {
                    removes.extend(records.iter().map(|record| (zone, record)));
                }
                ZoneWrite::State {
                    zone,
                    dns_server,
                    state,
                } => states.push((zone, dns_server.as_str(), state)),
            }
        }
        self.write_rows(&adds, &removes, &states, now).await
    }

    /// Ledger rows added and removed and zone states set, in one transaction.
    async fn write_rows(
        &self,
        adds: &[(&Name, &LedgerEntry)],
        removes: &[(&Name, &Record)],
        states: &[(&Name, &str, &ZoneState)],
        now: i64,
    ) -> Result<(), StoreError> {
        let statements = write_statements(self.marks(), adds, removes, states, now);
        self.execute_atomically(statements).await
    }

    /// The remembered state of every zone, keyed by (zone, DNS server): one query for a
    /// run over many zones.
    pub async fn zone_states(&self) -> Result<HashMap<(String, String), ZoneState>, StoreError> {
        let states = self
            .db()
            .fetch_all(
                "SELECT zone, dns_server, serial, desired_digest, inputs_digest FROM zone_state",
                params![],
                |row| {
                    let key = (row.text("zone")?, row.text("dns_server")?);
                    Ok((key, zone_state_from_row(row)?))
                },
            )
            .await?;
        Ok(states.into_iter().collect())
    }

    /// The remembered states of these (zone, DNS server) pairs, and only of them: one query
    /// per DNS server and [`ZONES_PER_QUERY`] zones, so that a run reading the states of
    /// each batch of zones it reconciles never reads (or holds) the state of every zone.
    pub async fn zone_states_of(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), ZoneState>, StoreError> {
        let mut by_server: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (zone, dns_server) in keys {
            by_server.entry(dns_server).or_default().push(zone);
        }
        let mut out = HashMap::with_capacity(keys.len());
        // One row per query: the states joined in one text (see `Store::rows_joined`).
        let joined = self.rows_joined(&[
            "zone",
            "CAST(serial AS TEXT)",
            "desired_digest",
            // Joined, a NULL would empty the whole row: no digest is written as empty.
            "COALESCE(inputs_digest, '')",
        ]);
        for (dns_server, zones) in by_server {
            for zones in zones.chunks(ZONES_PER_QUERY) {
                let sql = format!(
                    "SELECT {joined} AS states FROM zone_state \
                     WHERE dns_server = {} AND zone IN ({})",
                    self.marks().mark(1),
                    self.marks().list(2, zones.len())
                );
                let mut params: Vec<Param<'_>> = Vec::with_capacity(zones.len() + 1);
                params.push(dns_server.into());
                params.extend(zones.iter().map(|&zone| Param::from(zone)));
                let states = self
                    .db()
                    .fetch_one(AssertSqlSafe(sql), &params, |row| {
                        Ok(row.opt_text("states")?)
                    })
                    .await?;
                for row in states.iter().flat_map(|text| text.split(ROW_SEPARATOR)) {
                    let (zone, state) = self.joined_zone_state(row)?;
                    out.insert((zone.to_string(), dns_server.to_string()), state);
                }
            }
        }
        Ok(out)
    }

    /// A zone's state read back from its joined row: (zone, state).
    fn joined_zone_state<'r>(&self, row: &'r str) -> Result<(&'r str, ZoneState), StoreError> {
        let fields: Vec<&str> = row.split(FIELD_SEPARATOR).collect();
        let corrupt = |reason: String| StoreError::CorruptZoneState {
            path: self.db_path.clone(),
            zone: fields.first().copied().unwrap_or_default().to_string(),
            reason,
        };
        let [zone, serial, desired, inputs] = fields[..] else {
            return Err(corrupt(format!(
                "a row of {} fields where 4 were written",
                fields.len()
            )));
        };
        let serial: i64 = serial
            .parse()
            .map_err(|_| corrupt(format!("the serial `{serial}` is no number")))?;
        let state = ZoneState {
            // Written from a u32, read back as the column's integer.
            serial: serial as u32,
            desired_digest: desired.to_string(),
            inputs_digest: (!inputs.is_empty()).then(|| inputs.to_string()),
        };
        Ok((zone, state))
    }

    /// Records that `zone` on `dns_server` was in sync at `serial` with these desired records.
    pub async fn set_zone_state(
        &self,
        zone: &Name,
        dns_server: &str,
        state: &ZoneState,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write_rows(&[], &[], &[(zone, dns_server, state)], now)
            .await
    }
}

/// One zone's write to the ledger or to its sync state, as [`Store::write_zones`] takes
/// them.
#[derive(Debug, Clone)]
pub enum ZoneWrite {
    /// Records about to be published: remembered before the UPDATE is sent.
    LedgerAdd {
        zone: Name,
        entries: Vec<LedgerEntry>,
    },
    /// Records an applied UPDATE deleted.
    LedgerRemove { zone: Name, records: Vec<Record> },
    /// The zone found (or made) in sync on its DNS server.
    State {
        zone: Name,
        dns_server: String,
        state: ZoneState,
    },
}

/// The statements of [`Store::write_zones`]: an INSERT of the ledger rows added, a DELETE
/// of those removed, and an upsert of zone states, each taking its rows as one JSON
/// parameter ([`Marks::json_rows`]), so that a group of any size runs texts already
/// prepared.
fn write_statements<'a>(
    marks: Marks,
    adds: &[(&'a Name, &'a LedgerEntry)],
    removes: &[(&'a Name, &'a Record)],
    states: &[(&'a Name, &'a str, &'a ZoneState)],
    now: i64,
) -> Vec<(String, Vec<Param<'a>>)> {
    use JsonField::{Integer, Text};
    let mut statements = Vec::new();
    if !adds.is_empty() {
        let sql = format!(
            "INSERT INTO published_records (zone, name, rtype, rdata, record_type, published_at) \
             {} ON CONFLICT (zone, name, rtype, rdata) DO NOTHING",
            marks.json_rows(&[Text, Text, Text, Text, Text, Integer])
        );
        let rows: Vec<_> = adds
            .iter()
            .map(|(zone, entry)| {
                (
                    zone.as_str(),
                    entry.name.as_str(),
                    entry.data.rtype().as_str(),
                    zonefile::rdata_presentation(&entry.data),
                    entry.purpose.name(),
                    now,
                )
            })
            .collect();
        statements.push((sql, vec![rows_as_json(&rows)]));
    }
    if !removes.is_empty() {
        let sql = format!(
            "DELETE FROM published_records WHERE (zone, name, rtype, rdata) IN ({})",
            marks.json_rows(&[Text, Text, Text, Text])
        );
        let rows: Vec<_> = removes
            .iter()
            .map(|(zone, record)| {
                (
                    zone.as_str(),
                    record.name.as_str(),
                    record.data.rtype().as_str(),
                    zonefile::rdata_presentation(&record.data),
                )
            })
            .collect();
        statements.push((sql, vec![rows_as_json(&rows)]));
    }
    // PostgreSQL refuses an upsert that touches one row twice: the last state of a zone wins.
    let mut latest = Vec::with_capacity(states.len());
    let mut seen = std::collections::HashSet::with_capacity(states.len());
    for (zone, dns_server, state) in states.iter().rev() {
        if seen.insert((*zone, *dns_server)) {
            latest.push((
                zone.as_str(),
                *dns_server,
                i64::from(state.serial),
                state.desired_digest.as_str(),
                state.inputs_digest.as_deref(),
                now,
            ));
        }
    }
    if !latest.is_empty() {
        let sql = format!(
            "INSERT INTO zone_state \
             (zone, dns_server, serial, desired_digest, inputs_digest, checked_at) \
             {} ON CONFLICT (zone, dns_server) DO UPDATE SET serial = excluded.serial, \
             desired_digest = excluded.desired_digest, inputs_digest = excluded.inputs_digest, \
             checked_at = excluded.checked_at",
            marks.json_rows(&[Text, Text, Integer, Text, Text, Integer])
        );
        statements.push((sql, vec![rows_as_json(&latest)]));
    }
    statements
}

fn zone_state_from_row(row: &dyn StoreRow) -> Result<ZoneState, RowError> {
    Ok(ZoneState {
        serial: row.int("serial")? as u32,
        desired_digest: row.text("desired_digest")?,
        inputs_digest: row.opt_text("inputs_digest")?,
    })
}
