//! deSEC, as documented: the domain at `GET /api/v1/domains/{name}/`, whole RRsets at
//! `/api/v1/domains/{name}/rrsets/{subname}/{type}/` (`@` standing for the empty subname
//! of the apex), read with `GET` (404 `{"detail": "Not found."}` when there is none),
//! replaced with `PUT`, removed with `DELETE` (204), created with `POST …/rrsets/` (201),
//! and bulk-written with `PUT …/rrsets/` (a list; an item with no records removes its
//! RRset); RRset objects `{domain, subname, name, type, records, ttl, created, touched}`
//! with records in presentation format (TXT quoted); a TTL below the domain's
//! `minimum_ttl` (3600) refused with 400; `Authorization: Token …`; throttling as 429
//! `{"detail": "Request was throttled. Expected available in N seconds."}` with
//! `Retry-After`.
//!
//! The library (dns-update 0.6.1, `providers/desec.rs`) finds the domain with a `GET` of
//! the zone's name, lists one RRset per `GET`, sets a whole RRset of mailzone's with the
//! bulk `PUT` (or `DELETE` when it empties it), and adds to or removes from an RRset that
//! also holds foreign records by reading it and `PUT`ting it back whole with the foreign
//! values as it read them. Every call goes through `send_with_retry`, which waits out a
//! 429's `Retry-After`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailzone_testkit::{ProviderReplay, ReplayRequest, ReplayResponse};

use crate::{Replayed, text};
use serde_json::{Value, json};

const ZONE: &str = "desec.test";
const TOKEN: &str = "i-T3b1h_OI-H9ab8tRS98stGtURe";
const HOST: &str = "desec.io";
const MINIMUM_TTL: u64 = 3600;
const CREATED: &str = "2026-11-02T09:14:05.123456Z";

/// One RRset as deSEC lists it.
#[derive(Clone, Debug, PartialEq)]
struct Rrset {
    /// Empty for the apex.
    subname: String,
    rtype: String,
    /// In presentation format, as deSEC stores them.
    records: Vec<String>,
    ttl: u64,
    created: String,
    touched: String,
}

impl Rrset {
    fn to_json(&self) -> Value {
        let name = if self.subname.is_empty() {
            format!("{ZONE}.")
        } else {
            format!("{}.{ZONE}.", self.subname)
        };
        json!({
            "domain": ZONE,
            "subname": self.subname,
            "name": name,
            "type": self.rtype,
            "records": self.records,
            "ttl": self.ttl,
            "created": self.created,
            "touched": self.touched,
        })
    }
}

/// The zone and the scripted behaviour of the replayed API.
#[derive(Default)]
struct Desec {
    rrsets: BTreeMap<(String, String), Rrset>,
    /// Counts writes, to make each `touched` distinct.
    writes: u64,
    /// Answer the next write (POST, PUT, PATCH or DELETE) with 429 and `Retry-After`.
    throttle_next_write: Option<u64>,
    /// Refuse every request as an invalid token.
    refuse_token: bool,
}

fn detail(status: u16, text: &str) -> ReplayResponse {
    ReplayResponse::json(status, json!({ "detail": text }))
}

/// deSEC's subname in a URL: `@` for the apex.
fn subname_of_url(segment: &str) -> String {
    if segment == "@" {
        String::new()
    } else {
        segment.to_owned()
    }
}

/// One RRset of a write, as deSEC validates it: every field of a `PUT`, a TTL no lower
/// than the domain's minimum, TXT records quoted.
fn validate(item: &Value) -> Result<(String, String, u64, Vec<String>), Value> {
    let (Some(subname), Some(rtype), Some(records)) = (
        item["subname"].as_str(),
        item["type"].as_str(),
        item["records"].as_array(),
    ) else {
        return Err(json!({"non_field_errors": ["subname, type and records are required."]}));
    };
    let Some(ttl) = item["ttl"].as_u64() else {
        return Err(json!({"ttl": ["This field is required."]}));
    };
    if ttl < MINIMUM_TTL {
        return Err(json!({"ttl": [format!(
            "Ensure this value is greater than or equal to {MINIMUM_TTL}."
        )]}));
    }
    let records: Vec<String> = records
        .iter()
        .map(|r| r.as_str().unwrap_or("").to_owned())
        .collect();
    if rtype == "TXT" && records.iter().any(|r| !r.starts_with('"')) {
        return Err(json!({"records": ["TXT records must be given as quoted strings."]}));
    }
    Ok((subname.to_owned(), rtype.to_owned(), ttl, records))
}

