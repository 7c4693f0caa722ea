//! Cloudflare API v4, as documented: the `{success, errors, messages, result, result_info}`
//! envelope, zones found by `GET /zones?name=`, records listed by `name`, `type` and
//! `match=all`, created with `POST` (`content`, or `data` for SRV, CAA and TLSA, with
//! `priority`, `ttl`, `proxied`) and removed with `DELETE` by id; a bearer token; rate
//! limiting as HTTP 429 with error code 971 and `Retry-After`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailzone_testkit::{ProviderReplay, ReplayRequest, ReplayResponse};

use crate::{Replayed, text};
use serde_json::{Value, json};

const ZONE: &str = "cf.test";
const ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN: &str = "Yqm-cf-test-token-0123456789abcdef";

/// One record as Cloudflare lists it.
#[derive(Clone, Debug)]
struct CfRecord {
    id: String,
    name: String,
    rtype: String,
    /// `content`, or the `data` object for SRV, CAA and TLSA.
    content: Value,
    priority: Option<u64>,
    ttl: u64,
}

impl CfRecord {
    fn to_json(&self) -> Value {
        let mut record = json!({
            "id": self.id,
            "zone_id": ZONE_ID,
            "zone_name": ZONE,
            "name": self.name,
            "type": self.rtype,
            "proxiable": false,
            "proxied": false,
            "ttl": self.ttl,
            "settings": {},
            "meta": {},
            "comment": null,
            "tags": [],
            "created_on": "2026-12-01T10:00:00.000000Z",
            "modified_on": "2026-12-01T10:00:00.000000Z",
        });
        if self.content.is_object() {
            record["data"] = self.content.clone();
            record["content"] = json!(data_text(&self.content));
        } else {
            record["content"] = self.content.clone();
        }
        if let Some(priority) = self.priority {
            record["priority"] = json!(priority);
        }
        record
    }
}

/// Cloudflare's presentation of a `data` record in `content` (`priority weight port target`
/// for SRV, `flags tag "value"` for CAA).
fn data_text(data: &Value) -> String {
    match (data.get("target"), data.get("tag")) {
        (Some(target), _) => format!(
            "{} {} {}",
            data["weight"],
            data["port"],
            target.as_str().unwrap_or("")
        ),
        (_, Some(tag)) => format!(
            "{} {} \"{}\"",
            data["flags"],
            tag.as_str().unwrap_or(""),
            data["value"].as_str().unwrap_or("")
        ),
        _ => String::new(),
    }
}

/// The zone and the scripted behaviour of the replayed API.
#[derive(Default)]
struct Cloudflare {
    records: Vec<CfRecord>,
    next_id: u64,
    /// Answer the next write (POST or DELETE) with 429 and `Retry-After: N` seconds.
    throttle_next_write: Option<u64>,
    /// Refuse every request as an invalid token.
    refuse_token: bool,
}

fn envelope(result: Value) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": result})
}

fn error(status: u16, code: u32, message: &str) -> ReplayResponse {
    ReplayResponse::json(
        status,
        json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null}),
    )
}

impl Cloudflare {
    fn add(&mut self, name: &str, rtype: &str, content: Value, priority: Option<u64>) {
        self.next_id += 1;
        self.records.push(CfRecord {
            id: format!("372e67954025e0ba6aaa6d586b9e{:04x}", self.next_id),
            name: name.to_owned(),
            rtype: rtype.to_owned(),
            content,
            priority,
            ttl: 3600,
        });
    }

