//! `/domains`: the configured and API-defined domains, their records, plan and check, and
//! `/dkimSignatures`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailzone_engine::tasks::TaskKind;
use mailzone_engine::{CheckRequest, RecordsRequest, clock};
use mailzone_records::{DkimManagement, DnsManagement, Domain, Name, RecordPurpose};
use mailzone_store::Task;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;

use super::*;

/// A domain name from the path: Unicode accepted (converted to A-labels), anything else a
/// 400 naming the problem.
pub(crate) fn domain_name(raw: &str) -> Result<Name, ApiError> {
    Name::owner(raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            format!("`{raw}` is not a valid domain name: {e}"),
        )
    })
}

pub(crate) fn find_domain<'a>(
    loaded: &'a mailzone_engine::LoadedConfig,
    raw: &str,
) -> Result<&'a Domain, ApiError> {
    let name = domain_name(raw)?;
    loaded
        .config
        .domain(&name)
        .ok_or_else(|| ApiError::not_found(&format!("domain {name}")))
}

pub(crate) fn domain_json(domain: &Domain, loaded: &mailzone_engine::LoadedConfig) -> Value {
    let from_api = loaded.api_domains.contains(&domain.name);
    let dns_management = match &domain.dns_management {
        DnsManagement::Manual => json!({ "manual": {} }),
        DnsManagement::Automatic {
            dns_server,
            publish_records,
        } => json!({ "automatic": {
            "dnsServer": dns_server,
            "origin": domain.zone.as_str(),
            "publishRecords": publish_records.iter().map(|t| t.name()).collect::<Vec<_>>(),
        }}),
    };
    let dkim_management = match &domain.dkim_management {
        DkimManagement::Manual { keys } => json!({ "manual": {
            "selectors": keys.iter().map(|k| k.selector.clone()).collect::<Vec<_>>(),
        }}),
        DkimManagement::Automatic {
            algorithms,
            rsa_bits,
            ..
        } => json!({ "automatic": {
            "algorithms": algorithms,
            "rsaBits": rsa_bits,
        }}),
    };
    json!({
        "name": domain.name.as_str(),
        "origin": domain.zone.as_str(),
        "dnsManagement": dns_management,
        "dkimManagement": dkim_management,
        "source": if from_api { "api" } else { "config" },
        "configFile": if from_api { Value::Null } else { Value::String(loaded.path.display().to_string()) },
    })
}

/// `?offset=&limit=` of the domain list: every domain when neither is given (as before
/// they existed); a page otherwise, in the config's order. Either way the body is a JSON
/// array, with the number of domains in `X-Total-Count` and the next and previous pages in
/// a `Link` header (RFC 8288).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DomainsQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

pub(crate) async fn list_domains(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<DomainsQuery>,
) -> Result<Response, ApiError> {
    if query.limit == Some(0) {
        return Err(bad_request("limit must be at least 1"));
    }
    let loaded = state.loaded();
    let window = paging::Window {
        offset: query.offset.unwrap_or(0),
        limit: query.limit,
    };
    let domains = &loaded.config.domains;
    let total = domains.len() as u64;
    let range = window.range(total);
    let page = domains[range.start as usize..range.end as usize]
        .iter()
        .map(|d| domain_json(d, &loaded))
        .collect();
    Ok(paging::response(&uri, window, total, page))
}

pub(crate) async fn get_domain(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = state.loaded();
    Ok(Json(domain_json(find_domain(&loaded, &name)?, &loaded)))
}

/// Validates the config with this change, stores it, swaps it in, and schedules a
/// `DnsManagement` task when the domain is (now) under automatic management.
pub(crate) async fn apply_domain_change(
    state: &AppState,
    name: &Name,
    definition: Option<&Value>,
) -> Result<(std::sync::Arc<mailzone_engine::LoadedConfig>, Option<Task>), ApiError> {
    let loaded = apply_api_change(state, ApiObjectKind::Domain, name.as_str(), definition).await?;
    let now = clock::unix_now();
    let automatic = loaded
        .config
        .domain(name)
        .is_some_and(|d| matches!(d.dns_management, DnsManagement::Automatic { .. }));
    let task = if automatic {
        let new = TaskKind::DnsManagement.task(name.as_str(), now);
        Some(state.store.create_task(&new, now).await?)
    } else {
        None
    };
    Ok((loaded, task))
}

