//! The web UI's sign-in state: the local admin password (an Argon2id PHC string made by the
//! server; the store never sees the password) and the signed-in sessions, each known by the
//! SHA-256 of its cookie value so that a copy of the database signs nobody in.

use crate::query::params;
use crate::{Store, StoreError};

/// A signed-in session: who signed in (`admin`, or [`token_subject`] of the API token used),
/// what the pages call them, and when the session was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub subject: String,
    pub label: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// The session subject of a sign-in with the API token `token_id`: revoking the token ends
/// the sessions of this subject.
pub fn token_subject(token_id: &str) -> String {
    format!("token:{token_id}")
}

impl Store {
    /// The id and name of the API token with this hash, if it exists.
    pub async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<crate::ApiToken>, StoreError> {
        self.db()
            .fetch_optional(
                "SELECT id, name, created_at FROM api_tokens WHERE token_hash = $1",
                params![token_hash],
                |row| {
                    Ok(crate::ApiToken {
                        id: row.text("id")?,
                        name: row.text("name")?,
                        created_at: row.int("created_at")?,
                    })
                },
            )
            .await
    }

    /// Sets (or replaces) the admin password's hash.
    pub async fn set_admin_password_hash(&self, hash: &str, now: i64) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO admin_password (id, password_hash, updated_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET password_hash = excluded.password_hash, \
                 updated_at = excluded.updated_at",
                params![hash, now],
            )
            .await?;
        Ok(())
    }

    /// The admin password's hash; `None` until `mailzone admin set-password` set one.
    pub async fn admin_password_hash(&self) -> Result<Option<String>, StoreError> {
        self.db()
            .fetch_optional(
                "SELECT password_hash FROM admin_password WHERE id = 1",
                params![],
                |row| Ok(row.text("password_hash")?),
            )
            .await
    }

    /// Records a new session under the hash of its cookie value.
    pub async fn add_web_session(
        &self,
        id_hash: &str,
        subject: &str,
        label: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO web_sessions (id_hash, subject, label, created_at, last_seen) \
                 VALUES ($1, $2, $3, $4, $4)",
                params![id_hash, subject, label, now],
            )
            .await?;
        Ok(())
    }

    /// The session with this hash if it was used at or after `idle_since`; a session idle
    /// for longer is deleted and `None` returned. A found session's `last_seen` becomes
    /// `now` (written at most once a minute: a page's requests do not each write).
    pub async fn touch_web_session(
        &self,
        id_hash: &str,
        idle_since: i64,
        now: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        let found = self
            .db()
            .fetch_optional(
                "SELECT subject, label, created_at, last_seen FROM web_sessions \
                 WHERE id_hash = $1",
                params![id_hash],
                |row| {
                    Ok(WebSession {
                        subject: row.text("subject")?,
                        label: row.text("label")?,
                        created_at: row.int("created_at")?,
                        last_seen: row.int("last_seen")?,
                    })
                },
            )
            .await?;
        let Some(session) = found else {
            return Ok(None);
        };
        if session.last_seen < idle_since {
            self.delete_web_session(id_hash).await?;
            return Ok(None);
        }
        if now - session.last_seen >= 60 {
            self.db()
                .execute(
                    "UPDATE web_sessions SET last_seen = $2 WHERE id_hash = $1",
                    params![id_hash, now],
                )
                .await?;
        }
        Ok(Some(session))
    }

    /// Ends a session (sign-out).
    pub async fn delete_web_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.db()
            .execute(
                "DELETE FROM web_sessions WHERE id_hash = $1",
                params![id_hash],
            )
            .await?;
        Ok(())
    }

    /// Forgets the sessions idle since before `idle_since`; how many.
    pub async fn delete_idle_web_sessions(&self, idle_since: i64) -> Result<u64, StoreError> {
        self.db()
            .execute(
                "DELETE FROM web_sessions WHERE last_seen < $1",
                params![idle_since],
            )
            .await
    }

    /// Ends every session of `subject` (a revoked token's, or the admin's after a new
    /// password).
    pub async fn delete_web_sessions_of(&self, subject: &str) -> Result<u64, StoreError> {
        self.db()
            .execute(
                "DELETE FROM web_sessions WHERE subject = $1",
                params![subject],
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_expire_when_idle_and_end_on_sign_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        assert_eq!(store.admin_password_hash().await.unwrap(), None);
        store
            .set_admin_password_hash("$argon2id$a", 10)
            .await
            .unwrap();
        store
            .set_admin_password_hash("$argon2id$b", 20)
            .await
            .unwrap();
        assert_eq!(
            store.admin_password_hash().await.unwrap().as_deref(),
            Some("$argon2id$b")
        );

        store
            .add_web_session("h1", "admin", "admin", 1000)
            .await
            .unwrap();
        store
            .add_web_session("h2", "token:ci", "token:ci", 1000)
            .await
            .unwrap();
        let seen = store.touch_web_session("h1", 900, 1100).await.unwrap();
        assert_eq!(seen.map(|s| s.subject).as_deref(), Some("admin"));
        // Used at 1100: still there when idle since 1050 counts as expired, gone at 1200.
        assert!(
            store
                .touch_web_session("h1", 1050, 1150)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .touch_web_session("h1", 1101, 1300)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .touch_web_session("h1", 0, 1300)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .touch_web_session("nope", 0, 1300)
                .await
                .unwrap()
                .is_none()
        );

        assert_eq!(store.delete_web_sessions_of("token:ci").await.unwrap(), 1);
        // Revoking a token ends the sessions opened with it.
        let id = store.add_api_token("ci", "hash-of-ci", 2000).await.unwrap();
        let subject = token_subject(&id);
        store
            .add_web_session("h5", &subject, "token ci", 2000)
            .await
            .unwrap();
        let token = store
            .api_token_by_hash("hash-of-ci")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.id.as_str(), token.name.as_str()),
            (id.as_str(), "ci")
        );
        assert!(store.revoke_api_token(&id).await.unwrap());
        assert!(
            store
                .touch_web_session("h5", 0, 2000)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .api_token_by_hash("hash-of-ci")
                .await
                .unwrap()
                .is_none()
        );
        store
            .add_web_session("h3", "admin", "admin", 2000)
            .await
            .unwrap();
        store.delete_web_session("h3").await.unwrap();
        assert!(
            store
                .touch_web_session("h3", 0, 2000)
                .await
                .unwrap()
                .is_none()
        );
        store
            .add_web_session("h4", "admin", "admin", 2000)
            .await
            .unwrap();
        assert_eq!(store.delete_idle_web_sessions(2001).await.unwrap(), 1);
    }
}