    fn answer(&mut self, request: &ReplayRequest) -> ReplayResponse {
        if request.host != "api.cloudflare.com" {
            return ReplayResponse::empty(502);
        }
        if self.refuse_token || request.header("authorization") != Some(&format!("Bearer {TOKEN}"))
        {
            return error(403, 9109, "Invalid access token");
        }
        let path = request.path_only();
        let records_path = format!("/client/v4/zones/{ZONE_ID}/dns_records");
        let is_write = request.method == "POST" || request.method == "DELETE";
        if is_write && let Some(seconds) = self.throttle_next_write.take() {
            return error(
                429,
                971,
                "Please wait and consider throttling your request speed",
            )
            .with_header("Retry-After", &seconds.to_string());
        }
        match (request.method.as_str(), path) {
            ("GET", "/client/v4/zones") => {
                let name = request.query("name").unwrap_or("");
                let zones: Vec<Value> = if name == ZONE {
                    vec![json!({"id": ZONE_ID, "name": ZONE, "status": "active"})]
                } else {
                    Vec::new()
                };
                let count = zones.len();
                let mut body = envelope(json!(zones));
                body["result_info"] = json!({"page": 1, "per_page": 20, "count": count, "total_count": count, "total_pages": 1});
                ReplayResponse::json(200, body)
            }
            ("GET", p) if p == records_path => {
                let name = request.query("name");
                let rtype = request.query("type");
                let listed: Vec<Value> = self
                    .records
                    .iter()
                    .filter(|r| name.is_none_or(|n| r.name == n))
                    .filter(|r| rtype.is_none_or(|t| r.rtype == t))
                    .map(CfRecord::to_json)
                    .collect();
                let count = listed.len();
                let mut body = envelope(json!(listed));
                body["result_info"] = json!({"page": 1, "per_page": 100, "count": count, "total_count": count, "total_pages": 1});
                ReplayResponse::json(200, body)
            }
            ("POST", p) if p == records_path => {
                let body = request.json();
                let rtype = body["type"].as_str().unwrap_or("").to_owned();
                let content = body
                    .get("data")
                    .cloned()
                    .unwrap_or_else(|| body["content"].clone());
                self.next_id += 1;
                let record = CfRecord {
                    id: format!("372e67954025e0ba6aaa6d586b9e{:04x}", self.next_id),
                    name: body["name"].as_str().unwrap_or("").to_owned(),
                    rtype,
                    content,
                    priority: body["priority"].as_u64(),
                    ttl: body["ttl"].as_u64().unwrap_or(1),
                };
                let result = record.to_json();
                self.records.push(record);
                ReplayResponse::json(200, envelope(result))
            }
            ("DELETE", p) if p.starts_with(&format!("{records_path}/")) => {
                let id = p.rsplit('/').next().unwrap_or("");
                let before = self.records.len();
                self.records.retain(|r| r.id != id);
                if self.records.len() == before {
                    return error(404, 81044, "Record does not exist.");
                }
                ReplayResponse::json(200, envelope(json!({"id": id})))
            }
            _ => error(404, 7003, "Could not route to the requested path"),
        }
    }

    /// The values at `name` `rtype`, sorted (text for `content` records, `data` as JSON).
    fn values(&self, name: &str, rtype: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .records
            .iter()
            .filter(|r| r.name == name && r.rtype == rtype)
            .map(|r| match (&r.content, r.priority) {
                (Value::String(s), Some(p)) => format!("{p} {s}"),
                (Value::String(s), None) => s.clone(),
                (other, _) => other.to_string(),
            })
            .collect();
        values.sort();
        values
    }
}

const PROVIDER: Replayed = Replayed {
    zone: ZONE,
    kind: "cloudflare",
    secret: "apiToken",
    env: "CF_TEST_TOKEN",
    more: "",
};

fn config(dmarc_policy: &str) -> String {
    PROVIDER.config(dmarc_policy)
}

fn start() -> (Arc<Mutex<Cloudflare>>, ProviderReplay) {
    let api = Arc::new(Mutex::new(Cloudflare::default()));
    {
        let mut zone = api.lock().unwrap();
        // Foreign records at names mailzone publishes to, and elsewhere.
        zone.add(ZONE, "TXT", json!("google-site-verification=abc"), None);
        zone.add(&format!("www.{ZONE}"), "A", json!("192.0.2.80"), None);
    }
    let handler_api = Arc::clone(&api);
    let replay =
        ProviderReplay::start(move |request| handler_api.lock().unwrap().answer(request)).unwrap();
    (api, replay)
}

