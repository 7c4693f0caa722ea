//! What each notification channel of `mailzone serve` was last told about a domain's check
//! findings. Kept so that a restart does not alert again, and swapped compare-and-set so
//! that instances sharing one PostgreSQL database announce a change once.

use crate::{Store, StoreError, StoreRow, with_pool};

/// The findings a channel was last told about (JSON, in the caller's format) and when the
/// check that found them ran (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncedFindings {
    pub findings: String,
    pub checked_at: i64,
}

impl Store {
    /// What `channel` was last told about `domain`; `None` before its first check.
    pub async fn announced_findings(
        &self,
        domain: &str,
        channel: &str,
    ) -> Result<Option<AnnouncedFindings>, StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT findings, checked_at FROM announced_findings \
                 WHERE domain = $1 AND channel = $2",
            )
            .bind(domain)
            .bind(channel)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            row.map(|r| {
                Ok(AnnouncedFindings {
                    findings: r.text("findings")?,
                    checked_at: r.int("checked_at")?,
                })
            })
            .transpose()
            .map_err(|e: sqlx::Error| self.database_error(e))
        })
    }

    /// Replaces what `channel` was told about `domain` by `new` (`None`: forgets it), only
    /// if it still is `expected` (`None`: nothing yet). False when it no longer is: another
    /// instance announced the change first.
    pub async fn swap_announced_findings(
        &self,
        domain: &str,
        channel: &str,
        expected: Option<&str>,
        new: Option<&str>,
        checked_at: i64,
    ) -> Result<bool, StoreError> {
        let rows = with_pool!(self, pool => {
            let query = match (expected, new) {
                (None, None) => return Ok(true),
                (None, Some(new)) => sqlx::query(
                    "INSERT INTO announced_findings (domain, channel, findings, checked_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (domain, channel) DO NOTHING",
                )
                .bind(domain)
                .bind(channel)
                .bind(new)
                .bind(checked_at),
                (Some(expected), Some(new)) => sqlx::query(
                    "UPDATE announced_findings SET findings = $3, checked_at = $4 \
                     WHERE domain = $1 AND channel = $2 AND findings = $5",
                )
                .bind(domain)
                .bind(channel)
                .bind(new)
                .bind(checked_at)
                .bind(expected),
                (Some(expected), None) => sqlx::query(
                    "DELETE FROM announced_findings \
                     WHERE domain = $1 AND channel = $2 AND findings = $3",
                )
                .bind(domain)
                .bind(channel)
                .bind(expected),
            };
            query
                .execute(pool)
                .await
                .map_err(|e| self.database_error(e))?
                .rows_affected()
        });
        Ok(rows == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn swaps_only_from_the_expected_findings_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        let (d, c) = ("example.org", "webhook");
        assert_eq!(store.announced_findings(d, c).await.unwrap(), None);
        assert!(
            store
                .swap_announced_findings(d, c, None, Some("[1]"), 10)
                .await
                .unwrap()
        );
        // A second "first" announcement (another instance) loses.
        assert!(
            !store
                .swap_announced_findings(d, c, None, Some("[2]"), 11)
                .await
                .unwrap()
        );
        assert!(
            !store
                .swap_announced_findings(d, c, Some("[0]"), Some("[2]"), 11)
                .await
                .unwrap()
        );
        assert!(
            store
                .swap_announced_findings(d, c, Some("[1]"), Some("[2]"), 12)
                .await
                .unwrap()
        );
        // Channels and domains are separate.
        assert_eq!(store.announced_findings(d, "smtp").await.unwrap(), None);
        assert_eq!(
            store.announced_findings("example.net", c).await.unwrap(),
            None
        );
        store.close().await;

        let store = Store::open_sqlite(dir.path()).await.unwrap();
        assert_eq!(
            store.announced_findings(d, c).await.unwrap(),
            Some(AnnouncedFindings {
                findings: "[2]".into(),
                checked_at: 12
            })
        );
        assert!(
            !store
                .swap_announced_findings(d, c, Some("[1]"), None, 13)
                .await
                .unwrap()
        );
        assert!(
            store
                .swap_announced_findings(d, c, Some("[2]"), None, 13)
                .await
                .unwrap()
        );
        assert_eq!(store.announced_findings(d, c).await.unwrap(), None);
    }
}
