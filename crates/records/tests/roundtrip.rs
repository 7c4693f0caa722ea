//! Property tests: TXT splitting and zone-file rendering round-trip through the zone
//! parser for arbitrary values (quotes, backslashes, control bytes, non-ASCII, values far
//! above 255 bytes, 4096-bit RSA DKIM keys).

use mailzone_records::dkim::DkimPrivateKey;
use mailzone_records::zonefile::{self, record_line};
use mailzone_records::{DkimAlgorithm, Name, RData, Record, txt};
use proptest::prelude::*;

fn owner() -> Name {
    Name::owner("_test.example.org").unwrap()
}

fn round_trip(record: &Record) -> Record {
    let line = record_line(record, 0);
    let parsed = zonefile::parse(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(parsed.len(), 1, "{line}");
    parsed.into_iter().next().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn txt_bytes_round_trip(value in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let record = Record { name: owner(), ttl: 300, data: RData::Txt(value.clone()) };
        prop_assert_eq!(round_trip(&record), record);
        let parts = txt::split(&value);
        prop_assert!(parts.iter().all(|p| p.len() <= 255));
        prop_assert_eq!(txt::join(&parts), value);
    }

    #[test]
    fn txt_text_round_trip(value in "(\\PC|[\"\\\\;() \t])*") {
        let record = Record { name: owner(), ttl: 3600, data: RData::Txt(value.clone().into_bytes()) };
        let line = record_line(&record, 40);
        // Rendered text is pure printable ASCII: no raw non-ASCII or control bytes.
        prop_assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)), "{}", line);
        prop_assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn caa_values_round_trip(value in "[ -~]{0,300}") {
        let record = Record { name: owner(), ttl: 60, data: RData::Caa { flags: 0, tag: "issue".into(), value } };
        prop_assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn tlsa_round_trip(data in proptest::collection::vec(any::<u8>(), 32..=64), usage in 0u8..4) {
        let record = Record { name: owner(), ttl: 60, data: RData::Tlsa { usage, selector: 1, matching_type: 1, data } };
        prop_assert_eq!(round_trip(&record), record);
    }
}

#[test]
fn rsa_4096_dkim_record_round_trips() {
    let pem = rsa_4096_pem();
    let key = DkimPrivateKey::from_pem(&pem).unwrap();
    assert_eq!(key.bits(), 4096);
    let value = key.public_key().txt_value().into_bytes();
    assert!(value.len() > 700, "a 4096-bit key needs several strings");
    let record = Record {
        name: owner(),
        ttl: 3600,
        data: RData::Txt(value),
    };
    let line = record_line(&record, 0);
    assert_eq!(
        line.matches("\" \"").count(),
        txt::split(match &record.data {
            RData::Txt(v) => v,
            _ => unreachable!(),
        })
        .len()
            - 1
    );
    assert_eq!(round_trip(&record), record);
}

/// A 4096-bit key made once per test run (generation takes a moment; the property is about
/// the record, not the key).
fn rsa_4096_pem() -> String {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::PrivateKey::new(&mut rand::rng(), 4096).unwrap();
    key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string()
}

#[test]
fn generated_ed25519_key_round_trips_through_pem() {
    let key = DkimPrivateKey::generate(DkimAlgorithm::Ed25519Sha256, &mut rand::rng());
    let again = DkimPrivateKey::from_pem(key.pkcs8_pem()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
}
