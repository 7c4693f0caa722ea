//! DigitalOcean API v2, as documented: domain records under
//! `/v2/domains/{domain}/records`, one record per object (`id`, `type`, `name` relative to
//! the domain with `@` for the apex, `data`, `priority`, `port`, `ttl`, `weight`, `flags`,
//! `tag`), listed with the `name` (fully qualified) and `type` filters and `per_page`/`page`
//! pagination (`links.pages.next` while more pages follow, `meta.total`), created with
//! `POST` (201 `{"domain_record": …}`) and removed with `DELETE` by id (204); a bearer
//! token; errors as `{"id", "message"}`; rate limiting as HTTP 429 `too_many_requests` with
//! `Retry-After` and the `RateLimit-*` headers. DigitalOcean lists host names in `data`
//! (MX, CNAME, NS, SRV) without their trailing dot, whatever the client sent.
//!
//! The library (dns-update 0.6.1, `providers/digitalocean.rs`) reads with `send_with_retry`,
//! which waits out a 429's `Retry-After`, but creates and deletes with `send_raw`, which does
//! not retry: a throttled write ends the run as a transient failure, and the next run
//! finishes the work.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailzone_testkit::{ProviderReplay, ReplayRequest, ReplayResponse};

use crate::{Replayed, text};
use serde_json::{Value, json};

const ZONE: &str = "do.test";
const TOKEN: &str = "dop_v1_5f3c7e0d9a8b4c2e1f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e";
const HOST: &str = "api.digitalocean.com";

/// One record as DigitalOcean lists it.
#[derive(Clone, Debug)]
struct DoRecord {
    id: i64,
    rtype: String,
    /// Relative to the domain, `@` for the apex.
    name: String,
    data: String,
    priority: Option<u64>,
    port: Option<u64>,
    weight: Option<u64>,
    flags: Option<u64>,
    tag: Option<String>,
    ttl: u64,
}

impl DoRecord {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.rtype,
            "name": self.name,
            "data": self.data,
            "priority": self.priority,
            "port": self.port,
            "ttl": self.ttl,
            "weight": self.weight,
            "flags": self.flags,
            "tag": self.tag,
        })
    }

    /// The fully qualified name (what the `name` filter matches).
    fn fqdn(&self) -> String {
        if self.name == "@" {
            ZONE.to_owned()
        } else {
            format!("{}.{ZONE}", self.name)
        }
    }
}

/// The zone and the scripted behaviour of the replayed API.
#[derive(Default)]
struct DigitalOcean {
    records: Vec<DoRecord>,
    next_id: i64,
    /// Answer the next write (POST or DELETE) with 429 and `Retry-After: N` seconds.
    throttle_next_write: Option<u64>,
    /// Answer the next read (GET) with 429 and `Retry-After: N` seconds.
    throttle_next_read: Option<u64>,
    /// Refuse every request as an invalid token.
    refuse_token: bool,
}

fn error(status: u16, id: &str, message: &str) -> ReplayResponse {
    ReplayResponse::json(status, json!({"id": id, "message": message}))
        .with_header("RateLimit-Limit", "5000")
        .with_header("RateLimit-Remaining", "4987")
        .with_header("RateLimit-Reset", "1798761600")
}

fn ok(status: u16, body: Value) -> ReplayResponse {
    ReplayResponse::json(status, body)
        .with_header("RateLimit-Limit", "5000")
        .with_header("RateLimit-Remaining", "4987")
        .with_header("RateLimit-Reset", "1798761600")
}

fn throttled(seconds: u64) -> ReplayResponse {
    ReplayResponse::json(
        429,
        json!({"id": "too_many_requests", "message": "API Rate limit exceeded."}),
    )
    .with_header("Retry-After", &seconds.to_string())
    .with_header("RateLimit-Limit", "5000")
    .with_header("RateLimit-Remaining", "0")
    .with_header("RateLimit-Reset", "1798761600")
}

