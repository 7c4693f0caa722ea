//! `POST /dnsServers/{name}/test`: "Test connection". The DNS server's credentials are
//! tried on one zone the way a publication uses them (`engine::connect::test_dns_server`),
//! and what happened is the answer.
//!
//! A failed test is a result, not an API error: `200` with `ok: false` and the failure's
//! class as its `code` (`unreachable`, `refused`, `auth`, …), so a client tells "the
//! server rejected the key" from "the API refused the request" by the status alone.
//! Only what the caller can fix in the request is an error: an unknown DNS server (404),
//! a zone that is no domain name (400), no zone given where none can be chosen (422).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use mailzone_engine::EngineError;
use mailzone_engine::connect::{ConnectionTest, default_zone, test_dns_server};
use mailzone_records::Name;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;

use super::*;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestBody {
    /// The zone to read; default: the zone of the first domain publishing through the
    /// DNS server (or delegating its DKIM keys to it).
    #[serde(default)]
    zone: Option<String>,
}

pub(crate) async fn test_dns_server_route(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = dns_server_name(&name)?;
    let body: TestBody = optional_json_body(&headers, body)?;
    let loaded = state.loaded();
    if loaded.config.dns_server(&name).is_none() {
        return Err(ApiError::not_found(&format!("dnsServer {name}")));
    }
    let zone = zone_to_test(&loaded.config, &name, body.zone.as_deref())?;
    let result = test_dns_server(&loaded, &name, Some(&zone), &state.state_dir).await;
    tracing::info!(dns_server = %name, zone = %zone, ok = result.is_ok(), "connection test");
    Ok(Json(match result {
        Ok(test) => passed_json(&test),
        Err(e) => failed_json(&name, &zone, &e),
    }))
}

/// The zone named in the body (400 when it is no domain name), else the default one (422
/// when there is none).
fn zone_to_test(
    config: &mailzone_records::Config,
    server: &str,
    given: Option<&str>,
) -> Result<Name, ApiError> {
    match given {
        Some(raw) => domain_name(raw),
        None => default_zone(config, server).ok_or_else(|| {
            ApiError::invalid(format!(
                "no domain publishes through dnsServer {server}: name the zone to test, as {{\"zone\": \"example.com\"}}"
            ))
        }),
    }
}

fn passed_json(test: &ConnectionTest) -> Value {
    json!({
        "dnsServer": test.dns_server,
        "zone": test.zone.as_str(),
        "ok": true,
        "serial": test.serial,
        "endpoint": test.endpoint,
        "readBy": test.read_by,
        "authenticated": test.authenticated,
        "elapsedMs": u64::try_from(test.elapsed.as_millis()).unwrap_or(u64::MAX),
    })
}

/// The failure as the engine worded it (it holds no secret), with its class for programs
/// and whether trying again later can help.
fn failed_json(server: &str, zone: &Name, e: &EngineError) -> Value {
    let class = e.class();
    json!({
        "dnsServer": server,
        "zone": zone.as_str(),
        "ok": false,
        "error": {
            "code": class.code(),
            "message": e.to_string(),
            "transient": class.is_transient(),
        },
    })
}
