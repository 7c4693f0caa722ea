//! The service API's use case for its own objects: a change to a domain or DNS server
//! defined through the API is validated together with the config file and the other API
//! objects, then stored (secrets sealed), and the new config is handed back for the
//! service to swap in. Nothing is stored when the result would not load.

use std::path::Path;

use mailzone_store::Store;
use serde_json::Value;

use crate::load::{ApiObject, ApiObjects, LoadedConfig, load_config_with};
use crate::{EngineError, clock};

/// Which kind of API object a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiObjectKind {
    Domain,
    DnsServer,
}

/// One change: `Some(definition)` sets the object's config table (as JSON with the config
/// file's camelCase keys), `None` removes the object.
#[derive(Debug, Clone, Copy)]
pub struct ApiChange<'a> {
    pub kind: ApiObjectKind,
    pub name: &'a str,
    pub definition: Option<&'a Value>,
}

/// The domains and DNS servers the API defined, as stored.
pub async fn stored_api_objects(store: &Store) -> Result<ApiObjects, EngineError> {
    stored_api_objects_but(store, None).await
}

/// [`stored_api_objects`] without the object `left_out` (kind, name): a change replaces or
/// removes it unread, so a stored definition that no longer parses can still be mended.
async fn stored_api_objects_but(
    store: &Store,
    left_out: Option<(ApiObjectKind, &str)>,
) -> Result<ApiObjects, EngineError> {
    let is_left_out = |kind: ApiObjectKind, name: &str| left_out == Some((kind, name));
    let mut api = ApiObjects::default();
    for (name, definition) in store.api_domains().await? {
        if is_left_out(ApiObjectKind::Domain, &name) {
            continue;
        }
        let definition = serde_json::from_str(&definition).map_err(|e| {
            EngineError::Usage(format!(
                "domain {name} (defined through the API) is unreadable in the database: {e}"
            ))
        })?;
        api.domains.push(ApiObject { name, definition });
    }
    for (name, definition) in store.api_dns_servers().await? {
        if is_left_out(ApiObjectKind::DnsServer, &name) {
            continue;
        }
        api.dns_servers.push(ApiObject { name, definition });
    }
    Ok(api)
}

impl ApiObjects {
    /// These objects with `change` made: the named object replaced, added or removed.
    pub fn with_change(mut self, change: ApiChange<'_>) -> ApiObjects {
        let objects = match change.kind {
            ApiObjectKind::Domain => &mut self.domains,
            ApiObjectKind::DnsServer => &mut self.dns_servers,
        };
        objects.retain(|o| o.name != change.name);
        if let Some(definition) = change.definition {
            objects.push(ApiObject {
                name: change.name.to_string(),
                definition: definition.clone(),
            });
        }
        self
    }
}

/// The fields of a DNS server definition that hold secrets: the TSIG or API `key`, and
/// the secret settings of a `dns-update` provider. They are sealed at rest and never
/// shown back.
pub fn secret_fields(definition: &Value) -> Vec<String> {
    let mut fields = vec!["key".to_string()];
    if let Some(known) = definition
        .get("kind")
        .and_then(Value::as_str)
        .and_then(|k| mailzone_records::config::dns_update_provider(&k.to_ascii_lowercase()))
    {
        fields.extend(
            known
                .settings
                .iter()
                .filter(|s| s.secret)
                .map(|s| s.key.to_string()),
        );
    }
    fields
}

/// Validates the config file with `change` made to the stored API objects, stores the
/// change (a DNS server's secrets sealed) and returns the new config. A config that does
/// not load is a [`EngineError::Usage`] naming the mistake, and nothing is stored.
pub async fn apply_api_change(
    config_path: &Path,
    store: &Store,
    change: ApiChange<'_>,
) -> Result<LoadedConfig, EngineError> {
    // A secret of the wrong JSON type would be quoted back by the type error.
    if let Some(definition) = change.definition
        && let Some(field) = secret_fields(definition)
            .into_iter()
            .find(|f| definition.get(f).is_some_and(|v| !v.is_string()))
    {
        return Err(EngineError::Usage(format!(
            "{field}: a secret must be text (the value is not shown)"
        )));
    }
    let api = stored_api_objects_but(store, Some((change.kind, change.name)))
        .await?
        .with_change(change);
    let loaded =
        load_config_with(config_path, &api).map_err(|e| EngineError::Usage(e.to_string()))?;
    store_change(store, change).await?;
    Ok(loaded)
}

async fn store_change(store: &Store, change: ApiChange<'_>) -> Result<(), EngineError> {
    let now = clock::unix_now();
    let name = change.name;
    match (change.kind, change.definition) {
        (ApiObjectKind::Domain, Some(definition)) => {
            store
                .put_api_domain(name, &definition.to_string(), now)
                .await?;
        }
        (ApiObjectKind::Domain, None) => {
            store.delete_api_domain(name).await?;
        }
        (ApiObjectKind::DnsServer, Some(definition)) => {
            store
                .put_api_dns_server(name, definition, &secret_fields(definition), now)
                .await?;
        }
        (ApiObjectKind::DnsServer, None) => {
            store.delete_api_dns_server(name).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[server]\nhostname = \"mail.example.org\"\nipv4 = [\"192.0.2.1\"]\n";

    /// A state directory whose database holds a domain definition that no longer parses,
    /// and a config file beside it.
    async fn store_with_unreadable_domain() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mailzone.toml"), CONFIG).unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        store
            .put_api_domain("broken.test", "{not json", 0)
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn an_unreadable_stored_object_can_be_replaced_or_removed_but_blocks_the_others() {
        let (dir, store) = store_with_unreadable_domain().await;
        let config = dir.path().join("mailzone.toml");
        let domain = |name| ApiChange {
            kind: ApiObjectKind::Domain,
            name,
            definition: None,
        };

        let other = apply_api_change(&config, &store, domain("other.test")).await;
        let error = other.unwrap_err().to_string();
        assert!(error.contains("broken.test"), "{error}");
        assert!(error.contains("unreadable"), "{error}");

        let replacement = serde_json::json!({});
        let replace = ApiChange {
            definition: Some(&replacement),
            ..domain("broken.test")
        };
        let loaded = apply_api_change(&config, &store, replace).await.unwrap();
        assert!(
            loaded
                .api_domains
                .iter()
                .any(|d| d.as_str() == "broken.test")
        );
        assert_eq!(stored_api_objects(&store).await.unwrap().domains.len(), 1);

        store
            .put_api_domain("broken.test", "{not json", 0)
            .await
            .unwrap();
        apply_api_change(&config, &store, domain("broken.test"))
            .await
            .unwrap();
        assert!(stored_api_objects(&store).await.unwrap().domains.is_empty());
        store.close().await;
    }
}