impl Desec {
    fn put_rrset(&mut self, subname: &str, rtype: &str, ttl: u64, records: Vec<String>) {
        self.writes += 1;
        let touched = format!("2026-12-01T10:00:{:02}.000000Z", self.writes % 60);
        let key = (subname.to_owned(), rtype.to_owned());
        if records.is_empty() {
            self.rrsets.remove(&key);
            return;
        }
        let created = self
            .rrsets
            .get(&key)
            .map(|r| r.created.clone())
            .unwrap_or_else(|| touched.clone());
        self.rrsets.insert(
            key,
            Rrset {
                subname: subname.to_owned(),
                rtype: rtype.to_owned(),
                records,
                ttl,
                created,
                touched,
            },
        );
    }

    fn answer(&mut self, request: &ReplayRequest) -> ReplayResponse {
        if request.host != HOST {
            return ReplayResponse::empty(502);
        }
        if self.refuse_token || request.header("authorization") != Some(&format!("Token {TOKEN}")) {
            return detail(401, "Invalid token.");
        }
        if request.method != "GET"
            && let Some(seconds) = self.throttle_next_write.take()
        {
            return detail(
                429,
                &format!("Request was throttled. Expected available in {seconds} seconds."),
            )
            .with_header("Retry-After", &seconds.to_string());
        }
        let path = request.path_only();
        let Some(rest) = path.strip_prefix("/api/v1/domains/") else {
            return detail(404, "Not found.");
        };
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        if segments.first() != Some(&ZONE) || !path.ends_with('/') {
            return detail(404, "Not found.");
        }
        match (request.method.as_str(), &segments[1..]) {
            ("GET", []) => ReplayResponse::json(
                200,
                json!({
                    "created": CREATED,
                    "published": "2026-12-01T09:00:00.000000Z",
                    "name": ZONE,
                    "minimum_ttl": MINIMUM_TTL,
                    "touched": "2026-12-01T09:00:00.000000Z",
                    "keys": [{
                        "dnskey": "257 3 13 aCoEWYBBVsP9Fek2oC8yqU8ocKmnS1iDSFZNORnQuHKtJ9Wpyz+kNryquB78Pyk/NTEoai5bxoipVQQXzHlzyg==",
                        "ds": ["62745 13 2 5cddaeaa383e2ea7de49bd1212bf520228f0e3b334626517e5f6a68eb85b48f6"],
                        "flags": 257,
                        "keytype": "csk",
                        "managed": true
                    }],
                }),
            ),
            ("GET", ["rrsets", subname, rtype]) => {
                match self
                    .rrsets
                    .get(&(subname_of_url(subname), (*rtype).to_owned()))
                {
                    Some(rrset) => ReplayResponse::json(200, rrset.to_json()),
                    None => detail(404, "Not found."),
                }
            }
            ("PUT", ["rrsets", subname, rtype]) => {
                let body = request.json();
                let (sub, t, ttl, records) = match validate(&body) {
                    Ok(item) => item,
                    Err(e) => return ReplayResponse::json(400, e),
                };
                if sub != subname_of_url(subname) || t != *rtype {
                    return ReplayResponse::json(
                        400,
                        json!({"non_field_errors": ["subname and type must match the URL."]}),
                    );
                }
                let key = (sub.clone(), t.clone());
                if !self.rrsets.contains_key(&key) {
                    return detail(404, "Not found.");
                }
                let empty = records.is_empty();
                self.put_rrset(&sub, &t, ttl, records);
                if empty {
                    return ReplayResponse::empty(204);
                }
                ReplayResponse::json(200, self.rrsets[&key].to_json())
            }
            ("DELETE", ["rrsets", subname, rtype]) => {
                let key = (subname_of_url(subname), (*rtype).to_owned());
                if self.rrsets.contains_key(&key) {
                    self.put_rrset(&key.0, &key.1, 0, Vec::new());
                }
                ReplayResponse::empty(204)
            }
            ("POST", ["rrsets"]) => {
                let body = request.json();
                let (sub, t, ttl, records) = match validate(&body) {
                    Ok(item) => item,
                    Err(e) => return ReplayResponse::json(400, e),
                };
                if self.rrsets.contains_key(&(sub.clone(), t.clone())) {
                    return ReplayResponse::json(
                        400,
                        json!({"non_field_errors": ["Another RRset with the same subdomain and type exists for this domain."]}),
                    );
                }
                self.put_rrset(&sub, &t, ttl, records);
                ReplayResponse::json(201, self.rrsets[&(sub, t)].to_json())
            }
            ("PUT", ["rrsets"]) => {
                let Some(items) = request.json().as_array().cloned() else {
                    return ReplayResponse::json(
                        400,
                        json!({"non_field_errors": ["Expected a list of items."]}),
                    );
                };
                let mut valid = Vec::new();
                let mut errors = Vec::new();
                for item in &items {
                    match validate(item) {
                        Ok(item) => {
                            valid.push(item);
                            errors.push(json!({}));
                        }
                        Err(e) => errors.push(e),
                    }
                }
                if valid.len() != items.len() {
                    return ReplayResponse::json(400, json!(errors));
                }
                let mut written = Vec::new();
                for (sub, t, ttl, records) in valid {
                    let key = (sub.clone(), t.clone());
                    self.put_rrset(&sub, &t, ttl, records);
                    if let Some(rrset) = self.rrsets.get(&key) {
                        written.push(rrset.to_json());
                    }
                }
                ReplayResponse::json(200, json!(written))
            }
            _ => detail(404, "Not found."),
        }
    }