/// The host names DigitalOcean stores without their trailing dot.
fn hostname_type(rtype: &str) -> bool {
    matches!(rtype, "MX" | "CNAME" | "NS" | "SRV")
}

impl DigitalOcean {
    fn add(&mut self, name: &str, rtype: &str, data: &str, ttl: u64) -> i64 {
        self.next_id += 1;
        let id = 1_783_400_000 + self.next_id;
        self.records.push(DoRecord {
            id,
            rtype: rtype.to_owned(),
            name: name.to_owned(),
            data: data.to_owned(),
            priority: None,
            port: None,
            weight: None,
            flags: None,
            tag: None,
            ttl,
        });
        id
    }

    fn answer(&mut self, request: &ReplayRequest) -> ReplayResponse {
        if request.host != HOST {
            return ReplayResponse::empty(502);
        }
        if self.refuse_token || request.header("authorization") != Some(&format!("Bearer {TOKEN}"))
        {
            return error(401, "unauthorized", "Unable to authenticate you.");
        }
        let records_path = format!("/v2/domains/{ZONE}/records");
        let path = request.path_only();
        if request.method == "GET"
            && let Some(seconds) = self.throttle_next_read.take()
        {
            return throttled(seconds);
        }
        let is_write = request.method == "POST" || request.method == "DELETE";
        if is_write && let Some(seconds) = self.throttle_next_write.take() {
            return throttled(seconds);
        }
        match (request.method.as_str(), path) {
            ("GET", p) if p == records_path => {
                let name = request.query("name");
                let rtype = request.query("type");
                let per_page: usize = request
                    .query("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(20)
                    .clamp(1, 200);
                let page: usize = request
                    .query("page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1)
                    .max(1);
                let matching: Vec<&DoRecord> = self
                    .records
                    .iter()
                    .filter(|r| name.is_none_or(|n| r.fqdn() == n))
                    .filter(|r| rtype.is_none_or(|t| r.rtype == t))
                    .collect();
                let total = matching.len();
                let listed: Vec<Value> = matching
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(|r| r.to_json())
                    .collect();
                let last = total.div_ceil(per_page).max(1);
                let url =
                    |n: usize| format!("https://{HOST}{records_path}?page={n}&per_page={per_page}");
                let mut pages = serde_json::Map::new();
                if page > 1 {
                    pages.insert("first".into(), json!(url(1)));
                    pages.insert("prev".into(), json!(url(page - 1)));
                }
                if page < last {
                    pages.insert("last".into(), json!(url(last)));
                    pages.insert("next".into(), json!(url(page + 1)));
                }
                let links = if pages.is_empty() {
                    json!({})
                } else {
                    json!({ "pages": pages })
                };
                ok(
                    200,
                    json!({"domain_records": listed, "links": links, "meta": {"total": total}}),
                )
            }
            ("POST", p) if p == records_path => {
                let body = request.json();
                let rtype = body["type"].as_str().unwrap_or("").to_owned();
                let ttl = body["ttl"].as_u64().unwrap_or(1800);
                let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
                    return error(422, "unprocessable_entity", "Name can't be blank");
                };
                let Some(data) = body["data"].as_str() else {
                    return error(422, "unprocessable_entity", "Data can't be blank");
                };
                if ttl < 30 {
                    return error(
                        422,
                        "unprocessable_entity",
                        "Ttl must be greater than or equal to 30",
                    );
                }
                if matches!(rtype.as_str(), "MX" | "SRV") && body["priority"].as_u64().is_none() {
                    return error(422, "unprocessable_entity", "Priority can't be blank");
                }
                let data = if hostname_type(&rtype) {
                    data.trim_end_matches('.').to_owned()
                } else {
                    data.to_owned()
                };
                self.next_id += 1;
                let record = DoRecord {
                    id: 1_783_400_000 + self.next_id,
                    rtype,
                    name: name.to_owned(),
                    data,
                    priority: body["priority"].as_u64(),
                    port: body["port"].as_u64(),
                    weight: body["weight"].as_u64(),
                    flags: body["flags"].as_u64(),
                    tag: body["tag"].as_str().map(str::to_owned),
                    ttl,
                };
                let result = record.to_json();
                self.records.push(record);
                ok(201, json!({ "domain_record": result }))
            }
            ("DELETE", p) if p.starts_with(&format!("{records_path}/")) => {
                let id: Option<i64> = p.rsplit('/').next().and_then(|id| id.parse().ok());
                let before = self.records.len();
                self.records.retain(|r| Some(r.id) != id);
                if self.records.len() == before {
                    return error(
                        404,
                        "not_found",
                        "The resource you were accessing could not be found.",
                    );
                }
                ReplayResponse::empty(204)
                    .with_header("RateLimit-Limit", "5000")
                    .with_header("RateLimit-Remaining", "4987")
                    .with_header("RateLimit-Reset", "1798761600")
            }
            _ => error(
                404,
                "not_found",
                "The resource you were accessing could not be found.",
            ),
        }
    }

    /// The values at `name` (relative) `rtype`, sorted (`priority data` where a priority
    /// is set, `flags tag data` for CAA).
    fn values(&self, name: &str, rtype: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .records
            .iter()
            .filter(|r| r.name == name && r.rtype == rtype)
            .map(|r| match (&r.tag, r.priority) {
                (Some(tag), _) => format!("{} {tag} {}", r.flags.unwrap_or(0), r.data),
                (None, Some(p)) => format!("{p} {}", r.data),
                (None, None) => r.data.clone(),
            })
            .collect();
        values.sort();
        values
    }

    fn find(&self, id: i64) -> Option<&DoRecord> {
        self.records.iter().find(|r| r.id == id)
    }
}

const PROVIDER: Replayed = Replayed {
    zone: ZONE,
    kind: "digitalocean",
    secret: "authToken",
    env: "DO_TEST_TOKEN",
    more: "",
};

fn config(dmarc_policy: &str) -> String {
    PROVIDER.config(dmarc_policy)
}

/// The ids of the foreign records placed in the zone beforehand.
struct Foreign {
    apex_txt: i64,
    www_a: i64,
}

fn start() -> (Arc<Mutex<DigitalOcean>>, ProviderReplay, Foreign) {
    let api = Arc::new(Mutex::new(DigitalOcean::default()));
    let foreign = {
        let mut zone = api.lock().unwrap();
        // What DigitalOcean creates with the domain: its SOA and NS records at the apex.
        zone.add("@", "SOA", "1800", 1800);
        for ns in ["ns1", "ns2", "ns3"] {
            zone.add("@", "NS", &format!("{ns}.digitalocean.com"), 1800);
        }
        // Foreign records at names mailzone publishes to, and elsewhere.
        Foreign {
            apex_txt: zone.add("@", "TXT", "google-site-verification=abc", 3600),
            www_a: zone.add("www", "A", "192.0.2.80", 3600),
        }
    };
    let handler_api = Arc::clone(&api);
    let replay =
        ProviderReplay::start(move |request| handler_api.lock().unwrap().answer(request)).unwrap();
    (api, replay, foreign)
}

/// The foreign records are there, with their ids, data and TTLs as they were.
fn assert_foreign_untouched(zone: &DigitalOcean, foreign: &Foreign) {
    let txt = zone
        .find(foreign.apex_txt)
        .expect("the foreign TXT is kept");
    assert_eq!(
        (
            txt.name.as_str(),
            txt.rtype.as_str(),
            txt.data.as_str(),
            txt.ttl
        ),
        ("@", "TXT", "google-site-verification=abc", 3600)
    );
    let www = zone.find(foreign.www_a).expect("the foreign A is kept");
    assert_eq!(
        (
            www.name.as_str(),
            www.rtype.as_str(),
            www.data.as_str(),
            www.ttl
        ),
        ("www", "A", "192.0.2.80", 3600)
    );
    assert_eq!(zone.values("www", "A"), ["192.0.2.80"]);
    assert_eq!(zone.values("@", "NS").len(), 3);
}

#[test]
fn digitalocean_publish_keeps_foreign_records_and_converges() {
    let (api, replay, foreign) = start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();

    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));
    {
        let zone = api.lock().unwrap();
        assert_foreign_untouched(&zone, &foreign);
        // Host names are listed without their trailing dot, as DigitalOcean stores them.
        assert_eq!(zone.values("@", "MX"), ["10 mail.do.test"]);
        assert_eq!(zone.values("mail", "A"), ["192.0.2.10"]);
        assert_eq!(zone.values("mail", "TXT"), ["v=spf1 a -all"]);
        let apex_txt = zone.values("@", "TXT");
        assert_eq!(apex_txt.len(), 2, "{apex_txt:?}");
        assert!(apex_txt.contains(&"google-site-verification=abc".to_string()));
        // TXT data is sent as the text itself, unquoted, as DigitalOcean documents it.
        assert!(
            apex_txt.iter().any(|t| t.starts_with("v=spf1 ")),
            "{apex_txt:?}"
        );
        assert_eq!(
            zone.values("_dmarc", "TXT"),
            ["v=DMARC1; p=reject; rua=mailto:postmaster@do.test"]
        );
        // CAA as DigitalOcean's `flags`, `tag` and the value alone in `data`.
        assert_eq!(
            zone.values("@", "CAA"),
            [
                "0 iodef mailto:postmaster@do.test",
                "0 issue letsencrypt.org"
            ]
        );
        // mailzone's records get mailzone's TTL.
        assert!(
            zone.records
                .iter()
                .filter(|r| r.rtype != "SOA" && r.rtype != "NS")
                .all(|r| r.ttl == 3600),
            "{:#?}",
            zone.records
        );
        // Nothing published twice.
        let mut keys: Vec<String> = zone
            .records
            .iter()
            .map(|r| format!("{} {} {} {:?}", r.name, r.rtype, r.data, r.tag))
            .collect();
        let all = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), all, "duplicates in {keys:#?}");
    }
    let requests = replay.requests();
    assert!(requests.iter().all(|r| r.host == HOST));
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(
        requests
            .iter()
            .all(|r| r.path_only() == "/v2/domains/do.test/records"
                || (r.method == "DELETE"
                    && r.path_only().starts_with("/v2/domains/do.test/records/"))),
        "{:#?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    // Listings are asked by fully qualified name and type, a page of up to 200 at a time.
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.query("name") == Some("_dmarc.do.test")
            && r.query("type") == Some("TXT")
            && r.query("per_page") == Some("200")
            && r.query("page") == Some("1")),
        "{:#?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let posts: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "POST")
        .map(ReplayRequest::json)
        .collect();
    assert_eq!(
        posts.len(),
        7,
        "MX, 2 SPF (apex, mail host), DMARC, 2 CAA, mail A, and no more: {posts:#?}"
    );
    assert!(
        posts
            .iter()
            .all(|p| p["ttl"] == 3600 && p["name"].is_string()),
        "{posts:#?}"
    );
    let mx = posts.iter().find(|p| p["type"] == "MX").unwrap();
    assert_eq!(
        (&mx["name"], &mx["data"], &mx["priority"]),
        (&json!("@"), &json!("mail.do.test."), &json!(10))
    );
    let spf = posts
        .iter()
        .find(|p| p["type"] == "TXT" && p["name"] == "@")
        .unwrap();
    assert!(
        spf["data"].as_str().unwrap().starts_with("v=spf1 "),
        "{spf}"
    );
    let caa = posts
        .iter()
        .find(|p| p["type"] == "CAA" && p["tag"] == "issue")
        .unwrap();
    assert_eq!(
        (&caa["data"], &caa["flags"]),
        (&json!("letsencrypt.org"), &json!(0))
    );
    assert_eq!(requests.iter().filter(|r| r.method == "DELETE").count(), 0);

    // In sync: the plan is empty, and a second apply writes nothing.
    crate::assert_in_sync(
        |args| PROVIDER.run(tmp.path(), &replay, TOKEN, args),
        &replay,
    );
    assert_foreign_untouched(&api.lock().unwrap(), &foreign);
}

