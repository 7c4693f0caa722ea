//! Hetzner DNS as the library's `hetzner` provider reaches it (dns-update 0.6.1,
//! `providers/hetzner.rs`): the DNS part of the Hetzner Cloud API at
//! `api.hetzner.cloud/v1`, not the older `dns.hetzner.com/api/v1`. As documented there:
//! zones addressed by id or name, RRsets listed with
//! `GET /zones/{zone}/rrsets?name=&type=&per_page=` (`{"rrsets": […], "meta":
//! {"pagination": …}}`), each RRset `{id: "name/TYPE", name (relative, `@` for the apex),
//! type, ttl (null: the zone's default), labels, protection, records: [{value, comment}],
//! zone}` with values in presentation format (TXT quoted); written through actions,
//! `POST /zones/{zone}/rrsets/{name}/{type}/actions/{set_records | add_records |
//! remove_records | change_ttl}`, each answered 201 with an `action` object
//! (`set_records` and `change_ttl` need an existing RRset, 404 otherwise; `add_records`
//! creates a missing one; `remove_records` deletes the RRset it empties) and
//! `DELETE /zones/{zone}/rrsets/{name}/{type}`; a bearer token; errors as
//! `{"error": {"code", "message", "details"}}`; rate limiting as 429 `rate_limit_exceeded`
//! with the `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (a UNIX time)
//! headers, and no `Retry-After`.
//!
//! The library sets mailzone's own RRsets with `set_records` (falling back to
//! `add_records` on 404), adds to an RRset holding foreign records with `add_records` and
//! removes with `remove_records`, each followed by `change_ttl`; all of these go through
//! `send_with_retry`, which honours a `Retry-After` and otherwise backs off 1 s, 2 s, 4 s.
//! Only `DELETE` of a whole RRset is sent without retry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailzone_testkit::{ProviderReplay, ReplayRequest, ReplayResponse};

use crate::{Replayed, text};
use serde_json::{Value, json};

const ZONE: &str = "hz.test";
const ZONE_ID: u64 = 4711;
const TOKEN: &str = "jEheVytlAoFl7F8MqUQ7jAo2hOXASztXhz0test1234567890abcdefGHIJKLmn";
const HOST: &str = "api.hetzner.cloud";

/// One record of an RRset.
#[derive(Clone, Debug, PartialEq)]
struct HzRecord {
    value: String,
    comment: String,
}

/// One RRset as Hetzner lists it.
#[derive(Clone, Debug, PartialEq)]
struct HzRrset {
    /// Relative to the zone, `@` for the apex.
    name: String,
    rtype: String,
    /// `None`: the zone's default TTL.
    ttl: Option<u64>,
    records: Vec<HzRecord>,
}

impl HzRrset {
    fn to_json(&self) -> Value {
        json!({
            "id": format!("{}/{}", self.name, self.rtype),
            "name": self.name,
            "type": self.rtype,
            "ttl": self.ttl,
            "labels": {},
            "protection": {"change": false},
            "records": self
                .records
                .iter()
                .map(|r| json!({"value": r.value, "comment": r.comment}))
                .collect::<Vec<_>>(),
            "zone": ZONE_ID,
        })
    }
}

