//! `/dnsServers`: the DNS servers of the config file (read-only) and of the API, secrets
//! write-only.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mailzone_records::{DnsProvider, Setting};
use serde_json::{Value, json};

use crate::state::AppState;

use super::*;

/// DNS servers, without their secrets (the key is write-only: its source is named, never
/// its value).
pub(crate) fn dns_server_json(
    server: &mailzone_records::DnsServer,
    loaded: &mailzone_engine::LoadedConfig,
) -> Value {
    let mut out = json!({
        "name": server.name,
        "kind": server.provider.kind(),
        "ttl": server.ttl,
        "timeout": humantime::format_duration(server.timeout).to_string(),
        "propagationDelay": humantime::format_duration(server.propagation_delay).to_string(),
        "pollingInterval": humantime::format_duration(server.polling_interval).to_string(),
        "propagationTimeout": humantime::format_duration(server.propagation_timeout).to_string(),
        // `null`: the key is absent and the zone's NS are polled.
        "authoritativeServers": server.authoritative_servers.as_ref().map(|list| list.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
        "maxRequestsPerSecond": server.request_interval.map(|i| 1.0 / i.as_secs_f64()),
        "maxConcurrentZones": server.max_concurrent_zones,
        "source": if loaded.api_dns_servers.contains(&server.name) { "api" } else { "config" },
    });
    let settings = match &server.provider {
        DnsProvider::Rfc2136 {
            host,
            port,
            protocol,
            key_name,
            key,
            algorithm,
        } => json!({
            "host": host,
            "port": port,
            "protocol": protocol,
            "keyName": key_name,
            "keySet": key.is_some(),
            "algorithm": algorithm,
        }),
        DnsProvider::PowerDns {
            url,
            server_id,
            dns_address,
            ..
        } => json!({
            "url": url,
            "serverId": server_id,
            "dnsAddress": dns_address.map(|a| a.to_string()),
            "keySet": true,
        }),
        DnsProvider::ZoneFile {
            path,
            layout,
            zone_file,
            reload_command,
        } => json!({
            "path": path,
            "layout": layout,
            "zoneFile": zone_file,
            "reloadCommand": reload_command,
        }),
        DnsProvider::DnsUpdate { settings, .. } => {
            let mut plain = serde_json::Map::new();
            let mut secrets_set = Vec::new();
            for (key, value) in settings {
                match value {
                    Setting::Plain(text) => {
                        plain.insert(key.clone(), Value::String(text.clone()));
                    }
                    Setting::Secret(_) => secrets_set.push(key.clone()),
                }
            }
            plain.insert("secretsSet".into(), json!(secrets_set));
            Value::Object(plain)
        }
    };
    if let (Some(out), Value::Object(settings)) = (out.as_object_mut(), settings) {
        out.extend(settings);
    }
    out
}

pub(crate) async fn list_dns_servers(State(state): State<AppState>) -> Json<Value> {
    let loaded = state.loaded();
    let servers = loaded.config.dns_servers.iter();
    Json(servers.map(|s| dns_server_json(s, &loaded)).collect())
}

pub(crate) async fn get_dns_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = state.loaded();
    loaded
        .config
        .dns_server(&name)
        .map(|s| Json(dns_server_json(s, &loaded)))
        .ok_or_else(|| ApiError::not_found(&format!("dnsServer {name}")))
}

/// A DNS server name: the `[dnsServer.<name>]` key.
pub(crate) fn dns_server_name(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 63
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            format!("`{raw}` is not a DNS server name (1 to 63 of A-Z, a-z, 0-9, - and _)"),
        ))
    }
}

/// Creates a DNS server from its config table as JSON; the TSIG secret (`key`, base64) is
/// write-only: stored sealed, never returned.
pub(crate) async fn create_dns_server(
    State(state): State<AppState>,
    ApiJson(mut body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    let name = match body.remove("name") {
        Some(Value::String(name)) => dns_server_name(&name)?,
        _ => return Err(ApiError::invalid("`name` (a string) is required")),
    };
    let loaded = add_dns_server(&state, &name, body).await?;
    let server = loaded.config.dns_server(&name).expect("just added");
    Ok((StatusCode::CREATED, Json(dns_server_json(server, &loaded))).into_response())
}

/// The use case behind the API's and the web UI's create: a new DNS server `name` (a
/// valid name already) from its config table; 409 when the name is taken.
pub(crate) async fn add_dns_server(
    state: &AppState,
    name: &str,
    definition: serde_json::Map<String, Value>,
) -> Result<std::sync::Arc<mailzone_engine::LoadedConfig>, ApiError> {
    let (_writing, loaded) = state.lock_config_writes().await;
    if loaded.config.dns_server(name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            if loaded.api_dns_servers.contains(name) {
                format!("dnsServer {name} exists: change it with PUT /api/v1/dnsServers/{name}")
            } else {
                format!(
                    "dnsServer {name} is defined in {}: change it there and send SIGHUP to reload",
                    loaded.path.display()
                )
            },
        ));
    }
    apply_dns_server_change(state, name, Some(&Value::Object(definition))).await
}

pub(crate) async fn put_dns_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(mut body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    let name = dns_server_name(&name)?;
    keep_name(&mut body, &name)?;
    let loaded = replace_dns_server(&state, &name, body, false).await?;
    Ok(changed_dns_server(&loaded, &name))
}

