//! Fuzz target: the config parser, `mailzone_records::config::parse`, on mutated example
//! and documentation configs and random TOML-ish text. Every input is accepted or refused
//! with an error naming a key; none panics.

use std::path::Path;

use mailzone_fuzz::{Inputs, Outcome, cases, fuzz};
use mailzone_records::config;

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

#[test]
fn config_parse_never_panics() {
    let inputs = Inputs::new("config", TOKENS);
    let base = Path::new("/nonexistent/mailzone-fuzz");
    fuzz("config", cases(600), inputs.text(), |text| {
        Outcome::from(&config::parse(text, base))
    });
}
