//! The DKIM keys mailzone generates (`dkim_keys`): selector, algorithm, private key sealed
//! with `mailzone.key`, lifecycle stage and when it next changes.

use std::fmt;

use mailzone_records::{DkimAlgorithm, DkimStage, Name};
use zeroize::Zeroizing;

use crate::query::{RowError, params};
use crate::{Store, StoreError, StoreRow, check_canonical};

/// A `SELECT` of every `dkim_keys` column followed by `$rest`, as one `&'static str` so the
/// SQL is a literal (no runtime string building near a query).
macro_rules! select_dkim_keys {
    ($rest:literal) => {
        concat!(
            "SELECT domain, selector, algorithm, private_key_pem, stage, created_at, \
             next_transition FROM dkim_keys ",
            $rest
        )
    };
}

/// One DKIM key as the store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDkimKey {
    /// The mail domain: A-label, lowercase, no trailing dot.
    pub domain: String,
    /// The selector (the label(s) before `._domainkey.`), lowercase.
    pub selector: String,
    /// The signing algorithm.
    pub algorithm: DkimAlgorithm,
    /// The private key, PKCS#8 PEM. Secret: wiped from memory on drop, never printed.
    pub private_key_pem: Zeroizing<String>,
    /// Where the key is in its lifecycle.
    pub stage: DkimStage,
    /// When the key was created, unix seconds.
    pub created_at: i64,
    /// When the key moves to its next stage, unix seconds; `None` if it has no next stage.
    pub next_transition: Option<i64>,
}

impl fmt::Debug for StoredDkimKey {
    /// Prints everything but the private key, so keys can appear in logs and test output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredDkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_key_pem", &format_args!("<redacted>"))
            .field("stage", &self.stage)
            .field("created_at", &self.created_at)
            .field("next_transition", &self.next_transition)
            .finish()
    }
}

impl Store {
    /// All stored DKIM keys of `domain`, oldest first; keys created in the same second are
    /// ordered by selector.
    pub async fn dkim_keys(&self, domain: &str) -> Result<Vec<StoredDkimKey>, StoreError> {
        check_canonical("domain", domain, Name::host)?;
        self.db()
            .fetch_all(
                select_dkim_keys!("WHERE domain = $1 ORDER BY created_at, selector"),
                params![domain],
                |row| self.key_from_row(row),
            )
            .await
    }

    /// Every stored key's (domain, selector, algorithm, stage, created_at), without the
    /// private keys: one light query telling which domains' keys changed since a cached
    /// plan (the web UI's domain list).
    pub async fn dkim_key_summaries(
        &self,
    ) -> Result<Vec<(String, String, String, String, i64)>, StoreError> {
        self.db()
            .fetch_all(
                "SELECT domain, selector, algorithm, stage, created_at FROM dkim_keys",
                params![],
                |row| {
                    Ok((
                        row.text("domain")?,
                        row.text("selector")?,
                        row.text("algorithm")?,
                        row.text("stage")?,
                        row.int("created_at")?,
                    ))
                },
            )
            .await
    }