    /// The records of `subname` `rtype` (empty when there is no such RRset).
    fn records(&self, subname: &str, rtype: &str) -> Vec<String> {
        self.rrsets
            .get(&(subname.to_owned(), rtype.to_owned()))
            .map(|r| r.records.clone())
            .unwrap_or_default()
    }

    fn rrset(&self, subname: &str, rtype: &str) -> Rrset {
        self.rrsets[&(subname.to_owned(), rtype.to_owned())].clone()
    }
}

/// The config, with a TTL of 300 asked for: below deSEC's minimum, which mailzone's
/// catalog gives as 3600 (`mailzone providers desec`), so 3600 is what is written.
const PROVIDER: Replayed = Replayed {
    zone: ZONE,
    kind: "desec",
    secret: "authToken",
    env: "DESEC_TEST_TOKEN",
    more: "ttl = 300",
};

fn config(dmarc_policy: &str) -> String {
    PROVIDER.config(dmarc_policy)
}

fn start() -> (Arc<Mutex<Desec>>, ProviderReplay) {
    let api = Arc::new(Mutex::new(Desec::default()));
    {
        let mut zone = api.lock().unwrap();
        // What deSEC creates with the domain, and the foreign records at names mailzone
        // publishes to, and elsewhere, all written before mailzone's first run.
        let foreign = [
            ("", "NS", 3600, vec!["ns1.desec.io.", "ns2.desec.org."]),
            ("", "TXT", 3600, vec!["\"google-site-verification=abc\""]),
            ("www", "A", 3600, vec!["192.0.2.80"]),
        ];
        for (subname, rtype, ttl, records) in foreign {
            zone.rrsets.insert(
                (subname.to_owned(), rtype.to_owned()),
                Rrset {
                    subname: subname.to_owned(),
                    rtype: rtype.to_owned(),
                    records: records.into_iter().map(str::to_owned).collect(),
                    ttl,
                    created: CREATED.to_owned(),
                    touched: CREATED.to_owned(),
                },
            );
        }
    }
    let handler_api = Arc::clone(&api);
    let replay =
        ProviderReplay::start(move |request| handler_api.lock().unwrap().answer(request)).unwrap();
    (api, replay)
}