#[test]
fn cloudflare_publish_keeps_foreign_records_and_converges() {
    let (api, replay) = start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();

    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));
    {
        let zone = api.lock().unwrap();
        assert_eq!(zone.values(ZONE, "MX"), ["10 mail.cf.test."]);
        assert_eq!(zone.values(&format!("mail.{ZONE}"), "A"), ["192.0.2.10"]);
        assert_eq!(zone.values(&format!("www.{ZONE}"), "A"), ["192.0.2.80"]);
        let apex_txt = zone.values(ZONE, "TXT");
        assert_eq!(apex_txt.len(), 2, "{apex_txt:?}");
        assert!(apex_txt.contains(&"google-site-verification=abc".to_string()));
        // TXT content is sent quoted, as Cloudflare documents it; the foreign value,
        // stored unquoted by an older client, is left as it was.
        assert!(
            apex_txt.iter().any(|t| t.starts_with("\"v=spf1 ")),
            "{apex_txt:?}"
        );
        assert_eq!(
            zone.values(&format!("_dmarc.{ZONE}"), "TXT"),
            ["\"v=DMARC1; p=reject; rua=mailto:postmaster@cf.test\""]
        );
        assert_eq!(zone.values(ZONE, "CAA").len(), 2);
        // Nothing published twice.
        let mut keys: Vec<String> = zone
            .records
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.rtype, r.content))
            .collect();
        let all = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), all, "duplicates in {keys:#?}");
    }
    let requests = replay.requests();
    assert!(requests.iter().all(|r| r.host == "api.cloudflare.com"));
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.query("name") == Some("_dmarc.cf.test")),
        "the listing is asked by name: {:#?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let posts = requests.iter().filter(|r| r.method == "POST").count();
    assert_eq!(
        posts, 7,
        "MX, SPF, DMARC, 2 CAA, mail A, and no more: {posts}"
    );
    assert_eq!(requests.iter().filter(|r| r.method == "DELETE").count(), 0);

    // In sync: the plan is empty, and a second apply writes nothing.
    crate::assert_in_sync(
        |args| PROVIDER.run(tmp.path(), &replay, TOKEN, args),
        &replay,
    );
}

#[test]
fn cloudflare_429_with_retry_after_is_waited_out_then_retried() {
    let (api, replay) = start();
    let tmp = tempfile::tempdir().unwrap();
    // The DMARC policy changes: the next write is throttled for 2 s.
    let writes = crate::throttled_policy_change(&PROVIDER, tmp.path(), &replay, TOKEN, || {
        api.lock().unwrap().throttle_next_write = Some(2);
    });
    assert_eq!(
        api.lock().unwrap().values(&format!("_dmarc.{ZONE}"), "TXT"),
        ["\"v=DMARC1; p=quarantine; rua=mailto:postmaster@cf.test\""]
    );
    // The throttled write, then the same write again, no sooner than Retry-After said.
    assert!(writes.len() >= 2, "{writes:#?}");
    assert_eq!(writes[0].method, writes[1].method);
    assert_eq!(writes[0].path, writes[1].path);
    let waited = writes[1].at.duration_since(writes[0].at);
    assert!(
        waited >= Duration::from_millis(1_950),
        "retried after {waited:?}, before the 2 s of Retry-After"
    );
}

#[test]
fn cloudflare_refused_token_fails_with_the_providers_words_and_no_secret() {
    let (api, replay) = start();
    api.lock().unwrap().refuse_token = true;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();
    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    let output = text(&apply);
    assert!(!apply.status.success(), "{output}");
    assert!(
        output.contains("403") || output.contains("Invalid access token"),
        "the provider's answer is named: {output}"
    );
    assert!(!output.contains(TOKEN), "the token leaked: {output}");
    // Nothing was written, and the foreign records are as they were.
    let zone = api.lock().unwrap();
    assert_eq!(zone.records.len(), 2);
}
