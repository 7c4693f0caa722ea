//! PowerDNS Authoritative through its HTTP API: the whole zone and its serial read with one
//! GET, a change sent as one PATCH of whole RRsets, which PowerDNS applies in one
//! transaction. PowerDNS has no prerequisites, so the zone's serial is compared just before
//! the PATCH: moved since the read, the write is refused as a conflict and re-planned.
//!
//! A request answered 429 or 5xx (PowerDNS with the SQLite back end answers 500 when two
//! writers meet) is tried again up to [`RETRIES`] times, after the `Retry-After` the answer
//! names (RFC 9110 §10.2.3, in seconds) or a short backoff. A PATCH is tried again only
//! with the serial compared once more: PowerDNS rolls a failed PATCH back whole.
//!
//! The API is small and documented (zones, RRsets with `changetype` REPLACE/DELETE); no
//! maintained Rust client covers it with the serial check mailzone needs, so the requests
//! are written here on `reqwest`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{Name, RData, Record, RrType, txt, zonefile};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::provider::{Capabilities, Conditional, ReadScope, rrsets_after, unread_rrsets};
use crate::{ApplyReport, Cause, DnsError, Provider, ReadMethod, ZoneSnapshot};

/// Where a PowerDNS API is and how to authenticate.
pub struct PowerDnsConfig {
    /// The API's base URL (`http://127.0.0.1:8081`; a trailing `/api/v1` is accepted).
    pub url: String,
    /// The `server_id` in API paths; `localhost` for a standalone server.
    pub server_id: String,
    /// The `X-API-Key` value.
    pub api_key: Zeroizing<String>,
    pub timeout: Duration,
    /// The API host's address, to name the server in errors.
    pub address: SocketAddr,
    /// Where the server answers DNS; serials are read there (one SOA query over UDP)
    /// instead of through the API, which costs PowerDNS far more per request.
    pub dns_address: Option<SocketAddr>,
}

/// A PowerDNS server reached through its HTTP API.
pub struct PowerDnsProvider {
    client: reqwest::Client,
    base: String,
    api_key: Zeroizing<String>,
    address: SocketAddr,
    dns_address: Option<SocketAddr>,
    timeout: Duration,
    requests: AtomicU64,
    /// Held around each write: PowerDNS on SQLite answers 500 to a PATCH that meets
    /// another one, and the server applies them one at a time anyway.
    writing: tokio::sync::Mutex<()>,
}

/// How many times a request answered 429 or 5xx is tried again.
const RETRIES: u32 = 3;
/// The longest `Retry-After` waited for within a run; longer, the error is returned as
/// transient and the task's own retry schedule takes over.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A request that failed: the error, whether trying again is worth it (429 and 5xx, unless
/// the server asked for a wait longer than [`LONGEST_RETRY_AFTER`]), and the server's
/// `Retry-After`.
struct Failed {
    error: DnsError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failed {
    /// The wait before the next try when one is due (`attempt` tries made so far, from 0).
    fn retry_in(&self, attempt: u32) -> Option<Duration> {
        (self.retryable && attempt < RETRIES).then(|| retry_delay(attempt, self.retry_after))
    }
}

impl From<DnsError> for Failed {
    /// An error not worth a retry (a serial that moved, a server that cannot be reached).
    fn from(error: DnsError) -> Failed {
        Failed {
            error,
            retryable: false,
            retry_after: None,
        }
    }
}

/// Runs `try_once` until it succeeds, fails for good, or has been tried again [`RETRIES`]
/// times, waiting between tries as the failure says.
async fn retrying<T, Fut>(mut try_once: impl FnMut() -> Fut) -> Result<T, DnsError>
where
    Fut: std::future::Future<Output = Result<T, Failed>>,
{
    let mut attempt = 0;
    loop {
        match try_once().await {
            Ok(value) => return Ok(value),
            Err(failed) => match failed.retry_in(attempt) {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => return Err(failed.error),
            },
        }
    }
}

/// The wait before try number `attempt + 1` (counting from 0): `Retry-After` when the
/// server gave one, else 100 ms doubled each time, plus up to 50 ms so that zones failing
/// together do not come back together.
fn retry_delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % 50;
    retry_after.unwrap_or(Duration::from_millis(100 << attempt.min(6)))
        + Duration::from_millis(jitter)
}

/// `Retry-After` in delay-seconds; an HTTP-date (rare from DNS APIs) falls back to the
/// backoff.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// The types mailzone reads and writes; other RRsets of the zone stay invisible.
const MODELLED: [&str; 8] = ["A", "AAAA", "MX", "TXT", "CNAME", "SRV", "CAA", "TLSA"];

#[derive(Deserialize)]
struct ZoneInfo {
    serial: u32,
    #[serde(default)]
    rrsets: Vec<Rrset>,
}

#[derive(Deserialize, Serialize, Clone)]
struct Rrset {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    #[serde(default)]
    records: Vec<RrsetRecord>,
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    changetype: Option<&'static str>,
}

