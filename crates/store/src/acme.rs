//! ACME accounts (RFC 8555 §7.3), one per directory: the client's credentials (account URL
//! and private key) as JSON, sealed under `mailzone.key` like every other secret. And the
//! DNS-01 challenge records (§8.4) that may be published, recorded before they are added
//! and forgotten once removed, so that a renewal killed in between is cleaned up by the
//! next one.

use zeroize::Zeroizing;

use crate::query::params;
use crate::{Store, StoreError};

/// A challenge TXT record that may be published: `name` TXT `value` in `zone`, through
/// the DNS server named `dns_server`. The value is no secret: the CA reads it from DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeChallenge {
    pub zone: String,
    pub dns_server: String,
    pub name: String,
    pub value: String,
}

impl Store {
    /// The account credentials for `directory`, opened, if an account was made there.
    pub async fn acme_account(
        &self,
        directory: &str,
    ) -> Result<Option<Zeroizing<String>>, StoreError> {
        let sealed = self
            .db()
            .fetch_optional(
                "SELECT credentials FROM acme_accounts WHERE directory = $1",
                params![directory],
                |row| Ok(row.text("credentials")?),
            )
            .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let open = self
            .sealer
            .open(&sealed, &seal_context(directory))
            .map_err(|reason| StoreError::Corrupt {
                path: self.db_path.clone(),
                domain: format!("ACME account at {directory}"),
                selector: "credentials".into(),
                reason,
            })?;
        Ok(Some(open))
    }

    /// Remembers the account made at `directory` (the first one stays if two instances
    /// raced: both accounts are valid, one is kept).
    pub async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let sealed = self.sealer.seal(credentials, &seal_context(directory));
        self.db()
            .execute(
                "INSERT INTO acme_accounts (directory, credentials, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (directory) DO NOTHING",
                params![directory, &sealed, now],
            )
            .await?;
        Ok(())
    }
}

impl Store {
    /// Records challenge records about to be published (a row already there stays).
    pub async fn add_acme_challenges(
        &self,
        challenges: &[AcmeChallenge],
        now: i64,
    ) -> Result<(), StoreError> {
        for c in challenges {
            self.db()
                .execute(
                    "INSERT INTO acme_challenges (zone, dns_server, name, value, created_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (zone, dns_server, name, value) DO NOTHING",
                    params![&c.zone, &c.dns_server, &c.name, &c.value, now],
                )
                .await?;
        }
        Ok(())
    }

    /// Every challenge record that may still be published, oldest first.
    pub async fn acme_challenges(&self) -> Result<Vec<AcmeChallenge>, StoreError> {
        self.db()
            .fetch_all(
                "SELECT zone, dns_server, name, value FROM acme_challenges \
                 ORDER BY created_at, zone, name, value",
                params![],
                |row| {
                    Ok(AcmeChallenge {
                        zone: row.text("zone")?,
                        dns_server: row.text("dns_server")?,
                        name: row.text("name")?,
                        value: row.text("value")?,
                    })
                },
            )
            .await
    }

    /// Forgets challenge records once they are removed from DNS.
    pub async fn remove_acme_challenges(
        &self,
        challenges: &[AcmeChallenge],
    ) -> Result<(), StoreError> {
        for c in challenges {
            self.db()
                .execute(
                    "DELETE FROM acme_challenges \
                     WHERE zone = $1 AND dns_server = $2 AND name = $3 AND value = $4",
                    params![&c.zone, &c.dns_server, &c.name, &c.value],
                )
                .await?;
        }
        Ok(())
    }
}

/// What sealed credentials are bound to: their row.
fn seal_context(directory: &str) -> String {
    format!("acme_accounts/{directory}/credentials")
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn credentials_are_sealed_at_rest_and_opened_on_read() {
        let (_dir, store) = crate::temp_store().await;
        let url = "https://acme.test/dir";
        assert!(store.acme_account(url).await.unwrap().is_none());
        store
            .put_acme_account(url, r#"{"id":"x","key_pkcs8":"SECRET"}"#, 1)
            .await
            .unwrap();
        let read = store.acme_account(url).await.unwrap().unwrap();
        assert!(read.contains("SECRET"));
        let crate::Pool::Sqlite(pool) = &store.pool else {
            unreachable!()
        };
        let raw: String = sqlx::query_scalar("SELECT credentials FROM acme_accounts")
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(
            raw.starts_with("sealed:") && !raw.contains("SECRET"),
            "{raw}"
        );
    }
}
