//! Domains and DNS servers defined through the service's API, kept as their config-table
//! JSON. A DNS server's TSIG secret (`key`) is sealed in the stored JSON.

use crate::query::params;
use crate::{Store, StoreError};

/// The two tables of API-defined objects; same columns, so one statement text each.
#[derive(Clone, Copy)]
enum ApiTable {
    Domains,
    DnsServers,
}

impl ApiTable {
    fn select(self) -> &'static str {
        match self {
            ApiTable::Domains => "SELECT name, definition FROM api_domains ORDER BY name",
            ApiTable::DnsServers => "SELECT name, definition FROM api_dns_servers ORDER BY name",
        }
    }

    fn upsert(self) -> &'static str {
        match self {
            ApiTable::Domains => {
                "INSERT INTO api_domains (name, definition, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO UPDATE SET \
                 definition = excluded.definition, updated_at = excluded.updated_at"
            }
            ApiTable::DnsServers => {
                "INSERT INTO api_dns_servers (name, definition, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO UPDATE SET \
                 definition = excluded.definition, updated_at = excluded.updated_at"
            }
        }
    }

    fn delete(self) -> &'static str {
        match self {
            ApiTable::Domains => "DELETE FROM api_domains WHERE name = $1",
            ApiTable::DnsServers => "DELETE FROM api_dns_servers WHERE name = $1",
        }
    }
}

impl Store {
    /// Every API-defined domain: (name, definition JSON text), by name.
    pub async fn api_domains(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.api_objects(ApiTable::Domains).await
    }

    /// Creates or replaces an API-defined domain.
    pub async fn put_api_domain(
        &self,
        name: &str,
        definition: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.put_api_object(ApiTable::Domains, name, definition, now)
            .await
    }

    /// Removes an API-defined domain. `false` when there was none.
    pub async fn delete_api_domain(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_api_object(ApiTable::Domains, name).await
    }

    /// Every API-defined DNS server: (name, definition) with the TSIG secret opened.
    pub async fn api_dns_servers(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let rows = self.api_objects(ApiTable::DnsServers).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (name, text) in rows {
            let corrupt = |reason: String| StoreError::Corrupt {
                path: self.db_path.clone(),
                domain: format!("dnsServer {name}"),
                selector: "key".into(),
                reason,
            };
            let mut definition: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
            for field in sealed_fields(&mut definition) {
                if let Some(serde_json::Value::String(sealed)) = definition.get(&field).cloned() {
                    let open = self
                        .sealer
                        .open(&sealed, &format!("api_dns_servers/{name}/{field}"))
                        .map_err(corrupt)?;
                    definition[&field] = serde_json::Value::String(open.to_string());
                }
            }
            out.push((name, definition));
        }
        Ok(out)
    }

    /// Creates or replaces an API-defined DNS server, sealing each of `secret_fields`
    /// given as text (the TSIG or API `key`, a provider's token); which ones were sealed is
    /// kept beside them.
    pub async fn put_api_dns_server(
        &self,
        name: &str,
        definition: &serde_json::Value,
        secret_fields: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut stored = definition.clone();
        let mut sealed = Vec::new();
        for field in secret_fields {
            if let Some(serde_json::Value::String(secret)) = definition.get(field) {
                stored[field] = serde_json::Value::String(
                    self.sealer
                        .seal(secret, &format!("api_dns_servers/{name}/{field}")),
                );
                sealed.push(serde_json::Value::String(field.clone()));
            }
        }
        if let Some(object) = stored.as_object_mut() {
            object.insert(SEALED.into(), serde_json::Value::Array(sealed));
        }
        self.put_api_object(ApiTable::DnsServers, name, &stored.to_string(), now)
            .await
    }

    /// Removes an API-defined DNS server. `false` when there was none.
    pub async fn delete_api_dns_server(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_api_object(ApiTable::DnsServers, name).await
    }

    async fn api_objects(&self, table: ApiTable) -> Result<Vec<(String, String)>, StoreError> {
        self.db()
            .fetch_all(table.select(), params![], |row| {
                Ok((row.text("name")?, row.text("definition")?))
            })
            .await
    }

    async fn put_api_object(
        &self,
        table: ApiTable,
        name: &str,
        definition: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.db()
            .execute(table.upsert(), params![name, definition, now])
            .await?;
        Ok(())
    }

    async fn delete_api_object(&self, table: ApiTable, name: &str) -> Result<bool, StoreError> {
        let deleted = self.db().execute(table.delete(), params![name]).await?;
        Ok(deleted == 1)
    }
}

/// The stored definition's list of sealed fields.
const SEALED: &str = "$sealed";

/// Takes the list of sealed fields out of a stored definition; one stored before the list
/// existed had only `key` sealed.
fn sealed_fields(definition: &mut serde_json::Value) -> Vec<String> {
    match definition.as_object_mut().and_then(|o| o.remove(SEALED)) {
        Some(serde_json::Value::Array(fields)) => fields
            .into_iter()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect(),
        _ => vec!["key".to_string()],
    }
}