#[derive(Deserialize, Serialize, Clone)]
struct RrsetRecord {
    content: String,
    #[serde(default)]
    disabled: bool,
}

#[derive(Serialize)]
struct Patch {
    rrsets: Vec<Rrset>,
}

#[derive(Deserialize)]
struct ApiError {
    error: Option<String>,
}

/// The host and port of the API's URL (the port of its scheme when none is written), for
/// resolving the address errors name; `None` for a URL that does not parse or has no host.
pub fn api_host(url: &str) -> Option<(String, u16)> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    Some((host.to_string(), url.port_or_known_default()?))
}

impl PowerDnsProvider {
    pub fn new(config: PowerDnsConfig) -> Result<PowerDnsProvider, DnsError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                DnsError::permanent(
                    config.address,
                    Cause::Request,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        let url = config.url.trim_end_matches('/');
        let url = url.strip_suffix("/api/v1").unwrap_or(url);
        Ok(PowerDnsProvider {
            client,
            base: format!("{url}/api/v1/servers/{}", config.server_id),
            api_key: config.api_key,
            address: config.address,
            dns_address: config.dns_address,
            timeout: config.timeout,
            requests: AtomicU64::new(0),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    fn zone_url(&self, zone: &Name) -> String {
        format!("{}/zones/{}", self.base, zone.to_absolute())
    }

    /// Sends a request with the API key, trying again after a 429 or 5xx (see the module
    /// doc); for reads, which are safe to repeat.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, DnsError> {
        if request.try_clone().is_none() {
            // A streamed body cannot be sent twice.
            return self.send_once(request, what).await.map_err(|f| f.error);
        }
        retrying(|| {
            let this_try = request.try_clone().expect("cloneable: checked above");
            self.send_once(this_try, what)
        })
        .await
    }

    /// Sends a request once; the answer's status is turned into an error carrying
    /// PowerDNS's own message (never the key), with the wait before a retry when one is
    /// worth it.
    async fn send_once(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, Failed> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .header("X-API-Key", self.api_key.as_str())
            .send()
            .await
            .map_err(|e| {
                Failed::from(DnsError::unreachable(
                    self.address,
                    format!(
                        "PowerDNS API at {}: {what}: {}",
                        self.address,
                        transport(&e)
                    ),
                ))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let after = retry_after(response.headers());
        let retryable = matches!(status.as_u16(), 429 | 500..=599)
            && after.is_none_or(|wait| wait <= LONGEST_RETRY_AFTER);
        let body = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<ApiError>(&body)
            .ok()
            .and_then(|e| e.error)
            .unwrap_or_else(|| body.chars().take(200).collect());
        let hint = match status.as_u16() {
            401 | 403 => " (check the API key: keyFile, keyEnv or key)",
            404 => " (is the zone created in PowerDNS, and serverId right?)",
            _ => "",
        };
        Err(Failed {
            error: DnsError::http_status(
                self.address,
                status.as_u16(),
                format!(
                    "PowerDNS API at {}: {what}: HTTP {}{}{hint}",
                    self.address,
                    status.as_u16(),
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {detail}")
                    }
                ),
            ),
            retryable,
            retry_after: after,
        })
    }

    async fn get_zone(&self, zone: &Name, query: &[(&str, &str)]) -> Result<ZoneInfo, DnsError> {
        let what = format!("reading zone {zone}");
        let response = self
            .send(self.client.get(self.zone_url(zone)).query(query), &what)
            .await?;
        response.json::<ZoneInfo>().await.map_err(|e| {
            DnsError::permanent(
                self.address,
                Cause::Malformed,
                format!(
                    "PowerDNS API at {}: {what}: unexpected answer: {e}",
                    self.address
                ),
            )
        })
    }

    /// The live records of one RRset, for a change that came without the RRset as read.
    async fn read_rrset(
        &self,
        zone: &Name,
        name: &Name,
        rtype: &str,
    ) -> Result<Vec<LiveRecord>, DnsError> {
        let owner = name.to_absolute();
        let info = self
            .get_zone(zone, &[("rrset_name", &owner), ("rrset_type", rtype)])
            .await?;
        Ok(live_records(&info.rrsets, self.address)?
            .into_iter()
            .filter(|l| l.record.name == *name && l.record.data.rtype().as_str() == rtype)
            .collect())
    }

    /// The RRsets as they must be after the change: each touched RRset whole (PowerDNS
    /// replaces RRsets, never single records), foreign records in it kept as they are.
    async fn patch_rrsets(&self, changes: &ChangeSet, zone: &Name) -> Result<Vec<Rrset>, DnsError> {
        let mut read = BTreeMap::new();
        for (name, rtype) in unread_rrsets(changes) {
            let live = self.read_rrset(zone, &name, rtype.as_str()).await?;
            read.insert((name, rtype), live);
        }
        Ok(rrsets_after(changes, read)
            .into_iter()
            .map(|after| {
                let replace = !after.records.is_empty();
                Rrset {
                    name: after.name.to_absolute(),
                    rtype: after.rtype.to_string(),
                    ttl: after.ttl,
                    records: after
                        .records
                        .iter()
                        .map(|r| RrsetRecord {
                            content: content(r),
                            disabled: false,
                        })
                        .collect(),
                    changetype: Some(if replace { "REPLACE" } else { "DELETE" }),
                }
            })
            .collect())
    }
}

/// What a failed connection amounts to (the API key travels in a header, never in the
/// URL, so the error text holds no secret).
fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    }
}

/// A record's content as PowerDNS holds it; TXT with the strings as read when known.
fn content(live: &LiveRecord) -> String {
    match (&live.record.data, &live.txt_strings) {
        (RData::Txt(_), Some(strings)) => strings
            .iter()
            .map(|s| txt::quote(s))
            .collect::<Vec<_>>()
            .join(" "),
        (data, _) => zonefile::rdata_presentation(data),
    }
}

/// The records of the types mailzone models, TXT with their strings kept apart.
fn live_records(rrsets: &[Rrset], address: SocketAddr) -> Result<Vec<LiveRecord>, DnsError> {
    let mut out = Vec::new();
    for rrset in rrsets {
        if !MODELLED.contains(&rrset.rtype.as_str()) {
            continue;
        }
        let malformed = |e: String| {
            DnsError::permanent(
                address,
                Cause::Malformed,
                format!(
                    "PowerDNS API at {address}: the RRset {} {} cannot be read: {e}",
                    rrset.name, rrset.rtype
                ),
            )
        };
        let name = Name::owner(&rrset.name).map_err(|e| malformed(e.to_string()))?;
        let ttl = rrset.ttl.unwrap_or(0);
        for record in rrset.records.iter().filter(|r| !r.disabled) {
            let parsed: Record = zonefile::parse_rdata(&name, ttl, &rrset.rtype, &record.content)
                .map_err(&malformed)?;
            let txt_strings = match parsed.data {
                RData::Txt(_) => {
                    Some(zonefile::character_strings(&record.content).map_err(&malformed)?)
                }
                _ => None,
            };
            out.push(LiveRecord {
                record: parsed,
                txt_strings,
            });
        }
    }
    Ok(out)
}

/// What this provider can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    read: ReadScope::WholeZone,
    atomic: true,
    conditional: Conditional::Serial,
    serial: true,
    txt_strings_kept: true,
    ttl_read: true,
    min_ttl: 0,
};

