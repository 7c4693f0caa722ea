//! The publication ledger (the records mailzone published, the only ones it may delete)
//! and the per-zone sync state.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mailzone_records::diff::LedgerEntry;
use mailzone_records::{Name, Record, RecordPurpose, zonefile};

use sqlx::AssertSqlSafe;

use crate::query::{Param, RowError, params};
use crate::{Store, StoreError, StoreRow};

/// Rows per INSERT statement: 6 parameters each stays far below SQLite's limit of 32,766
/// (and the 999 of builds before 3.32) and PostgreSQL's 65,535.
const LEDGER_ROWS_PER_STATEMENT: usize = 150;
/// Parameters per ledger row: zone, name, rtype, rdata, record_type, published_at.
const LEDGER_COLUMNS: usize = 6;

/// What mailzone remembers of a zone after a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneState {
    pub serial: u32,
    pub desired_digest: String,
}

/// Zones per `IN (…)` list when reading zone states: one parameter each, below every
/// database's limit (SQLite before 3.32 allowed 999).
const ZONES_PER_QUERY: usize = 500;

impl Store {
    /// Every record mailzone published in `zone`.
    pub async fn ledger(&self, zone: &Name) -> Result<BTreeSet<LedgerEntry>, StoreError> {
        let rows = self
            .db()
            .fetch_all(
                "SELECT name, rtype, rdata, record_type FROM published_records WHERE zone = $1",
                params![zone.as_str()],
                |row| {
                    Ok([
                        row.text("name")?,
                        row.text("rtype")?,
                        row.text("rdata")?,
                        row.text("record_type")?,
                    ])
                },
            )
            .await?;
        let mut out = BTreeSet::new();
        for [name, rtype, rdata, purpose] in rows {
            let corrupt = |reason: String| StoreError::CorruptLedger {
                path: self.db_path.clone(),
                zone: zone.as_str().to_string(),
                name: name.clone(),
                reason,
            };
            let line = format!("{name}. 0 IN {rtype} {rdata}");
            let record = zonefile::parse(&line)
                .map_err(|e| corrupt(e.to_string()))?
                .pop()
                .ok_or_else(|| corrupt("empty record".into()))?;
            let purpose: RecordPurpose =
                purpose
                    .parse()
                    .map_err(|e: mailzone_records::record::UnknownRecordPurpose| {
                        corrupt(e.to_string())
                    })?;
            out.insert(LedgerEntry {
                purpose,
                name: record.name,
                data: record.data,
            });
        }
        Ok(out)
    }

    /// Remembers records about to be published (called before the UPDATE is sent). One
    /// multi-row INSERT per [`LEDGER_ROWS_PER_STATEMENT`] records: a statement per record
    /// cost a round trip to SQLite's worker thread each.
    pub async fn ledger_add(
        &self,
        zone: &Name,
        entries: &[LedgerEntry],
        now: i64,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for chunk in entries.chunks(LEDGER_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO published_records (zone, name, rtype, rdata, record_type, published_at) \
                 VALUES {} ON CONFLICT (zone, name, rtype, rdata) DO NOTHING",
                values_placeholders(chunk.len(), LEDGER_COLUMNS)
            );
            let params: Vec<Param> = chunk
                .iter()
                .flat_map(|entry| {
                    [
                        Param::from(zone.as_str()),
                        Param::from(entry.name.as_str()),
                        Param::from(entry.data.rtype().as_str()),
                        Param::from(zonefile::rdata_presentation(&entry.data)),
                        Param::from(entry.purpose.name()),
                        Param::from(now),
                    ]
                })
                .collect();
            tx.db().execute(AssertSqlSafe(sql), &params).await?;
        }
        tx.commit().await
    }

    /// Forgets records that were deleted (called after the UPDATE succeeded).
    pub async fn ledger_remove(&self, zone: &Name, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for record in records {
            tx.db()
                .execute(
                    "DELETE FROM published_records \
                     WHERE zone = $1 AND name = $2 AND rtype = $3 AND rdata = $4",
                    params![
                        zone.as_str(),
                        record.name.as_str(),
                        record.data.rtype(),
                        zonefile::rdata_presentation(&record.data)
                    ],
                )
                .await?;
        }
        tx.commit().await
    }

    /// The remembered state of every zone, keyed by (zone, DNS server): one query for a
    /// run over many zones.
    pub async fn zone_states(&self) -> Result<HashMap<(String, String), ZoneState>, StoreError> {
        let states = self
            .db()
            .fetch_all(
                "SELECT zone, dns_server, serial, desired_digest FROM zone_state",
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
        for (dns_server, zones) in by_server {
            for zones in zones.chunks(ZONES_PER_QUERY) {
                let sql = format!(
                    "SELECT zone, serial, desired_digest FROM zone_state \
                     WHERE dns_server = $1 AND zone IN ({})",
                    placeholders(2, zones.len())
                );
                let mut params: Vec<Param<'_>> = Vec::with_capacity(zones.len() + 1);
                params.push(dns_server.into());
                params.extend(zones.iter().map(|&zone| Param::from(zone)));
                let states = self
                    .db()
                    .fetch_all(AssertSqlSafe(sql), &params, |row| {
                        Ok((row.text("zone")?, zone_state_from_row(row)?))
                    })
                    .await?;
                for (zone, state) in states {
                    out.insert((zone, dns_server.to_string()), state);
                }
            }
        }
        Ok(out)
    }

    /// Records that `zone` on `dns_server` was in sync at `serial` with these desired records.
    pub async fn set_zone_state(
        &self,
        zone: &Name,
        dns_server: &str,
        state: &ZoneState,
        now: i64,
    ) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO zone_state (zone, dns_server, serial, desired_digest, checked_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (zone, dns_server) DO UPDATE SET serial = excluded.serial, \
                 desired_digest = excluded.desired_digest, checked_at = excluded.checked_at",
                params![
                    zone.as_str(),
                    dns_server,
                    i64::from(state.serial),
                    &state.desired_digest,
                    now
                ],
            )
            .await?;
        Ok(())
    }
}

fn zone_state_from_row(row: &dyn StoreRow) -> Result<ZoneState, RowError> {
    Ok(ZoneState {
        serial: row.int("serial")? as u32,
        desired_digest: row.text("desired_digest")?,
    })
}

/// `$2, $3, $4` for three parameters from `$2`: the list of an `IN (…)`.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2), ($3, $4)` for two rows of two columns: the VALUES of a multi-row INSERT.
fn values_placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let first = row * columns + 1;
            let row: Vec<String> = (first..first + columns).map(|n| format!("${n}")).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