/// DigitalOcean's writes are not retried by the library (`send_raw`): a 429 on a write
/// fails the run as a transient error naming the 429, and the next run finishes. Its reads
/// are (`send_with_retry`): a 429 on a listing is waited out for `Retry-After`.
#[test]
fn digitalocean_429_on_a_write_fails_the_run_as_transient_and_the_next_run_finishes() {
    let (api, replay, foreign) = start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();
    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));

    // The DMARC policy changes: the next write is throttled.
    std::fs::write(tmp.path().join("mailzone.toml"), config("quarantine")).unwrap();
    api.lock().unwrap().throttle_next_write = Some(2);
    let before = replay.requests().len();
    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    let output = text(&apply);
    // The CLI exits 1 on any failure; mailzone classes the library's "HTTP 429: …" as
    // transient (a service run retries it), which the message shows by naming the 429.
    assert!(!apply.status.success(), "{output}");
    assert!(
        output.contains("HTTP 429") && output.contains("API Rate limit exceeded."),
        "the throttling is named: {output}"
    );
    assert!(!output.contains(TOKEN), "the token leaked: {output}");
    let writes: Vec<ReplayRequest> = crate::writes_since(&replay, before);
    assert_eq!(
        writes.len(),
        1,
        "the throttled write is not retried: {writes:#?}"
    );
    {
        // The DMARC RRset is mailzone's alone: it is set whole, old record deleted first.
        // That delete was refused: the zone is as the first run left it.
        let zone = api.lock().unwrap();
        assert_eq!(writes[0].method, "DELETE");
        assert_eq!(
            zone.values("_dmarc", "TXT"),
            ["v=DMARC1; p=reject; rua=mailto:postmaster@do.test"]
        );
        assert_foreign_untouched(&zone, &foreign);
    }
    // The plan still holds the change.
    let plan = PROVIDER.run(tmp.path(), &replay, TOKEN, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));

    // The next run finishes; its first listing is throttled and waited out.
    api.lock().unwrap().throttle_next_read = Some(2);
    let before = replay.requests().len();
    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));
    let requests = replay.requests()[before..].to_vec();
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[1].path, requests[0].path, "{requests:#?}");
    let waited = requests[1].at.duration_since(requests[0].at);
    assert!(
        waited >= Duration::from_millis(1_950),
        "retried after {waited:?}, before the 2 s of Retry-After"
    );
    let zone = api.lock().unwrap();
    assert_eq!(
        zone.values("_dmarc", "TXT"),
        ["v=DMARC1; p=quarantine; rua=mailto:postmaster@do.test"]
    );
    assert_foreign_untouched(&zone, &foreign);
    drop(zone);
    let plan = PROVIDER.run(tmp.path(), &replay, TOKEN, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

#[test]
fn digitalocean_refused_token_fails_with_the_providers_words_and_no_secret() {
    let (api, replay, foreign) = start();
    api.lock().unwrap().refuse_token = true;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();
    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    let output = text(&apply);
    assert!(!apply.status.success(), "{output}");
    // The library's shared client turns any 401 into its `Unauthorized` error and drops
    // the body, so DigitalOcean's "Unable to authenticate you." cannot reach mailzone: the
    // status is named, with the provider, the RRset being read and the setting to check.
    assert!(
        output.contains("digitalocean API: reading")
            && output.contains("Unauthorized")
            && output.contains(&format!(
                "HTTP 401: the provider refused the credential; check {}",
                PROVIDER.secret
            )),
        "the provider's answer is named: {output}"
    );
    assert!(!output.contains(TOKEN), "the token leaked: {output}");
    // The token was sent as documented, and refused; nothing was written.
    let requests = replay.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(
        |r| r.method == "GET" && r.header("authorization") == Some(&format!("Bearer {TOKEN}"))
    ));
    let zone = api.lock().unwrap();
    assert_eq!(zone.records.len(), 6);
    assert_foreign_untouched(&zone, &foreign);
}
