//! The publication ledger and the per-zone sync state (DESIGN.md §5).

use std::collections::{BTreeSet, HashMap};

use mailzone_records::diff::LedgerEntry;
use mailzone_records::{DnsRecordType, Name, Record, zonefile};
use sqlx::Row;

use crate::{Store, StoreError};

/// Rows per INSERT statement: 6 parameters each stays far below SQLite's limit of 32,766
/// (and the 999 of builds before 3.32).
const LEDGER_ROWS_PER_STATEMENT: usize = 150;

/// What mailzone remembers of a zone after a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneState {
    pub serial: u32,
    pub desired_digest: String,
}

impl Store {
    /// Every record mailzone published in `zone`.
    pub async fn ledger(&self, zone: &Name) -> Result<BTreeSet<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, rtype, rdata, record_type FROM published_records WHERE zone = ?",
        )
        .bind(zone.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        let mut out = BTreeSet::new();
        for row in rows {
            let name: String = row.try_get("name").map_err(|e| self.database_error(e))?;
            let rtype: String = row.try_get("rtype").map_err(|e| self.database_error(e))?;
            let rdata: String = row.try_get("rdata").map_err(|e| self.database_error(e))?;
            let record_type: String = row
                .try_get("record_type")
                .map_err(|e| self.database_error(e))?;
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
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.database_error(e))?;
        for chunk in entries.chunks(LEDGER_ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
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
    }

    /// Forgets records that were deleted (called after the UPDATE succeeded).
    pub async fn ledger_remove(&self, zone: &Name, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.database_error(e))?;
        for record in records {
            sqlx::query("DELETE FROM published_records WHERE zone = ? AND name = ? AND rtype = ? AND rdata = ?")
                .bind(zone.as_str())
                .bind(record.name.as_str())
                .bind(record.data.rtype())
                .bind(zonefile::rdata_presentation(&record.data))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.database_error(e))?;
        }
        tx.commit().await.map_err(|e| self.database_error(e))
    }

    /// The remembered state of every zone, keyed by (zone, DNS server): one query for a
    /// run over many zones.
    pub async fn zone_states(&self) -> Result<HashMap<(String, String), ZoneState>, StoreError> {
        let rows = sqlx::query("SELECT zone, dns_server, serial, desired_digest FROM zone_state")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.database_error(e))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let get = |column: &str| -> Result<String, StoreError> {
                row.try_get(column).map_err(|e| self.database_error(e))
            };
            let serial: i64 = row.try_get("serial").map_err(|e| self.database_error(e))?;
            out.insert(
                (get("zone")?, get("dns_server")?),
                ZoneState {
                    serial: serial as u32,
                    desired_digest: get("desired_digest")?,
                },
            );
        }
        Ok(out)
    }

    /// The remembered state of a zone on a DNS server.
    pub async fn zone_state(
        &self,
        zone: &Name,
        dns_server: &str,
    ) -> Result<Option<ZoneState>, StoreError> {
        let row = sqlx::query(
            "SELECT serial, desired_digest FROM zone_state WHERE zone = ? AND dns_server = ?",
        )
        .bind(zone.as_str())
        .bind(dns_server)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        row.map(|row| {
            let serial: i64 = row.try_get("serial").map_err(|e| self.database_error(e))?;
            let desired_digest: String = row
                .try_get("desired_digest")
                .map_err(|e| self.database_error(e))?;
            Ok(ZoneState {
                serial: serial as u32,
                desired_digest,
            })
        })
        .transpose()
    }

    /// Records that `zone` on `dns_server` was in sync at `serial` with these desired records.
    pub async fn set_zone_state(
        &self,
        zone: &Name,
        dns_server: &str,
        state: &ZoneState,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO zone_state (zone, dns_server, serial, desired_digest, checked_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (zone, dns_server) DO UPDATE SET serial = excluded.serial, \
             desired_digest = excluded.desired_digest, checked_at = excluded.checked_at",
        )
        .bind(zone.as_str())
        .bind(dns_server)
        .bind(i64::from(state.serial))
        .bind(&state.desired_digest)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        Ok(())
    }

    /// Forgets the sync state of a zone (after a failed or partial apply).
    pub async fn clear_zone_state(&self, zone: &Name, dns_server: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM zone_state WHERE zone = ? AND dns_server = ?")
            .bind(zone.as_str())
            .bind(dns_server)
            .execute(&self.pool)
            .await
            .map_err(|e| self.database_error(e))?;
        Ok(())
    }
}