/// The foreign records are as they were. deSEC has no record ids: it writes whole RRsets,
/// so the apex TXT RRset, which mailzone shares with the site verification, is rewritten
/// by the library (read, mailzone's value appended, `PUT` back). What is asserted there is
/// what deSEC keeps: the foreign value byte for byte, still first, the RRset's `created`
/// (it is updated, never recreated) and its TTL. The `www` A RRset is never written: its
/// `touched` is unchanged.
fn assert_foreign_kept(zone: &Desec) {
    let apex_txt = zone.rrset("", "TXT");
    assert_eq!(
        apex_txt.records.first().map(String::as_str),
        Some("\"google-site-verification=abc\""),
        "{apex_txt:?}"
    );
    assert_eq!(apex_txt.created, CREATED);
    assert_eq!(apex_txt.ttl, 3600);
    let www = zone.rrset("www", "A");
    assert_eq!(
        www,
        Rrset {
            subname: "www".into(),
            rtype: "A".into(),
            records: vec!["192.0.2.80".into()],
            ttl: 3600,
            created: CREATED.into(),
            touched: CREATED.into(),
        }
    );
    assert_eq!(zone.records("", "NS"), ["ns1.desec.io.", "ns2.desec.org."]);
    assert_eq!(zone.rrset("", "NS").touched, CREATED);
}

#[test]
fn desec_publish_keeps_foreign_records_and_converges() {
    let (api, replay) = start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();

    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));
    {
        let zone = api.lock().unwrap();
        assert_foreign_kept(&zone);
        assert_eq!(zone.records("", "MX"), ["10 mail.desec.test."]);
        assert_eq!(zone.records("mail", "A"), ["192.0.2.10"]);
        assert_eq!(zone.records("mail", "TXT"), ["\"v=spf1 a -all\""]);
        let apex_txt = zone.records("", "TXT");
        assert_eq!(apex_txt.len(), 2, "{apex_txt:?}");
        assert!(
            apex_txt[1].starts_with("\"v=spf1 ") && apex_txt[1].ends_with('"'),
            "TXT in presentation format, quoted: {apex_txt:?}"
        );
        assert_eq!(
            zone.records("_dmarc", "TXT"),
            ["\"v=DMARC1; p=reject; rua=mailto:postmaster@desec.test\""]
        );
        let mut caa = zone.records("", "CAA");
        caa.sort();
        assert_eq!(
            caa,
            [
                "0 iodef \"mailto:postmaster@desec.test\"",
                "0 issue \"letsencrypt.org\""
            ]
        );
        // 300 was asked for; deSEC's minimum of 3600 is what every RRset got.
        assert!(
            zone.rrsets.values().all(|r| r.ttl == MINIMUM_TTL),
            "{:#?}",
            zone.rrsets
        );
        // Nothing published twice.
        for rrset in zone.rrsets.values() {
            let mut records = rrset.records.clone();
            records.sort();
            records.dedup();
            assert_eq!(records.len(), rrset.records.len(), "{rrset:?}");
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
            .all(|r| r.header("authorization") == Some(&format!("Token {TOKEN}")))
    );
    // The domain is looked up first; RRsets are read one by one, the apex as `@`.
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/api/v1/domains/desec.test/")
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/v1/domains/desec.test/rrsets/@/TXT/"),
        "{:#?}",
        paths()
    );
    assert!(
        requests.iter().any(
            |r| r.method == "GET" && r.path == "/api/v1/domains/desec.test/rrsets/_dmarc/TXT/"
        ),
        "{:#?}",
        paths()
    );
    let writes: Vec<&ReplayRequest> = requests.iter().filter(|r| r.method != "GET").collect();
    // The apex TXT RRset, shared with the foreign value, is PUT back whole; mailzone's own
    // RRsets (MX, DMARC, CAA, the mail host's A and SPF) are each set by a bulk PUT.
    let shared: Vec<&&ReplayRequest> = writes
        .iter()
        .filter(|r| r.path == "/api/v1/domains/desec.test/rrsets/@/TXT/")
        .collect();
    assert_eq!(shared.len(), 1, "{:#?}", paths());
    assert_eq!(shared[0].method, "PUT");
    let body = shared[0].json();
    assert_eq!(
        (&body["subname"], &body["type"], &body["ttl"]),
        (&json!(""), &json!("TXT"), &json!(3600))
    );
    assert_eq!(body["records"][0], "\"google-site-verification=abc\"");
    let bulk: Vec<Value> = writes
        .iter()
        .filter(|r| r.method == "PUT" && r.path == "/api/v1/domains/desec.test/rrsets/")
        .map(|r| r.json())
        .collect();
    assert_eq!(bulk.len(), 5, "{:#?} {bulk:#?}", paths());
    assert_eq!(writes.len(), 6, "{:#?}", paths());
    for body in &bulk {
        let items = body.as_array().expect("a bulk write is a list");
        assert_eq!(items.len(), 1, "{body}");
        assert_eq!(items[0]["ttl"], 3600, "{body}");
        assert!(items[0]["subname"].is_string() && items[0]["records"].is_array());
    }
    assert!(
        bulk.iter().any(|b| b[0]["subname"] == ""
            && b[0]["type"] == "MX"
            && b[0]["records"] == json!(["10 mail.desec.test."])),
        "{bulk:#?}"
    );

    // In sync: the plan is empty, and a second apply writes nothing.
    crate::assert_in_sync(
        |args| PROVIDER.run(tmp.path(), &replay, TOKEN, args),
        &replay,
    );
    assert_foreign_kept(&api.lock().unwrap());
}

