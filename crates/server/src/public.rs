//! The documents a mail domain serves over HTTP, routed by the `Host` header so one
//! listener serves every domain (TLS is terminated in front, by a reverse proxy):
//! - `mta-sts.<domain>/.well-known/mta-sts.txt`: the MTA-STS policy (RFC 8461 §3.3), the
//!   exact bytes whose hash is the `_mta-sts` TXT id;
//! - `autoconfig.<domain>/mail/config-v1.1.xml` (and the `/.well-known/autoconfig/…` path):
//!   Thunderbird's autoconfig;
//! - `POST autodiscover.<domain>/autodiscover/autodiscover.xml`: Outlook's autodiscover;
//! - `ua-auto-config.<domain>/.well-known/user-agent-configuration.json`: the PACC
//!   document (draft-ietf-mailmaint-pacc-02 §4), the bytes whose hash is in DNS.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailzone_records::{Domain, Name, autoconfig, mtasts};
use serde::Deserialize;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/.well-known/mta-sts.txt", get(mta_sts_policy))
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(thunderbird),
        )
        .route("/autodiscover/autodiscover.xml", post(autodiscover))
        .route("/Autodiscover/Autodiscover.xml", post(autodiscover))
        .route("/.well-known/user-agent-configuration.json", get(pacc))
        .with_state(state)
}

/// The host name asked for, lowercase, without port and trailing dot.
fn requested_host(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// The configured domain under `prefix.` of the requested host.
fn domain_for_host(
    state: &AppState,
    headers: &HeaderMap,
    prefix: &str,
) -> Result<(std::sync::Arc<mailzone_engine::LoadedConfig>, Name), Miss> {
    let host = requested_host(headers).ok_or_else(|| Miss("no Host header".into()))?;
    let Some(rest) = host.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
        return Err(Miss(format!("{host} is not a {prefix}.<domain> name")));
    };
    let name = Name::owner(rest).map_err(|_| Miss(format!("{rest} is not a domain")))?;
    let loaded = state.loaded();
    if loaded.config.domain(&name).is_none() {
        return Err(Miss(format!("{name} is not a domain served here")));
    }
    Ok((loaded, name))
}

/// Why a public document is not served: a 404 with the reason.
struct Miss(String);

impl IntoResponse for Miss {
    fn into_response(self) -> Response {
        not_found(&self.0)
    }
}

fn not_found(why: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("not found: {why}\n")).into_response()
}

fn domain<'a>(loaded: &'a mailzone_engine::LoadedConfig, name: &Name) -> &'a Domain {
    loaded
        .config
        .domain(name)
        .expect("domain_for_host checked it exists")
}

async fn mta_sts_policy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (loaded, name) = match domain_for_host(&state, &headers, "mta-sts") {
        Ok(found) => found,
        Err(miss) => return miss.into_response(),
    };
    let policy = &domain(&loaded, &name).mta_sts;
    if !policy.enabled {
        return not_found(&format!("MTA-STS is off for {name}"));
    }
    (
        // RFC 8461 §3.3: media type "text/plain".
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        mtasts::policy_text(policy),
    )
        .into_response()
}

#[derive(Deserialize)]
struct AutoconfigQuery {
    #[serde(default, rename = "emailaddress")]
    email_address: Option<String>,
}

/// Thunderbird asks `autoconfig.<domain>` (the host tells the domain) and passes
/// `?emailaddress=`, which is used when the host does not name a domain.
async fn thunderbird(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AutoconfigQuery>,
) -> Response {
    let found = domain_for_host(&state, &headers, "autoconfig").or_else(|miss| {
        let from_address = query
            .email_address
            .as_deref()
            .and_then(|a| a.rsplit_once('@'))
            .and_then(|(_, d)| Name::owner(d).ok());
        let loaded = state.loaded();
        match from_address {
            Some(name) if loaded.config.domain(&name).is_some() => Ok((loaded, name)),
            _ => Err(miss),
        }
    });
    let (loaded, name) = match found {
        Ok(found) => found,
        Err(miss) => return miss.into_response(),
    };
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        autoconfig::thunderbird_config(&name, &loaded.config.server.services),
    )
        .into_response()
}

/// The `<EMailAddress>` of an autodiscover request (the only element the answer needs).
fn requested_address(body: &str) -> Option<&str> {
    let start = body.find("<EMailAddress>")? + "<EMailAddress>".len();
    let end = body[start..].find("</EMailAddress>")? + start;
    let address = body[start..end].trim();
    (address.len() <= 320 && address.contains('@')).then_some(address)
}

async fn autodiscover(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the request is not UTF-8 XML\n").into_response();
    };
    let Some(address) = requested_address(text) else {
        return (
            StatusCode::BAD_REQUEST,
            "the request names no <EMailAddress>\n",
        )
            .into_response();
    };
    let loaded = state.loaded();
    let served = address
        .rsplit_once('@')
        .and_then(|(_, d)| Name::owner(d).ok())
        .filter(|d| loaded.config.domain(d).is_some());
    if served.is_none() {
        return not_found("the address is not in a domain served here");
    }
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        autoconfig::autodiscover_response(address, &loaded.config.server.services),
    )
        .into_response()
}

async fn pacc(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (loaded, _) = match domain_for_host(&state, &headers, "ua-auto-config") {
        Ok(found) => found,
        Err(miss) => return miss.into_response(),
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        autoconfig::pacc_document(&loaded.config.server.services),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_forms() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "MTA-STS.Example.org.:8443".parse().unwrap());
        assert_eq!(requested_host(&h).as_deref(), Some("mta-sts.example.org"));
        h.insert(header::HOST, "[::1]:80".parse().unwrap());
        assert_eq!(requested_host(&h).as_deref(), Some("[::1]"));
    }

    #[test]
    fn autodiscover_address() {
        let body = "<Autodiscover><Request><EMailAddress> a@example.org </EMailAddress></Request></Autodiscover>";
        assert_eq!(requested_address(body), Some("a@example.org"));
        assert_eq!(requested_address("<x/>"), None);
    }
}
