//! What each notification channel of `mailzone serve` was last told about a domain's check
//! findings. Kept so that a restart does not alert again, and swapped compare-and-set so
//! that instances sharing one PostgreSQL database announce a change once.

use crate::query::{Param, params};
use crate::{Store, StoreError};

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
        self.db()
            .fetch_optional(
                "SELECT findings, checked_at FROM announced_findings \
                 WHERE domain = $1 AND channel = $2",
                params![domain, channel],
                |row| {
                    Ok(AnnouncedFindings {
                        findings: row.text("findings")?,
                        checked_at: row.int("checked_at")?,
                    })
                },
            )
            .await
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
        let (sql, params): (&str, &[Param]) = match (expected, new) {
            (None, None) => return Ok(true),
            (None, Some(new)) => (
                "INSERT INTO announced_findings (domain, channel, findings, checked_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (domain, channel) DO NOTHING",
                params![domain, channel, new, checked_at],
            ),
            (Some(expected), Some(new)) => (
                "UPDATE announced_findings SET findings = $3, checked_at = $4 \
                 WHERE domain = $1 AND channel = $2 AND findings = $5",
                params![domain, channel, new, checked_at, expected],
            ),
            (Some(expected), None) => (
                "DELETE FROM announced_findings \
                 WHERE domain = $1 AND channel = $2 AND findings = $3",
                params![domain, channel, expected],
            ),
        };
        let rows = self.db().execute(sql, params).await?;
        Ok(rows == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn swaps_only_from_the_expected_findings_and_survives_a_reopen() {
        let (dir, store) = crate::temp_store().await;
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