#[test]
fn desec_429_with_retry_after_is_waited_out_then_retried() {
    let (api, replay) = start();
    let tmp = tempfile::tempdir().unwrap();
    // The DMARC policy changes: the next write is throttled for 2 s.
    let writes = crate::throttled_policy_change(&PROVIDER, tmp.path(), &replay, TOKEN, || {
        api.lock().unwrap().throttle_next_write = Some(2);
    });
    {
        let zone = api.lock().unwrap();
        assert_eq!(
            zone.records("_dmarc", "TXT"),
            ["\"v=DMARC1; p=quarantine; rua=mailto:postmaster@desec.test\""]
        );
        assert_foreign_kept(&zone);
    }
    // The throttled write, then the same write again, no sooner than Retry-After said.
    assert_eq!(writes.len(), 2, "{writes:#?}");
    assert_eq!(writes[0].method, "PUT");
    assert_eq!(writes[0].path, "/api/v1/domains/desec.test/rrsets/");
    assert_eq!(writes[0].method, writes[1].method);
    assert_eq!(writes[0].path, writes[1].path);
    assert_eq!(writes[0].body, writes[1].body);
    let waited = writes[1].at.duration_since(writes[0].at);
    assert!(
        waited >= Duration::from_millis(1_950),
        "retried after {waited:?}, before the 2 s of Retry-After"
    );
    let plan = PROVIDER.run(tmp.path(), &replay, TOKEN, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

#[test]
fn desec_refused_token_fails_with_the_providers_words_and_no_secret() {
    let (api, replay) = start();
    api.lock().unwrap().refuse_token = true;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config("reject")).unwrap();
    let apply = PROVIDER.run(tmp.path(), &replay, TOKEN, &["apply"]);
    let output = text(&apply);
    assert!(!apply.status.success(), "{output}");
    // The library's shared client turns any 401 into its `Unauthorized` error and drops
    // the body, so deSEC's "Invalid token." cannot reach mailzone: the status is named by
    // its reason phrase, with the provider and the RRset being read.
    assert!(
        output.contains("desec API: reading")
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
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET"
                && r.header("authorization") == Some(&format!("Token {TOKEN}")))
    );
    // Nothing was written, and the foreign records are as they were.
    let zone = api.lock().unwrap();
    assert_eq!(zone.rrsets.len(), 3);
    assert_eq!(zone.writes, 0);
    assert_foreign_kept(&zone);
    assert_eq!(zone.rrset("", "TXT").records.len(), 1);
}