    /// Inserts the key unless a key with the same (domain, selector) exists; returns the key
    /// that is stored afterwards (the existing one if there was one), so that two processes
    /// racing to create a key agree on one.
    pub async fn insert_dkim_key_if_absent(
        &self,
        key: &StoredDkimKey,
    ) -> Result<StoredDkimKey, StoreError> {
        check_canonical("domain", &key.domain, Name::host)?;
        // Selectors may contain underscores in the wild, hence the owner-name rules.
        check_canonical("selector", &key.selector, Name::owner)?;

        // `BEGIN IMMEDIATE` takes SQLite's write lock before the INSERT, so racing writers
        // queue on the busy timeout instead of failing, and the SELECT reads exactly the
        // row that won (ours, or the one that was there first). PostgreSQL's ON CONFLICT
        // waits for a concurrent inserter of the same key by itself.
        let sealed = self.sealer.seal(
            &key.private_key_pem,
            &seal_context(&key.domain, &key.selector),
        );
        let mut tx = self.begin_immediate().await?;
        tx.db()
            .execute(
                "INSERT INTO dkim_keys \
                 (domain, selector, algorithm, private_key_pem, stage, created_at, next_transition) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (domain, selector) DO NOTHING",
                params![
                    key.domain.as_str(),
                    key.selector.as_str(),
                    key.algorithm.as_str(),
                    sealed.as_str(),
                    key.stage.as_str(),
                    key.created_at,
                    key.next_transition
                ],
            )
            .await?;
        let stored = tx
            .db()
            .fetch_one(
                select_dkim_keys!("WHERE domain = $1 AND selector = $2"),
                params![key.domain.as_str(), key.selector.as_str()],
                |row| self.key_from_row(row),
            )
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Moves a key to `stage`, with the time of its next move (`None`: none planned).
    /// `false` when there is no such key.
    pub async fn set_dkim_stage(
        &self,
        domain: &str,
        selector: &str,
        stage: DkimStage,
        next_transition: Option<i64>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .db()
            .execute(
                "UPDATE dkim_keys SET stage = $1, next_transition = $2 \
                 WHERE domain = $3 AND selector = $4",
                params![stage.as_str(), next_transition, domain, selector],
            )
            .await?;
        Ok(changed == 1)
    }

    /// Deletes a key (its record must already be gone from DNS).
    pub async fn delete_dkim_key(&self, domain: &str, selector: &str) -> Result<bool, StoreError> {
        let deleted = self
            .db()
            .execute(
                "DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2",
                params![domain, selector],
            )
            .await?;
        Ok(deleted == 1)
    }

    /// Seals the private keys stored in plaintext by versions before sealing (once, at open).
    pub(crate) async fn seal_plaintext_keys(&self) -> Result<(), StoreError> {
        let plaintext = self
            .db()
            .fetch_all(
                "SELECT domain, selector, private_key_pem FROM dkim_keys \
                 WHERE private_key_pem NOT LIKE 'sealed:%'",
                params![],
                |row| {
                    Ok((
                        row.text("domain")?,
                        row.text("selector")?,
                        Zeroizing::new(row.text("private_key_pem")?),
                    ))
                },
            )
            .await?;
        for (domain, selector, plain) in plaintext {
            let sealed = self.sealer.seal(&plain, &seal_context(&domain, &selector));
            self.db()
                .execute(
                    "UPDATE dkim_keys SET private_key_pem = $1 WHERE domain = $2 AND selector = $3",
                    params![sealed, &domain, &selector],
                )
                .await?;
        }
        Ok(())
    }

    /// Decodes one `dkim_keys` row; a value this version does not know is `Corrupt`, not a
    /// panic, so one bad row cannot take the whole program down.
    fn key_from_row(&self, row: &dyn StoreRow) -> Result<StoredDkimKey, RowError> {
        let domain = row.text("domain")?;
        let selector = row.text("selector")?;
        let corrupt = |reason: String| StoreError::Corrupt {
            path: self.db_path.clone(),
            domain: domain.clone(),
            selector: selector.clone(),
            reason,
        };
        // sqlx decode errors name the column and the expected type, never the value.
        let column = |name: &str, e: sqlx::Error| corrupt(format!("column {name}: {e}"));

        let algorithm_text = row.text("algorithm").map_err(|e| column("algorithm", e))?;
        // `parse` also accepts the short config spellings; the database holds only the
        // canonical ones, so anything else is damage.
        let algorithm = DkimAlgorithm::parse(&algorithm_text)
            .filter(|a| a.as_str() == algorithm_text)
            .ok_or_else(|| corrupt(format!("unknown algorithm `{algorithm_text}`")))?;
        let stage_text = row.text("stage").map_err(|e| column("stage", e))?;
        let stage = DkimStage::parse(&stage_text)
            .ok_or_else(|| corrupt(format!("unknown stage `{stage_text}`")))?;
        let stored = Zeroizing::new(
            row.text("private_key_pem")
                .map_err(|e| column("private_key_pem", e))?,
        );
        let private_key_pem = self
            .sealer
            .open(&stored, &seal_context(&domain, &selector))
            .map_err(|reason| corrupt(format!("the private key: {reason}")))?;
        let created_at = row.int("created_at").map_err(|e| column("created_at", e))?;
        let next_transition = row
            .opt_int("next_transition")
            .map_err(|e| column("next_transition", e))?;

        Ok(StoredDkimKey {
            domain,
            selector,
            algorithm,
            private_key_pem,
            stage,
            created_at,
            next_transition,
        })
    }
}

/// What a sealed private key is bound to: its row.
fn seal_context(domain: &str, selector: &str) -> String {
    format!("dkim_keys/{domain}/{selector}")
}