/// The use case behind the API's PUT and the web UI's edit: an API-defined DNS server's
/// definition replaced. With `keep_secrets`, each secret field the new definition leaves
/// out keeps its stored value (a write-only form field left empty).
pub(crate) async fn replace_dns_server(
    state: &AppState,
    name: &str,
    mut definition: serde_json::Map<String, Value>,
    keep_secrets: bool,
) -> Result<std::sync::Arc<mailzone_engine::LoadedConfig>, ApiError> {
    let (_writing, loaded) = state.lock_config_writes().await;
    api_dns_server_only(&loaded, name)?;
    if keep_secrets && let Some(stored) = stored_dns_server(state, name).await? {
        let new = Value::Object(definition.clone());
        for field in mailzone_engine::api_change::secret_fields(&new) {
            if !definition.contains_key(&field)
                && let Some(value) = stored.get(&field)
            {
                definition.insert(field, value.clone());
            }
        }
    }
    apply_dns_server_change(state, name, Some(&Value::Object(definition))).await
}

/// The stored definition of an API-defined DNS server, secrets opened: for the server's
/// own use only, never to be shown.
pub(crate) async fn stored_dns_server(
    state: &AppState,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    Ok(state
        .store
        .api_dns_servers()
        .await?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d))
}

/// Changes keys of an API-defined DNS server as a JSON merge patch (RFC 7396): `null`
/// removes a key. The stored TSIG secret stays unless the patch gives `key`.
pub(crate) async fn patch_dns_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = dns_server_name(&name)?;
    let (_writing, loaded) = state.lock_config_writes().await;
    api_dns_server_only(&loaded, &name)?;
    let mut given = object_body(&headers, body)?;
    keep_name(&mut given, &name)?;
    let mut definition = stored_dns_server(&state, &name)
        .await?
        .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    merge_patch(&mut definition, Value::Object(given));
    let loaded = apply_dns_server_change(&state, &name, Some(&definition)).await?;
    Ok(changed_dns_server(&loaded, &name))
}

/// Removes an API-defined DNS server; refused (422) while a domain publishes through it.
pub(crate) async fn delete_dns_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = dns_server_name(&name)?;
    remove_dns_server(&state, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The use case behind the API's and the web UI's delete: refused (422, naming them)
/// while domains publish through the server or delegate their DKIM keys to it.
pub(crate) async fn remove_dns_server(state: &AppState, name: &str) -> Result<(), ApiError> {
    let (_writing, loaded) = state.lock_config_writes().await;
    api_dns_server_only(&loaded, name)?;
    let users = domains_using(&loaded.config, name);
    if !users.is_empty() {
        return Err(ApiError::invalid(format!(
            "dnsServer {name} is used by {}: move {} to another DNS server first",
            users.join(", "),
            if users.len() == 1 { "it" } else { "them" }
        )));
    }
    apply_dns_server_change(state, name, None).await?;
    Ok(())
}

/// The domains that publish through DNS server `name`, or delegate their DKIM keys to a
/// zone it publishes, in config order.
pub(crate) fn domains_using(config: &mailzone_records::Config, name: &str) -> Vec<String> {
    config
        .domains
        .iter()
        .filter(|d| {
            let publishes = matches!(&d.dns_management,
                mailzone_records::DnsManagement::Automatic { dns_server, .. } if dns_server == name);
            let delegates = d
                .dkim_management
                .delegation()
                .is_some_and(|delegation| delegation.dns_server == name);
            publishes || delegates
        })
        .map(|d| d.name.as_str().to_string())
        .collect()
}

/// Stores the DNS server's new definition (`None` removes it) and swaps in the config
/// that results.
async fn apply_dns_server_change(
    state: &AppState,
    name: &str,
    definition: Option<&Value>,
) -> Result<std::sync::Arc<mailzone_engine::LoadedConfig>, ApiError> {
    apply_api_change(state, ApiObjectKind::DnsServer, name, definition).await
}

/// Refuses a body whose `name` differs from the path's: a rename is a create and a delete.
fn keep_name(body: &mut serde_json::Map<String, Value>, name: &str) -> Result<(), ApiError> {
    match body.remove("name") {
        None => Ok(()),
        Some(Value::String(n)) if n == name => Ok(()),
        Some(_) => Err(ApiError::invalid("`name` cannot be changed")),
    }
}

/// The answer to a PUT or PATCH: the DNS server as the changed config now defines it.
fn changed_dns_server(loaded: &mailzone_engine::LoadedConfig, name: &str) -> Response {
    let server = loaded.config.dns_server(name).expect("just changed");
    Json(dns_server_json(server, loaded)).into_response()
}

pub(crate) fn api_dns_server_only(
    loaded: &mailzone_engine::LoadedConfig,
    name: &str,
) -> Result<(), ApiError> {
    if loaded.config.dns_server(name).is_none() {
        return Err(ApiError::not_found(&format!("dnsServer {name}")));
    }
    if !loaded.api_dns_servers.contains(name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "defined_in_config",
            format!(
                "dnsServer {name} is defined in {}: change it there and send SIGHUP to reload",
                loaded.path.display()
            ),
        ));
    }
    Ok(())
}
