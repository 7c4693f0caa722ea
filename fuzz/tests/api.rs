//! Fuzz target: the JSON bodies of the API's domain and DNS-server definitions, through
//! `mailzone_engine::load_config_with` over a small config file (`corpus/api/base.toml`):
//! arbitrary JSON values (proptest's recursive strategy) and the corpus' valid definitions
//! with subtrees replaced by arbitrary values, under valid and arbitrary names. Every
//! refusal is an `Err`; none panics.

use std::sync::Arc;

use mailzone_engine::{ApiObject, ApiObjects, load_config_with};
use mailzone_fuzz::{Outcome, cases, corpus, fuzz};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Config keys and values, so arbitrary objects often name real keys.
const KEYS: &[&str] = &[
    "origin",
    "ttl",
    "spf",
    "qualifier",
    "mechanisms",
    "dmarc",
    "policy",
    "subdomainPolicy",
    "rua",
    "ruf",
    "adkim",
    "aspf",
    "tlsRpt",
    "enabled",
    "mtaSts",
    "mode",
    "maxAge",
    "mx",
    "caa",
    "issuers",
    "issuersWild",
    "accountUri",
    "validationMethods",
    "iodef",
    "dkimManagement",
    "automatic",
    "manual",
    "keys",
    "selector",
    "algorithms",
    "rotateAfter",
    "delegateTo",
    "delegateDnsServer",
    "dnsManagement",
    "dnsServer",
    "publishRecords",
    "kind",
    "host",
    "port",
    "protocol",
    "keyName",
    "key",
    "algorithm",
    "timeout",
    "propagationDelay",
    "pollingInterval",
    "propagationTimeout",
    "authoritativeServers",
    "privateKeyFile",
    "keyEnv",
    "onKeyChange",
    "",
    "\u{0}",
    "é",
];

const STRINGS: &[&str] = &[
    "primary",
    "rfc2136",
    "reject",
    "none",
    "quarantine",
    "enforce",
    "testing",
    "manual",
    "automatic",
    "ed25519-sha256",
    "rsa-sha256",
    "hmac-sha256",
    "udp",
    "tcp",
    "mx",
    "dkim",
    "127.0.0.1",
    "::1",
    "127.0.0.1:99999",
    "[::1]:53",
    "example.org",
    "*.example.org",
    "bücher.example",
    "xn--",
    "a..b",
    ".",
    "",
    "mailto:",
    "mailto:@",
    "mailto:a@b",
    "c2VjcmV0",
    "not base64!",
    "0s",
    "1s",
    "90d",
    "99999999999999d",
    "1/0",
    "-1",
    "~",
    "+",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(65535),
            Just(65536),
            Just(2147483647),
            Just(4294967296),
            Just(i64::MIN),
            Just(i64::MAX),
            any::<i64>()
        ]
        .prop_map(|n| Value::Number(n.into())),
        Just(Value::Number(u64::MAX.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        proptest::sample::select(STRINGS).prop_map(|s| Value::String(s.into())),
        ".{0,24}".prop_map(Value::String),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(String::from),
        1 => ".{0,12}",
    ]
}

/// Arbitrary JSON, at most a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(json_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A valid definition with the value at one path (chosen by `path`) replaced, or a key
/// added there.
fn replace_at(mut value: Value, path: &[usize], new: Value, key: String) -> Value {
    replace_in(&mut value, path, new, key, 0);
    value
}

fn replace_in(slot: &mut Value, path: &[usize], new: Value, key: String, depth: usize) {
    let step = path.first().copied();
    let child_index = match (&*slot, step) {
        (Value::Object(map), Some(step)) if !map.is_empty() => Some(step % map.len()),
        (Value::Array(items), Some(step)) if !items.is_empty() => Some(step % items.len()),
        _ => None,
    };
    match (slot, child_index) {
        (Value::Object(map), Some(i)) => {
            let child = map.values_mut().nth(i).unwrap();
            replace_in(child, &path[1..], new, key, depth + 1)
        }
        (Value::Array(items), Some(i)) => {
            replace_in(&mut items[i], &path[1..], new, key, depth + 1)
        }
        (Value::Object(map), None) if depth % 2 == 1 => {
            map.insert(key, new);
        }
        (other, _) => *other = new,
    }
}

fn definition(templates: Arc<Vec<Value>>) -> impl Strategy<Value = Value> {
    let n = templates.len();
    prop_oneof![
        2 => json_value(),
        1 => (0..n).prop_map({
            let t = Arc::clone(&templates);
            move |i| t[i].clone()
        }),
        5 => (0..n, vec(any::<usize>(), 0..4), json_value(), json_key()).prop_map(
            move |(i, path, new, key)| replace_at(templates[i].clone(), &path, new, key)
        ),
    ]
}

fn object_name(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(valid).prop_map(String::from),
        1 => ".{0,20}",
    ]
}

#[derive(Debug, Clone)]
struct Case {
    domains: Vec<(String, Value)>,
    dns_servers: Vec<(String, Value)>,
}

fn objects(list: &[(String, Value)]) -> Vec<ApiObject> {
    list.iter()
        .map(|(name, definition)| ApiObject {
            name: name.clone(),
            definition: definition.clone(),
        })
        .collect()
}

#[test]
fn api_definitions_never_panic() {
    let entries = corpus("api");
    let base = &entries
        .iter()
        .find(|e| e.name == "base.toml")
        .expect("corpus/api/base.toml")
        .bytes;
    let templates: Arc<Vec<Value>> = Arc::new(
        entries
            .iter()
            .filter(|e| e.name.ends_with(".json"))
            .map(|e| serde_json::from_slice(&e.bytes).expect("corpus JSON"))
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailzone.toml");
    std::fs::write(&path, base).unwrap();

    let domain = (
        object_name(&[
            "example.net",
            "api.example.org",
            "example.org",
            "bücher.example",
        ]),
        definition(Arc::clone(&templates)),
    );
    let server = (
        object_name(&["api", "primary", "second"]),
        definition(templates),
    );
    let strategy = (vec(domain, 0..3), vec(server, 0..2)).prop_map(|(domains, dns_servers)| Case {
        domains,
        dns_servers,
    });
    fuzz("api", cases(10_000), strategy, |case| {
        let api = ApiObjects {
            domains: objects(&case.domains),
            dns_servers: objects(&case.dns_servers),
        };
        Outcome::from(&load_config_with(&path, &api))
    });
}