#[async_trait]
impl Provider for PowerDnsProvider {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn read_zone(
        &self,
        zone: &Name,
        _wanted: &[(Name, RrType)],
    ) -> Result<ZoneSnapshot, DnsError> {
        // With `dnsAddress` every serial comes from DNS, so that they compare with each
        // other; asked before the listing, a change landing in between shows as a moved
        // serial at the write instead of going unseen.
        let dns_serial = match self.dns_address {
            Some(_) => Some(self.serial(zone).await?),
            None => None,
        };
        let info = self.get_zone(zone, &[]).await?;
        Ok(ZoneSnapshot {
            zone: zone.clone(),
            serial: dns_serial.unwrap_or(info.serial),
            records: live_records(&info.rrsets, self.address)?,
            method: ReadMethod::Listing,
            ns_records: None,
        })
    }

    async fn serial(&self, zone: &Name) -> Result<u32, DnsError> {
        match self.dns_address {
            Some(server) => {
                crate::query::query_serial_counted(server, zone, self.timeout, &self.requests).await
            }
            None => Ok(self.get_zone(zone, &[("rrsets", "false")]).await?.serial),
        }
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<ApplyReport, DnsError> {
        let zone = changes.zone.clone().ok_or_else(|| {
            DnsError::permanent(
                self.address,
                Cause::Request,
                "a change set without its zone",
            )
        })?;
        let rrsets = self.patch_rrsets(changes, &zone).await?;
        let what = format!("updating zone {zone}");
        let _one_writer = self.writing.lock().await;
        retrying(|| async {
            // Compared before every try: a retried PATCH must not land on an edit made
            // while the first one failed.
            if let Some(read) = changes.read_serial {
                let now = self.serial(&zone).await?;
                if now != read {
                    return Err(DnsError::SerialMoved {
                        server: self.address,
                        read,
                        now,
                    }
                    .into());
                }
            }
            let patch = self.client.patch(self.zone_url(&zone)).json(&Patch {
                rrsets: rrsets.clone(),
            });
            self.send_once(patch, &what).await.map(drop)
        })
        .await?;
        let serial = self.serial(&zone).await?;
        Ok(ApplyReport {
            messages: 1,
            serial: Some(serial),
        })
    }

    fn messages_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_host_and_port_come_from_the_url() {
        let host = |u| api_host(u);
        assert_eq!(
            host("http://127.0.0.1:8081"),
            Some(("127.0.0.1".into(), 8081))
        );
        assert_eq!(
            host("https://pdns.example/api/v1"),
            Some(("pdns.example".into(), 443))
        );
        assert_eq!(host("http://[::1]:8081/"), Some(("::1".into(), 8081)));
        assert_eq!(host("not a url"), None);
    }
}
