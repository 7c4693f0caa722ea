use super::*;
use mailzone_records::diff::RrsetPrerequisite;
use mailzone_records::{DesiredRecord, Record, RecordPurpose};
use std::net::Ipv4Addr;

fn name(s: &str) -> Name {
    Name::owner(s).unwrap()
}

fn server() -> SocketAddr {
    "127.0.0.1:5300".parse().unwrap()
}

#[test]
fn debug_never_shows_the_secret() {
    let tsig = TsigConfig::from_base64(
        "update-key",
        TsigAlgorithm::HmacSha256,
        "c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
    )
    .unwrap();
    assert_eq!(tsig.secret.as_slice(), b"secret-secret-secret");
    let config = Rfc2136Config {
        server: server(),
        protocol: Transport::Tcp,
        tsig: Some(tsig),
        timeout: Duration::from_secs(5),
    };
    let shown = format!("{config:?} {:?}", Rfc2136Provider::new(config.clone()));
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    assert!(!shown.contains("secret-secret"), "{shown}");
    assert!(!shown.contains("115, 101, 99"), "{shown}"); // the bytes as numbers
    assert!(
        shown.contains("update-key") && shown.contains("redacted"),
        "{shown}"
    );
}

#[test]
fn bad_base64_names_the_key_not_the_secret() {
    let err = TsigConfig::from_base64("k", TsigAlgorithm::HmacSha256, "not base64 at all!")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`k`") && !err.contains("not base64 at all"),
        "{err}"
    );
}

#[test]
fn algorithms_parse() {
    assert_eq!("HMAC-SHA512.".parse(), Ok(TsigAlgorithm::HmacSha512));
    assert!(
        "hmac-md5"
            .parse::<TsigAlgorithm>()
            .unwrap_err()
            .contains("hmac-sha256")
    );
    assert_eq!("udp".parse(), Ok(Transport::Udp));
}

fn change_set() -> ChangeSet {
    let zone = name("example.test");
    let old_txt = LiveRecord {
        record: Record {
            name: zone.clone(),
            ttl: 300,
            data: RData::Txt(b"v=spf1 -all".to_vec()),
        },
        txt_strings: Some(vec![b"v=spf1 ".to_vec(), b"-all".to_vec()]),
    };
    ChangeSet {
        zone: Some(zone.clone()),
        adds: vec![
            DesiredRecord {
                purpose: RecordPurpose::Mx,
                record: Record {
                    name: zone.clone(),
                    ttl: 300,
                    data: RData::Mx {
                        preference: 10,
                        exchange: name("mail.example.test"),
                    },
                },
            },
            DesiredRecord {
                purpose: RecordPurpose::Address,
                record: Record {
                    name: name("mail.example.test"),
                    ttl: 300,
                    data: RData::A(Ipv4Addr::new(192, 0, 2, 1)),
                },
            },
            DesiredRecord {
                purpose: RecordPurpose::Spf,
                record: Record {
                    name: zone.clone(),
                    ttl: 300,
                    data: RData::Txt(b"v=spf1 mx -all".to_vec()),
                },
            },
        ],
        deletes: vec![(Some(RecordPurpose::Spf), old_txt.clone())],
        prerequisites: vec![
            RrsetPrerequisite {
                name: zone.clone(),
                rtype: RrType::Mx,
                records: vec![],
            },
            RrsetPrerequisite {
                name: name("mail.example.test"),
                rtype: RrType::A,
                records: vec![],
            },
            RrsetPrerequisite {
                name: zone.clone(),
                rtype: RrType::Txt,
                records: vec![old_txt],
            },
        ],
        managed: 3,
        read_serial: None,
    }
}

/// What an update section says of each record, leaving out its data.
fn type_class_ttl(section: &[WireRecord]) -> Vec<(RecordType, DNSClass, u32)> {
    section
        .iter()
        .map(|r| (r.record_type(), r.dns_class, r.ttl))
        .collect()
}

#[test]
fn one_update_message_with_prerequisites_deletes_then_adds() {
    let changes = change_set();
    let zone = changes.zone.clone().unwrap();
    let groups = group_changes(server(), &zone, &changes).unwrap();
    let m = update_message(&zone, &groups.iter().collect::<Vec<_>>());
    let bytes = m.to_vec().unwrap();
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.op_code, OpCode::Update);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(m.queries[0].query_type(), RecordType::SOA);

    // Prerequisites: MX and A must not exist (class NONE, TTL 0, no RDATA), TXT as read.
    let pre = type_class_ttl(&m.answers);
    assert!(
        pre.contains(&(RecordType::MX, DNSClass::NONE, 0)),
        "{pre:?}"
    );
    assert!(pre.contains(&(RecordType::A, DNSClass::NONE, 0)), "{pre:?}");
    assert!(pre.contains(&(RecordType::TXT, DNSClass::IN, 0)), "{pre:?}");
    for r in &m.answers {
        if r.dns_class == DNSClass::NONE {
            assert!(matches!(r.data, WireRData::Update0(_)), "{r:?}");
        }
        if let WireRData::TXT(t) = &r.data {
            assert_eq!(t.txt_data.len(), 2, "strings as read");
        }
    }

    // Updates: the delete (class NONE, TTL 0, strings as read), then A before MX.
    let updates = type_class_ttl(&m.authorities);
    assert_eq!(
        updates,
        vec![
            (RecordType::TXT, DNSClass::NONE, 0),
            (RecordType::A, DNSClass::IN, 300),
            (RecordType::TXT, DNSClass::IN, 300),
            (RecordType::MX, DNSClass::IN, 300),
        ]
    );
    match &m.authorities[0].data {
        WireRData::TXT(t) => assert_eq!(t.txt_data.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn records_outside_the_zone_are_not_sent() {
    let mut changes = change_set();
    changes.adds[1].record.name = name("mail.example.net");
    let err = group_changes(server(), &name("example.test"), &changes).unwrap_err();
    assert!(err.to_string().contains("outside zone"), "{err}");
}

#[test]
fn packing_keeps_rrsets_whole() {
    let zone = name("example.test");
    let mut changes = ChangeSet {
        zone: Some(zone.clone()),
        ..ChangeSet::default()
    };
    for i in 0..300 {
        let owner = name(&format!("k{i}._domainkey.example.test"));
        changes.adds.push(DesiredRecord {
            purpose: RecordPurpose::Dkim,
            record: Record {
                name: owner.clone(),
                ttl: 300,
                data: RData::Txt(vec![b'a'; 400]),
            },
        });
        changes.prerequisites.push(RrsetPrerequisite {
            name: owner,
            rtype: RrType::Txt,
            records: vec![],
        });
    }
    let groups = group_changes(server(), &zone, &changes).unwrap();
    let parts = pack(&groups, 60_000);
    assert!(parts.len() >= 2, "{}", parts.len());
    assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 300);
    for p in &parts {
        let m = update_message(&zone, p);
        let len = m.to_vec().unwrap().len();
        assert!(len <= 60_000, "{len}");
        // Each RRset travels with its own prerequisite.
        assert_eq!(m.answers.len(), m.authorities.len());
    }
}
