//! TLSA rollover state per host: what [`mailzone_records::tlsa::rollover`] decided, written
//! by the apply that published it (never by a read) and kept between runs so a replaced
//! key is withdrawn at its time.

use mailzone_records::tlsa::rollover::{TlsaEntry, TlsaRole};
use mailzone_records::zonefile;

use crate::query::params;
use crate::{Store, StoreError};

impl Store {
    /// The TLSA entries of `host` (absolute name, no trailing dot), in no particular order.
    pub async fn tlsa_state(&self, host: &str) -> Result<Vec<TlsaEntry>, StoreError> {
        let rows = self
            .db()
            .fetch_all(
                "SELECT usage, digest, role, since, retire_at FROM tlsa_state WHERE host = $1",
                params![host],
                |row| {
                    Ok((
                        row.int("usage")?,
                        row.text("digest")?,
                        row.text("role")?,
                        row.int("since")?,
                        row.opt_int("retire_at")?,
                    ))
                },
            )
            .await?;
        rows.into_iter()
            .map(|(usage, digest, role, since, retire_at)| {
                let corrupt = |reason: String| StoreError::CorruptLedger {
                    path: self.db_path.clone(),
                    zone: "tlsa_state".into(),
                    name: host.to_string(),
                    reason,
                };
                Ok(TlsaEntry {
                    usage: u8::try_from(usage).map_err(|_| corrupt(format!("usage {usage}")))?,
                    digest: zonefile::unhex(&digest).map_err(corrupt)?,
                    role: TlsaRole::parse(&role).ok_or_else(|| corrupt(format!("role {role}")))?,
                    since,
                    retire_at,
                })
            })
            .collect()
    }

    /// Replaces the TLSA entries of `host` in one transaction.
    pub async fn replace_tlsa_state(
        &self,
        host: &str,
        entries: &[TlsaEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.db()
            .execute("DELETE FROM tlsa_state WHERE host = $1", params![host])
            .await?;
        for entry in entries {
            tx.db()
                .execute(
                    "INSERT INTO tlsa_state (host, usage, digest, role, since, retire_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    params![
                        host,
                        i64::from(entry.usage),
                        zonefile::hex(&entry.digest),
                        entry.role.as_str(),
                        entry.since,
                        entry.retire_at
                    ],
                )
                .await?;
        }
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_round_trips_and_is_replaced_whole() {
        let (_dir, store) = crate::temp_store().await;
        let entries = vec![
            TlsaEntry {
                usage: 3,
                digest: vec![0xAB; 32],
                role: TlsaRole::Current,
                since: 10,
                retire_at: None,
            },
            TlsaEntry {
                usage: 3,
                digest: vec![0x01; 32],
                role: TlsaRole::Retiring,
                since: 1,
                retire_at: Some(99),
            },
        ];
        store
            .replace_tlsa_state("mail.example.org", &entries)
            .await
            .unwrap();
        let mut read = store.tlsa_state("mail.example.org").await.unwrap();
        read.sort_by_key(|e| e.since);
        assert_eq!(read, vec![entries[1].clone(), entries[0].clone()]);
        assert!(store.tlsa_state("other.example").await.unwrap().is_empty());
        store
            .replace_tlsa_state("mail.example.org", &entries[..1])
            .await
            .unwrap();
        assert_eq!(
            store.tlsa_state("mail.example.org").await.unwrap(),
            entries[..1]
        );
    }
}