pub(crate) fn with_task(mut domain: Value, task: Option<&Task>) -> Value {
    if let Value::Object(map) = &mut domain {
        map.insert("task".into(), task.map_or(Value::Null, task_json));
    }
    domain
}

/// Creates a domain from its config table as JSON (`{"name": …, "dnsManagement": …}`,
/// the file's camelCase keys). A domain under automatic management gets a
/// `DnsManagement` task at once (returned as `task`); the call does not wait for it.
pub(crate) async fn create_domain(
    State(state): State<AppState>,
    ApiJson(mut body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    let raw_name = match body.remove("name") {
        Some(Value::String(name)) => name,
        _ => {
            return Err(ApiError::invalid("`name` (a string) is required"));
        }
    };
    let name = domain_name(&raw_name)?;
    let (_writing, loaded) = state.lock_config_writes().await;
    if loaded.config.domain(&name).is_some() {
        return Err(if loaded.api_domains.contains(&name) {
            ApiError::new(
                StatusCode::CONFLICT,
                "exists",
                format!("domain {name} exists: change it with PUT /api/v1/domains/{name}"),
            )
        } else {
            read_only(&name, &loaded.path)
        });
    }
    let (loaded, task) = apply_domain_change(&state, &name, Some(&Value::Object(body))).await?;
    let domain = loaded.config.domain(&name).expect("just added");
    Ok((
        StatusCode::CREATED,
        Json(with_task(domain_json(domain, &loaded), task.as_ref())),
    )
        .into_response())
}

/// PUT replaces an API-defined domain's table, PATCH merges keys into it, DELETE removes
/// it (its published records stay until a reconcile of another config removes them).
/// Domains of the config file answer 409.
pub(crate) async fn write_domain(
    State(state): State<AppState>,
    method: axum::http::Method,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = domain_name(&name)?;
    let (_writing, loaded) = state.lock_config_writes().await;
    if loaded.config.domain(&name).is_none() {
        return Err(ApiError::not_found(&format!("domain {name}")));
    }
    if !loaded.api_domains.contains(&name) {
        return Err(read_only(&name, &loaded.path));
    }
    if method == axum::http::Method::DELETE {
        apply_domain_change(&state, &name, None).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut given = object_body(&headers, body)?;
    match given.remove("name") {
        None => {}
        Some(Value::String(n)) if domain_name(&n)? == name => {}
        Some(_) => {
            return Err(ApiError::invalid(
                "`name` cannot be changed; create the new domain and delete this one",
            ));
        }
    }
    let definition = if method == axum::http::Method::PATCH {
        let mut current = state
            .store
            .api_domains()
            .await?
            .into_iter()
            .find(|(n, _)| n == name.as_str())
            .and_then(|(_, d)| serde_json::from_str::<Value>(&d).ok())
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        merge_patch(&mut current, Value::Object(given));
        current
    } else {
        Value::Object(given)
    };
    let (loaded, task) = apply_domain_change(&state, &name, Some(&definition)).await?;
    let domain = loaded.config.domain(&name).expect("just changed");
    Ok(Json(with_task(domain_json(domain, &loaded), task.as_ref())).into_response())
}

pub(crate) fn read_only(name: &Name, file: &std::path::Path) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "defined_in_config",
        format!(
            "domain {name} is defined in {}: change it there and send SIGHUP to reload",
            file.display()
        ),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordsQuery {
    format: Option<String>,
    types: Option<String>,
}

/// `dnsZoneFile` (`format=zone`) or the JSON records (`format=json`, the default).
pub(crate) async fn domain_records(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<Response, ApiError> {
    let loaded = state.loaded();
    let domain = find_domain(&loaded, &name)?;
    let types = parse_types(query.types.as_deref().unwrap_or(""))?;
    let records = &planned_records(&state, &loaded, domain, types).await?;
    match query.format.as_deref().unwrap_or("json") {
        "zone" => Ok((
            [(header::CONTENT_TYPE, "text/dns; charset=utf-8")],
            mailzone_records::zonefile::render(
                &records.domain.name,
                &records.domain.zone,
                &records.records,
            ),
        )
            .into_response()),
        "json" => Ok(Json(mailzone_records::json::records(
            &records.domain.name,
            &records.records,
        ))
        .into_response()),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("format `{other}` is not one of zone, json"),
        )),
    }
}

/// The records `domain` needs (of `types`, all when empty): the API's `records` and the
/// web UI's record table and downloads.
pub(crate) async fn planned_records(
    state: &AppState,
    loaded: &mailzone_engine::LoadedConfig,
    domain: &Domain,
    types: Vec<RecordPurpose>,
) -> Result<mailzone_engine::DomainRecords, ApiError> {
    let request = RecordsRequest {
        domains: vec![domain.name.as_str().to_string()],
        types,
        state_dir: state.state_dir.clone(),
        now_unix: clock::unix_now(),
        store: Some(state.store.clone()),
    };
    let planned = mailzone_engine::records(loaded, &request).await?;
    planned
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(&format!("domain {}", domain.name)))
}

