//! Fuzz target: the config parser, `mailzone_records::config::parse`, on mutated example
//! and documentation configs and random TOML-ish text. Every input is accepted or refused
//! with an error naming a key; none panics.

use std::path::Path;
use std::sync::Arc;

use mailzone_fuzz::{Inputs, Outcome, cases, fuzz};
use mailzone_records::config;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use toml::{Table, Value};

/// TOML syntax and mailzone's keys and values, so mutations build plausible tables.
const TOKENS: &[&str] = &[
    "[server]",
    "[[server.mailExchangers]]",
    "[server.tls]",
    "[server.acme]",
    "[dnsServer.p]",
    "[domain.\"example.org\"]",
    "[serve]",
    "[notify.webhook]",
    "[notify.smtp]",
    " = ",
    "\"\"",
    "''",
    "'''",
    "\"\"\"",
    "{}",
    "[]",
    "true",
    "false",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "0x7fffffff",
    "hostname",
    "ttl",
    "priority",
    "maxAge",
    "port",
    "cleartextPort",
    "retireAfter",
    "rotateAfter",
    "renewBefore",
    "\"1/0\"",
    "\"0/0\"",
    "\"1/3\"",
    "\"99999999999d\"",
    "\"18446744073709551615s\"",
    "\"1e400\"",
    "dnsServer",
    "delegateTo",
    "delegateDnsServer",
    "publishRecords",
    "mechanisms",
    "origin",
    "mx",
    "\"*.\"",
    "\"xn--\"",
    "\"mailto:\"",
    "\"mailto:@\"",
    "\"bücher.example\"",
    "\"a..b\"",
];

/// A TOML value: the dictionary's words, numbers at the edges, every TOML type, nested.
fn toml_value() -> impl Strategy<Value = Value> {
    let words: Vec<String> = TOKENS
        .iter()
        .map(|t| t.trim_matches('"').to_string())
        .collect();
    let leaf = prop_oneof![
        proptest::sample::select(words).prop_map(Value::String),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(65535),
            Just(65536),
            Just(2147483647),
            Just(2147483648),
            Just(4294967296),
            Just(i64::MIN),
            Just(i64::MAX),
            any::<i64>()
        ]
        .prop_map(Value::Integer),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(1e300),
            any::<f64>()
        ]
        .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        Just(Value::Datetime("1979-05-27T07:32:00Z".parse().unwrap())),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map("[a-zA-Z]{1,16}", inner, 0..5)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

/// A corpus config with the value at one path replaced (or a key added beside it):
/// valid TOML, so the input reaches the validation of each key.
fn replace_at(table: &mut Table, path: &[usize], new: Value, key: Option<String>) {
    if table.is_empty() {
        table.insert(key.unwrap_or_else(|| "server".into()), new);
        return;
    }
    let index = path.first().copied().unwrap_or(0) % table.len();
    let name = table.keys().nth(index).unwrap().clone();
    let rest = path.get(1..).unwrap_or(&[]);
    let descend = !rest.is_empty()
        && match table.get(&name) {
            Some(Value::Table(_)) => true,
            Some(Value::Array(items)) => !items.is_empty(),
            _ => false,
        };
    if !descend {
        table.insert(key.unwrap_or(name), new);
        return;
    }
    match table.get_mut(&name) {
        Some(Value::Table(inner)) => replace_at(inner, rest, new, key),
        Some(Value::Array(items)) => {
            let len = items.len();
            match &mut items[rest[0] % len] {
                Value::Table(inner) => replace_at(inner, &rest[1..], new, key),
                other => *other = new,
            }
        }
        _ => {}
    }
}

fn structured(corpus: Arc<Vec<Table>>) -> impl Strategy<Value = String> {
    let keys = prop_oneof![
        Just(None),
        proptest::sample::select(TOKENS.to_vec())
            .prop_map(|t| Some(t.trim_matches('"').to_string())),
    ];
    (
        0..corpus.len(),
        vec(any::<usize>(), 1..5),
        toml_value(),
        keys,
    )
        .prop_map(move |(i, path, new, key)| {
            let mut table = corpus[i].clone();
            replace_at(&mut table, &path, new, key);
            toml::to_string(&table).unwrap_or_default()
        })
}

#[test]
fn config_values_never_panic() {
    let tables: Vec<Table> = mailzone_fuzz::corpus("config")
        .iter()
        .filter_map(|e| std::str::from_utf8(&e.bytes).ok()?.parse().ok())
        .collect();
    let base = Path::new("/nonexistent/mailzone-fuzz");
    fuzz(
        "config-values",
        cases(10_000),
        structured(Arc::new(tables)),
        |text| Outcome::from(&config::parse(text, base)),
    );
}

#[test]
fn config_parse_never_panics() {
    let inputs = Inputs::new("config", TOKENS);
    let base = Path::new("/nonexistent/mailzone-fuzz");
    fuzz("config", cases(20_000), inputs.text(), |text| {
        Outcome::from(&config::parse(text, base))
    });
}