/// The zone and the scripted behaviour of the replayed API.
#[derive(Default)]
struct Hetzner {
    rrsets: BTreeMap<(String, String), HzRrset>,
    next_action: u64,
    /// Answer the next write (POST or DELETE) with 429, as Hetzner does: `RateLimit-*`
    /// headers, the window refilled `N` seconds later, no `Retry-After`.
    throttle_next_write: Option<u64>,
    /// Refuse every request as an invalid token.
    refuse_token: bool,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn with_rate_limit(response: ReplayResponse, remaining: u64, reset_in: u64) -> ReplayResponse {
    response
        .with_header("RateLimit-Limit", "3600")
        .with_header("RateLimit-Remaining", &remaining.to_string())
        .with_header("RateLimit-Reset", &(unix_now() + reset_in).to_string())
}

fn error(status: u16, code: &str, message: &str, details: Value) -> ReplayResponse {
    with_rate_limit(
        ReplayResponse::json(
            status,
            json!({"error": {"code": code, "message": message, "details": details}}),
        ),
        3571,
        29,
    )
}

fn invalid(field: &str, message: &str) -> ReplayResponse {
    error(
        422,
        "invalid_input",
        &format!("invalid input in field '{field}'"),
        json!({"fields": [{"name": field, "messages": [message]}]}),
    )
}

/// A percent-decoded query value (`@` is sent as `%40`).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                Some(Ok(b)) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The records of a write's body, validated as Hetzner does (TXT values quoted).
fn records_of(rtype: &str, body: &Value) -> Result<Vec<HzRecord>, ReplayResponse> {
    let Some(records) = body["records"].as_array() else {
        return Err(invalid("records", "is required"));
    };
    let records: Vec<HzRecord> = records
        .iter()
        .map(|r| HzRecord {
            value: r["value"].as_str().unwrap_or("").to_owned(),
            comment: r["comment"].as_str().unwrap_or("").to_owned(),
        })
        .collect();
    if records.iter().any(|r| r.value.is_empty()) {
        return Err(invalid("records", "value is required"));
    }
    if rtype == "TXT"
        && records
            .iter()
            .any(|r| !(r.value.starts_with('"') && r.value.ends_with('"')))
    {
        return Err(invalid(
            "records",
            "TXT record values must consist of one or more quoted strings",
        ));
    }
    Ok(records)
}

impl Hetzner {
    fn insert(&mut self, name: &str, rtype: &str, ttl: Option<u64>, records: &[(&str, &str)]) {
        self.rrsets.insert(
            (name.to_owned(), rtype.to_owned()),
            HzRrset {
                name: name.to_owned(),
                rtype: rtype.to_owned(),
                ttl,
                records: records
                    .iter()
                    .map(|(value, comment)| HzRecord {
                        value: (*value).to_owned(),
                        comment: (*comment).to_owned(),
                    })
                    .collect(),
            },
        );
    }

    fn action(&mut self, command: &str) -> ReplayResponse {
        self.next_action += 1;
        with_rate_limit(
            ReplayResponse::json(
                201,
                json!({"action": {
                    "id": 8_700_000 + self.next_action,
                    "command": command,
                    "status": "running",
                    "progress": 0,
                    "started": "2026-12-01T10:00:00+00:00",
                    "finished": null,
                    "resources": [{"id": ZONE_ID, "type": "zone"}],
                    "error": null,
                }}),
            ),
            3571,
            29,
        )
    }

