//! Domains defined through the service's API, kept as their config-table JSON.

use crate::{Store, StoreError, StoreRow, with_pool};

impl Store {
    /// Every API-defined domain: (name, definition JSON text), by name.
    pub async fn api_domains(&self) -> Result<Vec<(String, String)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT name, definition FROM api_domains ORDER BY name")
                .fetch_all(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            rows.iter()
                .map(|r| Ok((r.text("name")?, r.text("definition")?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(|e| self.database_error(e))
        })
    }

    /// Creates or replaces an API-defined domain. `true` when it was new.
    pub async fn put_api_domain(
        &self,
        name: &str,
        definition: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let updated = sqlx::query(
                "UPDATE api_domains SET definition = $1, updated_at = $2 WHERE name = $3",
            )
            .bind(definition)
            .bind(now)
            .bind(name)
            .execute(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            if updated.rows_affected() == 1 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO api_domains (name, definition, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO UPDATE SET \
                 definition = excluded.definition, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(definition)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            Ok(true)
        })
    }

    /// Removes an API-defined domain. `false` when there was none.
    pub async fn delete_api_domain(&self, name: &str) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM api_domains WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            Ok(done.rows_affected() == 1)
        })
    }
}
