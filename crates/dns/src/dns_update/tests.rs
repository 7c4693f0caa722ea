use super::*;
use mailzone_records::RecordPurpose;
use mailzone_records::diff::RrsetPrerequisite;
use mailzone_records::record::DesiredRecord;

fn name(text: &str) -> Name {
    Name::owner(text).unwrap()
}

fn txt(owner: &str, text: &str) -> Record {
    Record {
        name: name(owner),
        ttl: 300,
        data: RData::Txt(text.as_bytes().to_vec()),
    }
}

#[test]
fn rrsets_keep_foreign_records_and_write_emptied_ones_last() {
    let foreign = txt("example.org", "google-site-verification=abc");
    let old_spf = txt("example.org", "v=spf1 a -all");
    let old_dmarc = txt("_dmarc.example.org", "v=DMARC1; p=none");
    let changes = ChangeSet {
        zone: Some(name("example.org")),
        adds: vec![DesiredRecord {
            purpose: RecordPurpose::Spf,
            record: txt("example.org", "v=spf1 mx -all"),
        }],
        deletes: vec![
            (
                Some(RecordPurpose::Spf),
                LiveRecord::from_record(old_spf.clone()),
            ),
            (
                Some(RecordPurpose::Dmarc),
                LiveRecord::from_record(old_dmarc.clone()),
            ),
        ],
        prerequisites: vec![
            RrsetPrerequisite {
                name: name("_dmarc.example.org"),
                rtype: RrType::Txt,
                records: vec![LiveRecord::from_record(old_dmarc)],
            },
            RrsetPrerequisite {
                name: name("example.org"),
                rtype: RrType::Txt,
                records: vec![
                    LiveRecord::from_record(foreign.clone()),
                    LiveRecord::from_record(old_spf),
                ],
            },
        ],
        ..ChangeSet::default()
    };
    let writes = rrsets_after(&changes, BTreeMap::new());
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].name, name("example.org"));
    let apex: Vec<&RData> = writes[0].records.iter().map(|r| &r.record.data).collect();
    assert_eq!(
        apex,
        vec![&foreign.data, &RData::Txt(b"v=spf1 mx -all".to_vec())]
    );
    assert_eq!(writes[1].name, name("_dmarc.example.org"));
    assert!(writes[1].records.is_empty(), "the emptied RRset comes last");

    // As library calls: the apex, which holds a foreign record, gets the new SPF added
    // and then the old one removed, the foreign TXT never sent; the DMARC RRset,
    // mailzone's alone, is set (emptied) whole, last.
    let calls = library_calls(&changes, BTreeMap::new());
    let summary: Vec<(Action, String, Vec<RData>)> = calls
        .iter()
        .map(|c| {
            (
                c.action,
                c.name.to_string(),
                c.records.iter().map(|r| r.record.data.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Action::Add,
                "example.org.".to_string(),
                vec![RData::Txt(b"v=spf1 mx -all".to_vec())]
            ),
            (
                Action::Remove,
                "example.org.".to_string(),
                vec![RData::Txt(b"v=spf1 a -all".to_vec())]
            ),
            (Action::Set, "_dmarc.example.org.".to_string(), vec![]),
        ]
    );
}

#[test]
fn the_status_is_read_from_the_library_text() {
    assert_eq!(api_status("HTTP 503: busy"), Some(503));
    assert_eq!(api_status("BadRequest {}"), Some(400));
    assert_eq!(api_status("Route53 BadRequest: <Error/>"), Some(400));
    assert_eq!(
        api_status("Route53 API error: 429 Too Many Requests - <Throttling/>"),
        Some(429)
    );
    assert_eq!(api_status("Failed to send request to x"), None);
    assert_eq!(api_status("HTTP 200 but odd"), None);
    assert!(never_answered(
        "error sending request for url (http://127.0.0.1:9/2013-04-01/hostedzone/Z/rrset)"
    ));
}

#[test]
fn route53_throttling_after_the_library_retries_is_transient() {
    let settings: catalog::Settings = [
        ("accessKeyId", "AKIDEXAMPLE"),
        ("secretAccessKey", "s3cr3t-key-value"),
        ("hostedZoneId", "Z1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
    .collect();
    let provider = DnsUpdateProvider::new("route53", &settings, Duration::from_secs(5)).unwrap();
    let throttled = dns_update::Error::Api(
        "Route53 API error: 429 Too Many Requests - <Throttling/> s3cr3t-key-value".into(),
    );
    let e = provider.error("writing x TXT", throttled);
    assert_eq!(e.class(), crate::ErrorClass::Transient, "{e}");
    assert!(!e.to_string().contains("s3cr3t-key-value"), "{e}");
    let refused = dns_update::Error::Api("error sending request for url (x)".into());
    let e = provider.error("reading x TXT", refused);
    assert_eq!(e.cause(), Cause::Unreachable, "{e}");
    let denied = dns_update::Error::Api("Route53 API error: 403 Forbidden - denied".into());
    let e = provider.error("reading x TXT", denied);
    assert_eq!(e.cause(), Cause::Auth, "{e}");
}

#[test]
fn caa_values_round_trip_through_the_library_shape() {
    let (flags, tag, value) =
        caa(128, "issue", "letsencrypt.org; validationmethods=dns-01").decompose();
    assert_eq!((flags, tag.as_str()), (128, "issue"));
    assert!(value.starts_with("letsencrypt.org"), "{value}");
    assert!(value.contains("validationmethods=dns-01"), "{value}");
}
