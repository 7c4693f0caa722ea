//! Fuzz target: the zone-file reader, `mailzone_records::zonefile::parse`, on mutated zones
//! mailzone rendered and on random text. Every input is read or refused with a line number;
//! none panics.

use mailzone_fuzz::{Inputs, Outcome, cases, fuzz};
use mailzone_records::zonefile;

/// Record types, classes, escapes and the numbers at their limits.
const TOKENS: &[&str] = &[
    " IN ",
    " CH ",
    " A ",
    " AAAA ",
    " MX ",
    " TXT ",
    " CNAME ",
    " SRV ",
    " CAA ",
    " TLSA ",
    " PTR ",
    " NS ",
    " SOA ",
    " TYPE65534 ",
    "\\#",
    "\\",
    "\\\\",
    "\\000",
    "\\256",
    "\\1",
    "\"",
    ";",
    "( ",
    " )",
    "$ORIGIN ",
    "$TTL ",
    "example.org.",
    "*.example.org.",
    "@",
    "_25._tcp.",
    "::ffff:1.2.3.4",
    "1.2.3",
    "300",
    "2147483648",
    "4294967296",
    " 0 ",
    " 65536 ",
    " 256 ",
    "issue",
    "issuewild",
    "iodef",
    "0123456789abcdef",
    "g",
];

#[test]
fn zonefile_parse_never_panics() {
    let inputs = Inputs::new("zonefile", TOKENS);
    fuzz("zonefile", cases(20_000), inputs.text(), |text| {
        Outcome::from(&zonefile::parse(text))
    });
}