    fn answer(&mut self, request: &ReplayRequest) -> ReplayResponse {
        if request.host != HOST {
            return ReplayResponse::empty(502);
        }
        if self.refuse_token || request.header("authorization") != Some(&format!("Bearer {TOKEN}"))
        {
            return error(401, "unauthorized", "unable to authenticate", json!({}));
        }
        let is_write = request.method == "POST" || request.method == "DELETE";
        if is_write && let Some(seconds) = self.throttle_next_write.take() {
            return with_rate_limit(
                ReplayResponse::json(
                    429,
                    json!({"error": {
                        "code": "rate_limit_exceeded",
                        "message": "limit of 3600 requests per hour reached",
                        "details": {},
                    }}),
                ),
                0,
                seconds,
            );
        }
        let path = request.path_only();
        let zone_paths = [
            format!("/v1/zones/{ZONE}/rrsets"),
            format!("/v1/zones/{ZONE_ID}/rrsets"),
        ];
        let Some(rest) = zone_paths
            .iter()
            .find_map(|p| path.strip_prefix(p.as_str()))
        else {
            return error(404, "not_found", "zone not found", json!({}));
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", []) => {
                let name = request.query("name").map(decode);
                let rtype = request.query("type").map(decode);
                let per_page: usize = request
                    .query("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(25);
                let listed: Vec<Value> = self
                    .rrsets
                    .values()
                    .filter(|r| name.as_ref().is_none_or(|n| &r.name == n))
                    .filter(|r| rtype.as_ref().is_none_or(|t| &r.rtype == t))
                    .map(HzRrset::to_json)
                    .collect();
                let total = listed.len();
                let page: Vec<Value> = listed.into_iter().take(per_page).collect();
                with_rate_limit(
                    ReplayResponse::json(
                        200,
                        json!({
                            "rrsets": page,
                            "meta": {"pagination": {
                                "page": 1,
                                "per_page": per_page,
                                "previous_page": null,
                                "next_page": if total > per_page { json!(2) } else { Value::Null },
                                "last_page": total.div_ceil(per_page.max(1)).max(1),
                                "total_entries": total,
                            }},
                        }),
                    ),
                    3571,
                    29,
                )
            }
            ("POST", [name, rtype, "actions", action]) => {
                let key = ((*name).to_owned(), (*rtype).to_owned());
                let body = request.json();
                let exists = self.rrsets.contains_key(&key);
                match *action {
                    "set_records" | "add_records" | "remove_records" => {
                        let records = match records_of(rtype, &body) {
                            Ok(records) => records,
                            Err(e) => return e,
                        };
                        if !exists && *action != "add_records" {
                            return error(404, "not_found", "rrset not found", json!({}));
                        }
                        let ttl = body["ttl"].as_u64();
                        if ttl.is_some_and(|t| t < 60) {
                            return invalid("ttl", "must be greater than or equal to 60");
                        }
                        let rrset = self.rrsets.entry(key.clone()).or_insert_with(|| HzRrset {
                            name: key.0.clone(),
                            rtype: key.1.clone(),
                            ttl,
                            records: Vec::new(),
                        });
                        let command = match *action {
                            "set_records" => {
                                rrset.records = records;
                                "set_rrset_records"
                            }
                            "add_records" => {
                                for record in records {
                                    if !rrset.records.iter().any(|r| r.value == record.value) {
                                        rrset.records.push(record);
                                    }
                                }
                                "add_rrset_records"
                            }
                            _ => {
                                rrset
                                    .records
                                    .retain(|r| !records.iter().any(|x| x.value == r.value));
                                "remove_rrset_records"
                            }
                        };
                        if rrset.records.is_empty() {
                            self.rrsets.remove(&key);
                        }
                        self.action(command)
                    }
                    "change_ttl" => {
                        if !exists {
                            return error(404, "not_found", "rrset not found", json!({}));
                        }
                        let ttl = body["ttl"].as_u64();
                        if ttl.is_some_and(|t| t < 60) {
                            return invalid("ttl", "must be greater than or equal to 60");
                        }
                        if let Some(rrset) = self.rrsets.get_mut(&key) {
                            rrset.ttl = ttl;
                        }
                        self.action("change_rrset_ttl")
                    }
                    _ => error(404, "not_found", "action not found", json!({})),
                }
            }
            ("DELETE", [name, rtype]) => {
                let key = ((*name).to_owned(), (*rtype).to_owned());
                if self.rrsets.remove(&key).is_none() {
                    return error(404, "not_found", "rrset not found", json!({}));
                }
                self.action("delete_rrset")
            }
            _ => error(404, "not_found", "not found", json!({})),
        }
    }

    /// The values of `name` `rtype`, sorted.
    fn values(&self, name: &str, rtype: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .rrsets
            .get(&(name.to_owned(), rtype.to_owned()))
            .map(|r| r.records.iter().map(|r| r.value.clone()).collect())
            .unwrap_or_default();
        values.sort();
        values
    }