pub(crate) fn parse_types(list: &str) -> Result<Vec<RecordPurpose>, ApiError> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<RecordPurpose>()
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))
        })
        .collect()
}

/// What the next `DnsManagement` run would change, without changing it.
pub(crate) async fn plan_domain(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = state.loaded();
    let domain = find_domain(&loaded, &name)?;
    if matches!(domain.dns_management, DnsManagement::Manual) {
        return Err(ApiError::invalid(format!(
            "domain {} is under manual DNS management: there is no DNS server to plan against",
            domain.name
        )));
    }
    let report = plan_report(&state, &loaded, domain).await?;
    Ok(Json(json!({
        "zones": report.zones.iter().map(mailzone_engine::reconcile::zone_json).collect::<Vec<_>>(),
        "dnsMessages": report.messages,
    })))
}

/// What a publication of `domain` now would change (a read: `apply` is off): the API's
/// plan and the web UI's plan part.
pub(crate) async fn plan_report(
    state: &AppState,
    loaded: &mailzone_engine::LoadedConfig,
    domain: &Domain,
) -> Result<mailzone_engine::ReconcileReport, ApiError> {
    let request = mailzone_engine::ReconcileRequest {
        records: RecordsRequest {
            domains: vec![domain.name.as_str().to_string()],
            types: vec![],
            state_dir: state.state_dir.clone(),
            now_unix: clock::unix_now(),
            store: Some(state.store.clone()),
        },
        apply: false,
        force: false,
        delete_limit: mailzone_engine::reconcile::DEFAULT_DELETE_LIMIT,
        after_read: None,
        on_zone: None,
        concurrency: mailzone_engine::reconcile::DEFAULT_CONCURRENCY,
        both_cores: false,
    };
    Ok(mailzone_engine::reconcile(loaded, &request, &mailzone_engine::Silent).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckBody {
    /// `IP` or `IP:PORT` of the servers to ask instead of the zone's authoritative ones.
    #[serde(default)]
    nameservers: Vec<String>,
    /// Fetch the MTA-STS policy over HTTPS (default true).
    #[serde(default, rename = "fetchMtaSts")]
    fetch_mta_sts: Option<bool>,
}

pub(crate) async fn check_domain(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // The body is optional, so it is parsed here rather than by the JSON extractor.
    let body: CheckBody = optional_json_body(&headers, body)?;
    let loaded = state.loaded();
    let domain = find_domain(&loaded, &name)?;
    let nameservers = body
        .nameservers
        .iter()
        .map(|s| parse_nameserver(s))
        .collect::<Result<Vec<_>, _>>()?;
    let request = check_request(
        &state,
        domain,
        nameservers,
        body.fetch_mta_sts.unwrap_or(true),
    );
    let report = mailzone_engine::check(&loaded, &request).await?;
    Ok(Json(mailzone_engine::check::report_json(&report)))
}

/// The check of one domain, as the API's `check` and the web UI's "Check now" run it.
pub(crate) fn check_request(
    state: &AppState,
    domain: &Domain,
    nameservers: Vec<std::net::SocketAddr>,
    fetch_mta_sts: bool,
) -> CheckRequest {
    CheckRequest {
        domains: vec![domain.name.as_str().to_string()],
        nameservers,
        state_dir: state.state_dir.clone(),
        options: mailzone_check::CheckOptions {
            fetch_mta_sts,
            live_tls: state.loaded().config.serve.check_connect,
            ..mailzone_check::CheckOptions::default()
        },
        concurrency: mailzone_engine::reconcile::DEFAULT_CONCURRENCY,
        store: Some(state.store.clone()),
    }
}

/// A `nameservers` entry of a check request, read as `--nameserver` is.
pub(crate) fn parse_nameserver(s: &str) -> Result<std::net::SocketAddr, ApiError> {
    mailzone_check::dns_lookup::parse_nameserver(s)
        .map_err(|reason| ApiError::invalid(format!("nameservers: {reason}")))
}

/// `?offset=&limit=` of the DKIM key list: every key when neither is given; a page
/// otherwise. The body is a JSON array either way, with `X-Total-Count` and `Link`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DkimQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

/// Every DKIM key with its public half; private keys are never returned. The config's
/// keys first, then the stored keys of each domain with automatic keys, in the config's
/// order. The stored keys are counted in one query, and only the domains a page shows are
/// read with their keys.
pub(crate) async fn list_dkim_signatures(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(query): ApiQuery<DkimQuery>,
) -> Result<Response, ApiError> {
    if query.limit == Some(0) {
        return Err(bad_request("limit must be at least 1"));
    }
    let window = paging::Window {
        offset: query.offset.unwrap_or(0),
        limit: query.limit,
    };
    let loaded = state.loaded();
    let mut entries = Vec::new();
    for (domain, keys) in &loaded.manual_dkim_keys {
        for (selector, key) in keys.iter() {
            entries.push(json!({
                "domain": domain.as_str(),
                "selector": selector,
                "algorithm": key.algorithm(),
                "stage": "Active",
                "source": "config",
                "publicKey": key.public_key().txt_value(),
            }));
        }
    }
    let manual = entries.len() as u64;
    let mut stored_per_domain: std::collections::HashMap<String, u64> = Default::default();
    for (domain, ..) in state.store.dkim_key_summaries().await? {
        *stored_per_domain.entry(domain).or_default() += 1;
    }
    let automatic = loaded
        .config
        .domains
        .iter()
        .filter(|d| matches!(d.dkim_management, DkimManagement::Automatic { .. }))
        .map(|d| {
            let n = stored_per_domain.get(d.name.as_str()).copied().unwrap_or(0);
            (d, n)
        });
    let total = manual + automatic.clone().map(|(_, n)| n).sum::<u64>();
    let range = window.range(total);
    let mut page: Vec<Value> = entries
        .drain(..)
        .skip(range.start as usize)
        .take((range.end - range.start) as usize)
        .collect();
    // The index of the first key of each domain in the whole list.
    let mut first = manual;
    for (domain, n) in automatic {
        let (start, end) = (first, first + n);
        first = end;
        if end <= range.start || n == 0 {
            continue;
        }
        if start >= range.end {
            break;
        }
        for (i, stored) in state
            .store
            .dkim_keys(domain.name.as_str())
            .await?
            .into_iter()
            .enumerate()
        {
            let index = start + i as u64;
            // A key made since the count belongs to the next page's reading, not this one.
            if index >= end {
                break;
            }
            if !range.contains(&index) {
                continue;
            }
            let public = mailzone_records::dkim::DkimPrivateKey::from_pem(&stored.private_key_pem)
                .map(|k| k.public_key().txt_value())
                .unwrap_or_else(|e| format!("unreadable key: {e}"));
            page.push(json!({
                "domain": stored.domain,
                "selector": stored.selector,
                "algorithm": stored.algorithm,
                "stage": format!("{:?}", stored.stage),
                "source": "database",
                "publicKey": public,
            }));
        }
    }
    Ok(paging::response(&uri, window, total, page))
}
