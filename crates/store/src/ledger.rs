//! The publication ledger (the records mailzone published, the only ones it may delete)
//! and the per-zone sync state.

use std::collections::{BTreeSet, HashMap, HashSet};

use mailzone_records::diff::LedgerEntry;
use mailzone_records::{DnsRecordType, Name, Record, zonefile};

use crate::{Store, StoreError, StoreRow, with_pool};

/// Rows per INSERT statement: 6 parameters each stays far below SQLite's limit of 32,766
/// (and the 999 of builds before 3.32) and PostgreSQL's 65,535.
const LEDGER_ROWS_PER_STATEMENT: usize = 150;

/// What mailzone remembers of a zone after a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneState {
    pub serial: u32,
    pub desired_digest: String,
}

/// Up to this many zones, a run asks for their states one by one rather than reading the
/// state of every zone (a service task publishes one domain among thousands).
const FEW_ZONES: usize = 64;

impl Store {
    /// Every record mailzone published in `zone`.
    pub async fn ledger(&self, zone: &Name) -> Result<BTreeSet<LedgerEntry>, StoreError> {
        let rows: Vec<[String; 4]> = with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT name, rtype, rdata, record_type FROM published_records WHERE zone = $1",
            )
            .bind(zone.as_str())
            .fetch_all(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            rows.iter()
                .map(|row| {
                    Ok([
                        row.text("name")?,
                        row.text("rtype")?,
                        row.text("rdata")?,
                        row.text("record_type")?,
                    ])
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(|e| self.database_error(e))?
        });
        let mut out = BTreeSet::new();
        for [name, rtype, rdata, record_type] in rows {
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
            let record_type: DnsRecordType = record_type
                .parse()
                .map_err(|e: mailzone_records::record::UnknownRecordType| corrupt(e.to_string()))?;
            out.insert(LedgerEntry {
                record_type,
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
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(|e| self.database_error(e))?;
            for chunk in entries.chunks(LEDGER_ROWS_PER_STATEMENT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO published_records (zone, name, rtype, rdata, record_type, published_at) ",
                );
                insert.push_values(chunk, |mut row, entry| {
                    row.push_bind(zone.as_str().to_string())
                        .push_bind(entry.name.as_str().to_string())
                        .push_bind(entry.data.rtype())
                        .push_bind(zonefile::rdata_presentation(&entry.data))
                        .push_bind(entry.record_type.name())
                        .push_bind(now);
                });
                insert.push(" ON CONFLICT (zone, name, rtype, rdata) DO NOTHING");
                insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.database_error(e))?;
            }
            tx.commit().await.map_err(|e| self.database_error(e))
        })
    }

    /// Forgets records that were deleted (called after the UPDATE succeeded).
    pub async fn ledger_remove(&self, zone: &Name, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(|e| self.database_error(e))?;
            for record in records {
                sqlx::query(
                    "DELETE FROM published_records \
                     WHERE zone = $1 AND name = $2 AND rtype = $3 AND rdata = $4",
                )
                .bind(zone.as_str())
                .bind(record.name.as_str())
                .bind(record.data.rtype())
                .bind(zonefile::rdata_presentation(&record.data))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.database_error(e))?;
            }
            tx.commit().await.map_err(|e| self.database_error(e))
        })
    }

    /// The remembered state of every zone, keyed by (zone, DNS server): one query for a
    /// run over many zones.
    pub async fn zone_states(&self) -> Result<HashMap<(String, String), ZoneState>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT zone, dns_server, serial, desired_digest FROM zone_state")
                .fetch_all(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            let mut out = HashMap::with_capacity(rows.len());
            for row in rows {
                let key = (
                    row.text("zone").map_err(|e| self.database_error(e))?,
                    row.text("dns_server").map_err(|e| self.database_error(e))?,
                );
                out.insert(key, self.zone_state_from_row(&row)?);
            }
            Ok(out)
        })
    }

    /// The remembered states of the (zone, DNS server) pairs of a run: one query per pair
    /// for a run over a few zones (a service task), one query of every state for a run over
    /// many (a batch `apply`); either way only the pairs asked for are returned.
    pub async fn zone_states_of(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), ZoneState>, StoreError> {
        if keys.len() > FEW_ZONES {
            let wanted: HashSet<&(String, String)> = keys.iter().collect();
            let mut all = self.zone_states().await?;
            all.retain(|key, _| wanted.contains(key));
            return Ok(all);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (zone, dns_server) in keys {
            let row = with_pool!(self, pool => {
                sqlx::query(
                    "SELECT serial, desired_digest FROM zone_state \
                     WHERE zone = $1 AND dns_server = $2",
                )
                .bind(zone)
                .bind(dns_server)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.database_error(e))?
                .map(|row| self.zone_state_from_row(&row))
                .transpose()?
            });
            if let Some(state) = row {
                out.insert((zone.clone(), dns_server.clone()), state);
            }
        }
        Ok(out)
    }

    fn zone_state_from_row(&self, row: &impl StoreRow) -> Result<ZoneState, StoreError> {
        let serial = row.int("serial").map_err(|e| self.database_error(e))?;
        let desired_digest = row
            .text("desired_digest")
            .map_err(|e| self.database_error(e))?;
        Ok(ZoneState {
            serial: serial as u32,
            desired_digest,
        })
    }

    /// Records that `zone` on `dns_server` was in sync at `serial` with these desired records.
    pub async fn set_zone_state(
        &self,
        zone: &Name,
        dns_server: &str,
        state: &ZoneState,
        now: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO zone_state (zone, dns_server, serial, desired_digest, checked_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (zone, dns_server) DO UPDATE SET serial = excluded.serial, \
                 desired_digest = excluded.desired_digest, checked_at = excluded.checked_at",
            )
            .bind(zone.as_str())
            .bind(dns_server)
            .bind(i64::from(state.serial))
            .bind(&state.desired_digest)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            Ok(())
        })
    }
}