    fn rrset(&self, name: &str, rtype: &str) -> HzRrset {
        self.rrsets[&(name.to_owned(), rtype.to_owned())].clone()
    }
}

const PROVIDER: Replayed = Replayed {
    zone: ZONE,
    kind: "hetzner",
    secret: "apiToken",
    env: "HCLOUD_TEST_TOKEN",
    more: "",
};

fn config(dmarc_policy: &str) -> String {
    PROVIDER.config(dmarc_policy)
}

fn start() -> (Arc<Mutex<Hetzner>>, ProviderReplay) {
    let api = Arc::new(Mutex::new(Hetzner::default()));
    {
        let mut zone = api.lock().unwrap();
        // What Hetzner creates with the zone.
        zone.insert(
            "@",
            "SOA",
            Some(3600),
            &[(
                "hydrogen.ns.hetzner.com. dns.hetzner.com. 2026120100 86400 10800 3600000 3600",
                "",
            )],
        );
        zone.insert(
            "@",
            "NS",
            Some(3600),
            &[
                ("hydrogen.ns.hetzner.com.", ""),
                ("oxygen.ns.hetzner.com.", ""),
                ("helium.ns.hetzner.de.", ""),
            ],
        );
        // Foreign records at names mailzone publishes to, and elsewhere, with comments.
        zone.insert(
            "@",
            "TXT",
            Some(3600),
            &[("\"google-site-verification=abc\"", "search console")],
        );
        zone.insert("www", "A", Some(3600), &[("192.0.2.80", "web server")]);
    }
    let handler_api = Arc::clone(&api);
    let replay =
        ProviderReplay::start(move |request| handler_api.lock().unwrap().answer(request)).unwrap();
    (api, replay)
}

/// The foreign records are as they were. Hetzner's records have no ids of their own (an
/// RRset's id is `name/TYPE`): a record is the same one when its value and its comment
/// are, which a `set_records` without the comment would have lost. The `www` RRset is
/// never written; the apex TXT RRset gets mailzone's record through `add_records` and its
/// TTL (one per RRset, RFC 2181 §5.2) set again to the same 3600.
fn assert_foreign_kept(zone: &Hetzner) {
    let apex_txt = zone.rrset("@", "TXT");
    assert_eq!(
        apex_txt.records.first(),
        Some(&HzRecord {
            value: "\"google-site-verification=abc\"".into(),
            comment: "search console".into(),
        }),
        "{apex_txt:?}"
    );
    assert_eq!(apex_txt.ttl, Some(3600));
    assert_eq!(
        zone.rrset("www", "A"),
        HzRrset {
            name: "www".into(),
            rtype: "A".into(),
            ttl: Some(3600),
            records: vec![HzRecord {
                value: "192.0.2.80".into(),
                comment: "web server".into(),
            }],
        }
    );
    assert_eq!(zone.values("@", "NS").len(), 3);
    assert_eq!(zone.values("@", "SOA").len(), 1);
}

#[test]
fn hetzner_publish_keeps_foreign_records_and_converges() {
    let (api, replay) = start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();

    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));
    {
        let zone = api.lock().unwrap();
        assert_foreign_kept(&zone);
        assert_eq!(zone.values("@", "MX"), ["10 mail.hz.test."]);
        assert_eq!(zone.values("mail", "A"), ["192.0.2.10"]);
        assert_eq!(zone.values("mail", "TXT"), ["\"v=spf1 a -all\""]);
        let apex_txt = zone.values("@", "TXT");
        assert_eq!(apex_txt.len(), 2, "{apex_txt:?}");
        assert!(
            apex_txt.iter().any(|t| t.starts_with("\"v=spf1 ")),
            "TXT values quoted, as Hetzner requires: {apex_txt:?}"
        );
        assert_eq!(
            zone.values("_dmarc", "TXT"),
            ["\"v=DMARC1; p=reject; rua=mailto:postmaster@hz.test\""]
        );
        assert_eq!(
            zone.values("@", "CAA"),
            [
                "0 iodef \"mailto:postmaster@hz.test\"",
                "0 issue \"letsencrypt.org\""
            ]
        );
        // mailzone's RRsets get mailzone's TTL.
        assert!(
            zone.rrsets.values().all(|r| r.ttl == Some(3600)),
            "{:#?}",
            zone.rrsets
        );
        // Nothing published twice.
        for rrset in zone.rrsets.values() {
            let mut values: Vec<&String> = rrset.records.iter().map(|r| &r.value).collect();
            values.sort();
            values.dedup();
            assert_eq!(values.len(), rrset.records.len(), "{rrset:?}");
        }
    }
    let requests = replay.requests();
    let paths = || {
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    };
    assert!(requests.iter().all(|r| r.host == HOST));
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(
        requests
            .iter()
            .all(|r| r.path_only().starts_with("/v1/zones/hz.test/rrsets")),
        "{:#?}",
        paths()
    );
    // RRsets are listed by relative name (`@` for the apex, percent-encoded) and type.
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.query("name") == Some("%40")
            && r.query("type") == Some("TXT")
            && r.query("per_page") == Some("50")),
        "{:#?}",
        paths()
    );
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.query("name") == Some("_dmarc")
            && r.query("type") == Some("TXT")),
        "{:#?}",
        paths()
    );
    let writes: Vec<&ReplayRequest> = requests.iter().filter(|r| r.method != "GET").collect();
    assert!(writes.iter().all(|r| r.method == "POST"), "{:#?}", paths());
    // The apex TXT RRset, shared with the foreign record, only gets mailzone's value
    // added (the foreign one is never sent), then its TTL; it is never set whole.
    let apex_txt: Vec<&&ReplayRequest> = writes
        .iter()
        .filter(|r| r.path.starts_with("/v1/zones/hz.test/rrsets/@/TXT/"))
        .collect();
    assert_eq!(
        apex_txt.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        [
            "/v1/zones/hz.test/rrsets/@/TXT/actions/add_records",
            "/v1/zones/hz.test/rrsets/@/TXT/actions/change_ttl"
        ]
    );
    let added = apex_txt[0].json();
    assert_eq!(added["records"].as_array().unwrap().len(), 1, "{added}");
    assert!(
        added["records"][0]["value"]
            .as_str()
            .unwrap()
            .starts_with("\"v=spf1 "),
        "{added}"
    );
    assert_eq!(apex_txt[1].json(), json!({"ttl": 3600}));
    // mailzone's own RRsets (MX, DMARC, CAA, the mail host's A and SPF) are set: the
    // library tries `set_records`, which needs an existing RRset (404), then
    // `add_records`, then `change_ttl`.
    assert_eq!(writes.len(), 2 + 5 * 3, "{:#?}", paths());
    let mx: Vec<&str> = writes
        .iter()
        .filter(|r| r.path.starts_with("/v1/zones/hz.test/rrsets/@/MX/"))
        .map(|r| r.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(mx, ["set_records", "add_records", "change_ttl"]);
    assert!(
        writes
            .iter()
            .all(|r| !r.path.contains("/www/") && !r.path.contains("/NS/")),
        "{:#?}",
        paths()
    );

    // In sync: the plan is empty, and a second apply writes nothing.
    crate::assert_in_sync(
        |args| PROVIDER.run(tmp.path(), &replay, TOKEN, args),
        &replay,
    );
    assert_foreign_kept(&api.lock().unwrap());
}

/// Hetzner's 429 carries no `Retry-After` (only `RateLimit-Reset`, which the library does
/// not read): the library falls back to its own backoff, 1 s before the first retry.
#[test]
fn hetzner_429_is_waited_out_with_the_librarys_backoff_then_retried() {
    let (api, replay) = start();
    let tmp = tempfile::tempdir().unwrap();
    // The DMARC policy changes: the next write is throttled for 1 s.
    let writes = crate::throttled_policy_change(&PROVIDER, tmp.path(), &replay, TOKEN, || {
        api.lock().unwrap().throttle_next_write = Some(1);
    });
    {
        let zone = api.lock().unwrap();
        assert_eq!(
            zone.values("_dmarc", "TXT"),
            ["\"v=DMARC1; p=quarantine; rua=mailto:postmaster@hz.test\""]
        );
        assert_foreign_kept(&zone);
    }
    // The throttled `set_records`, the same again after the backoff, then `change_ttl`.
    assert_eq!(writes.len(), 3, "{writes:#?}");
    assert_eq!(
        writes[0].path,
        "/v1/zones/hz.test/rrsets/_dmarc/TXT/actions/set_records"
    );
    assert_eq!(writes[0].path, writes[1].path);
    assert_eq!(writes[0].body, writes[1].body);
    assert_eq!(
        writes[2].path,
        "/v1/zones/hz.test/rrsets/_dmarc/TXT/actions/change_ttl"
    );
    let waited = writes[1].at.duration_since(writes[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, before the library's 1 s backoff"
    );
    let plan = PROVIDER.run(tmp.path(), &replay, TOKEN, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

/// A TTL below Hetzner's minimum is raised to it, as deSEC's is: the Hetzner Cloud API
/// documents an RRset's TTL as "in between 60s and 2147483647s" and refuses a lower one
/// with 422 `invalid_input`. mailzone's catalog gives `hetzner` a minimum TTL of 1
/// (`mailzone providers hetzner`), so a `ttl` of 30 is sent as is: `add_records` creates
/// each RRset, then its `change_ttl` to 30 is refused and the run fails half-written.
#[test]
fn hetzner_ttl_below_the_apis_minimum_is_raised_to_60() {
    let (api, replay) = start();
    let tmp = tempfile::tempdir().unwrap();
    let config = crate::config(
        ZONE,
        "hetzner",
        "kind = \"hetzner\"\napiTokenEnv = \"HCLOUD_TEST_TOKEN\"\nauthoritativeServers = []\nttl = 30",
        "reject",
    );
    std::fs::write(tmp.path().join("mailzone.toml"), config).unwrap();
    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));
    let zone = api.lock().unwrap();
    assert_eq!(zone.values("_dmarc", "TXT").len(), 1);
    assert!(
        ["MX", "CAA"]
            .iter()
            .all(|t| zone.rrset("@", t).ttl == Some(60)),
        "{:#?}",
        zone.rrsets
    );
    assert_eq!(zone.rrset("_dmarc", "TXT").ttl, Some(60));
    // The foreign TXT keeps its value and comment; its RRset's TTL is now mailzone's 60
    // (one TTL per RRset, RFC 2181 §5.2).
    let apex_txt = zone.rrset("@", "TXT");
    assert_eq!(
        apex_txt.records.first(),
        Some(&HzRecord {
            value: "\"google-site-verification=abc\"".into(),
            comment: "search console".into(),
        }),
        "{apex_txt:?}"
    );
    assert_eq!(apex_txt.ttl, Some(60));
}

#[test]
fn hetzner_refused_token_fails_with_the_providers_words_and_no_secret() {
    let (api, replay) = start();
    api.lock().unwrap().refuse_token = true;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();
    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    let output = text(&apply);
    assert!(!apply.status.success(), "{output}");
    // The library's shared client turns any 401 into its `Unauthorized` error and drops
    // the body, so Hetzner's "unable to authenticate" cannot reach mailzone: the status is
    // named, with the provider, the RRset being read and the setting to check.
    assert!(
        output.contains("hetzner API: reading")
            && output.contains("Unauthorized")
            && output.contains(&format!(
                "HTTP 401: the provider refused the credential; check {}",
                PROVIDER.secret
            )),
        "the provider's answer is named: {output}"
    );
    assert!(!output.contains(TOKEN), "the token leaked: {output}");
    let requests = replay.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(
        |r| r.method == "GET" && r.header("authorization") == Some(&format!("Bearer {TOKEN}"))
    ));
    // Nothing was written, and the foreign records are as they were.
    let zone = api.lock().unwrap();
    assert_eq!(zone.rrsets.len(), 4);
    assert_eq!(zone.next_action, 0);
    assert_foreign_kept(&zone);
    assert_eq!(zone.values("@", "TXT").len(), 1);
}
