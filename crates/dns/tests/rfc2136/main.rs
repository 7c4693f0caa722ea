//! The RFC 2136 provider against real Knot and BIND servers started by mailzone-testkit.
//! What the servers serve afterwards is checked with kdig (the kit's `query`/`axfr`), not
//! only with mailzone's own reader. Each test runs once per server (modules `knot` and
//! `bind`); it is skipped when the server is not installed (and fails instead under
//! `MAILZONE_REQUIRE_TOOLS=1`). Here: reading and updating; `fixture.rs` holds what the
//! tests start from, `failures.rs` the failures and their classes, `connections.rs` the
//! kept connections.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use mailzone_dns::{
    DnsError, ErrorClass, Provider, ReadMethod, Rfc2136Config, Rfc2136Provider, Transport,
    TsigAlgorithm, TsigConfig, query_rrset, query_serial,
};
use mailzone_records::diff::{ChangeSet, LedgerEntry, diff};
use mailzone_records::{DesiredRecord, Name, RData, Record, RecordPurpose, RrType};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

mod connections;
mod failures;
mod fixture;

use connections::*;
use failures::*;
use fixture::*;

// ---------------------------------------------------------------------------------------

async fn read_zone_by_transfer(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    let snapshot = p.read_zone(&zone(), &[]).await.unwrap();
    assert_eq!(snapshot.method, ReadMethod::Transfer);
    assert_eq!(snapshot.serial, server.serial(ZONE));
    assert_eq!(p.messages_sent(), 1, "one AXFR request");

    let find = |owner: &str, rtype: &str| {
        snapshot
            .records
            .iter()
            .filter(|l| l.record.name == name(owner) && l.record.data.rtype().as_str() == rtype)
            .cloned()
            .collect::<Vec<_>>()
    };
    let www = find("www.example.test", "A");
    assert_eq!(www.len(), 1);
    assert_eq!(www[0].record.data, RData::A(Ipv4Addr::new(192, 0, 2, 10)));
    assert_eq!(www[0].record.ttl, 300);

    // TXT strings exactly as served, the value joined.
    let apex_txt = find(ZONE, "TXT");
    assert_eq!(apex_txt.len(), 2, "{apex_txt:?}");
    let spf = apex_txt
        .iter()
        .find(|l| l.record.data == RData::Txt(b"v=spf1 a -all".to_vec()))
        .expect("the split SPF record");
    assert_eq!(
        spf.txt_strings,
        Some(vec![b"v=spf1 ".to_vec(), b"a -all".to_vec()])
    );
    let dkim = find("google._domainkey.example.test", "TXT");
    assert_eq!(dkim[0].txt_strings.as_ref().map(Vec::len), Some(2));

    let caa = find(ZONE, "CAA");
    assert_eq!(
        caa[0].record.data,
        RData::Caa {
            flags: 0,
            tag: "issue".into(),
            value: "digicert.com".into()
        }
    );
    assert_eq!(find(ZONE, "MX").len(), 1);
    // SOA and NS are invisible; the wildcard is skipped (see mailzone_dns::convert).
    assert!(
        snapshot
            .records
            .iter()
            .all(|l| !l.record.name.as_str().contains("wild")),
        "{:?}",
        snapshot.records
    );
    // Every record of a modelled type, and nothing else: 2 apex TXT, MX, 2 A (old-mx,
    // www), ns1's A, 2 DKIM TXT, CAA, ACME TXT.
    assert_eq!(snapshot.records.len(), 10, "{:#?}", snapshot.records);
}

async fn apply_adds_replaces_and_deletes_in_one_message(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let before = server.serial(ZONE);
    let p = provider(&server);
    let records = desired_records();
    let changes = plan(&p, &records).await;
    assert_eq!(changes.adds.len(), records.len(), "{changes:#?}");
    let deleted: BTreeSet<String> = changes
        .deletes
        .iter()
        .map(|(_, l)| format!("{} {}", l.record.name, l.record.data.value()))
        .collect();
    assert_eq!(
        deleted,
        [
            "example.test. 10 old-mx.example.test.".to_string(),
            "example.test. v=spf1 a -all".to_string(),
            "old._domainkey.example.test. v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_string(),
        ]
        .into()
    );

    let sent_before = p.messages_sent();
    let report = p.apply(&changes).await.unwrap();
    assert_eq!(report.messages, 1);
    assert_eq!(report.serial, Some(server.serial(ZONE)));
    assert!(report.serial.unwrap() > before);
    assert_eq!(
        p.messages_sent(),
        sent_before + 2,
        "the UPDATE and one SOA query"
    );

    // What kdig sees.
    assert_eq!(
        server.query("example.test", "MX"),
        ["10 mail.example.test."]
    );
    assert_eq!(server.query("mail.example.test", "A"), ["192.0.2.25"]);
    assert_eq!(server.query("mail.example.test", "AAAA"), ["2001:db8::25"]);
    assert_eq!(
        server.query("example.test", "TXT"),
        ["\"google-site-verification=abc123\"", "\"v=spf1 mx -all\""]
    );
    assert_eq!(
        server.query("_dmarc.example.test", "TXT"),
        ["\"v=DMARC1; p=reject; rua=mailto:postmaster@example.test\""]
    );
    let dkim = server.query("mz1._domainkey.example.test", "TXT");
    assert_eq!(dkim.len(), 1);
    assert_eq!(
        dkim[0].matches("\" \"").count(),
        3,
        "four strings: {}",
        dkim[0]
    );
    assert_eq!(joined(&dkim[0]).as_bytes(), long_dkim().as_slice());
    assert_eq!(
        server.query("example.test", "CAA"),
        [
            "0 issue \"digicert.com\"",
            "0 issue \"letsencrypt.org; validationmethods=dns-01\""
        ]
    );
    assert_eq!(
        server.query("_imaps._tcp.example.test", "SRV"),
        ["0 1 993 mail.example.test."]
    );
    assert_eq!(server.query("_pop3._tcp.example.test", "SRV"), ["0 0 0 ."]);
    let tlsa = server.query("_25._tcp.mail.example.test", "TLSA");
    assert_eq!(tlsa.len(), 1);
    assert!(
        tlsa[0].replace(' ', "").eq_ignore_ascii_case(
            "311000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
        ),
        "{tlsa:?}"
    );
    assert!(
        server
            .query("old._domainkey.example.test", "TXT")
            .is_empty()
    );
    // Foreign records are untouched, byte for byte.
    assert_eq!(server.query("www.example.test", "A"), ["192.0.2.10"]);
    assert_eq!(
        server.query("google._domainkey.example.test", "TXT"),
        ["\"v=DKIM1; k=rsa; \" \"p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC\""]
    );
    assert_eq!(
        server.query("_acme-challenge.example.test", "TXT"),
        ["\"acme-token-1\""]
    );

    // Converged: read again, nothing to do, nothing sent.
    let again = plan(&p, &records).await;
    assert!(again.is_empty(), "{again:#?}");
    let sent = p.messages_sent();
    let report = p.apply(&again).await.unwrap();
    assert_eq!(report.messages, 0);
    assert_eq!(p.messages_sent(), sent);
}

async fn concurrent_change_is_a_conflict(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    let records = desired_records();

    // Someone edits an RRset mailzone read (apex TXT): "RRset exists (value dependent)"
    // no longer holds.
    let changes = plan(&p, &records).await;
    server.nsupdate(
        ZONE,
        &["update add example.test. 300 TXT \"other-verification=1\""],
    );
    let zone_before = server.axfr(ZONE);
    let err = p.apply(&changes).await.unwrap_err();
    eprintln!("conflict: {err}");
    assert!(matches!(err, DnsError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("NXRRSET"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(server.axfr(ZONE), zone_before, "nothing was changed");

    // Someone creates an RRset mailzone read as absent: "RRset does not exist" fails.
    let changes = plan(&p, &records).await;
    server.nsupdate(
        ZONE,
        &["update add _dmarc.example.test. 300 TXT \"v=DMARC1; p=none\""],
    );
    let zone_before = server.axfr(ZONE);
    let err = p.apply(&changes).await.unwrap_err();
    assert!(matches!(err, DnsError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("YXRRSET"), "{err}");
    assert_eq!(server.axfr(ZONE), zone_before, "nothing was changed");

    // Re-read and re-plan: it converges.
    let changes = plan(&p, &records).await;
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    assert_eq!(
        server.query("_dmarc.example.test", "TXT"),
        ["\"v=DMARC1; p=reject; rua=mailto:postmaster@example.test\""]
    );
    assert!(plan(&p, &records).await.is_empty());
}

async fn refused_transfer_falls_back_to_queries(kind: ServerKind) {
    let options = ServerOptions {
        allow_transfer: false,
        ..ServerOptions::default()
    };
    let Some(server) = start(kind, PREFILLED, &options) else {
        return;
    };
    assert!(
        server.try_axfr(ZONE).is_err(),
        "kdig cannot transfer either"
    );
    let p = provider(&server);
    let records = desired_records();
    let want = wanted(&records);
    let snapshot = p.read_zone(&zone(), &want).await.unwrap();
    assert_eq!(snapshot.method, ReadMethod::Queries);
    assert_eq!(snapshot.serial, server.serial(ZONE));
    assert_eq!(
        p.messages_sent(),
        2 + want.len() as u64,
        "the refused AXFR, the SOA, one query per RRset"
    );
    let spf = snapshot
        .records
        .iter()
        .find(|l| l.record.data == RData::Txt(b"v=spf1 a -all".to_vec()))
        .expect("the apex TXT was read");
    assert_eq!(
        spf.txt_strings,
        Some(vec![b"v=spf1 ".to_vec(), b"a -all".to_vec()])
    );
    assert!(
        snapshot
            .records
            .iter()
            .any(|l| l.record.name == name("old._domainkey.example.test"))
    );
    assert!(
        snapshot
            .records
            .iter()
            .any(|l| l.record.data.rtype() == RrType::Caa)
    );
    // Not asked for, so not read.
    assert!(
        !snapshot
            .records
            .iter()
            .any(|l| l.record.name == name("www.example.test"))
    );

    // The snapshot is good enough to publish from.
    let changes = diff(
        &zone(),
        &records,
        &snapshot.records,
        &ledger(),
        &RecordPurpose::ALL,
    );
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    assert_eq!(
        server.query("example.test", "MX"),
        ["10 mail.example.test."]
    );
    assert!(plan(&p, &records).await.is_empty());
}

async fn long_txt_round_trips(kind: ServerKind) {
    let Some(server) = start(kind, "", &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    let records = vec![txt(
        "big._domainkey.example.test",
        RecordPurpose::Dkim,
        &long_dkim(),
    )];
    let changes = plan(&p, &records).await;
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    let served = server.query("big._domainkey.example.test", "TXT");
    assert_eq!(joined(&served[0]).as_bytes(), long_dkim().as_slice());

    let snapshot = p.read_zone(&zone(), &[]).await.unwrap();
    let big = snapshot
        .records
        .iter()
        .find(|l| l.record.name == name("big._domainkey.example.test"))
        .unwrap();
    assert_eq!(big.record.data, RData::Txt(long_dkim()));
    let lens: Vec<usize> = big
        .txt_strings
        .as_ref()
        .unwrap()
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(lens, [255, 255, 255, 35]);

    // The same through a plain authoritative query.
    let live = query_rrset(
        server.addr,
        &name("big._domainkey.example.test"),
        "TXT",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].record.data, RData::Txt(long_dkim()));

    // Deleted again (mailzone published it): the delete repeats the strings as read.
    let ledger: BTreeSet<LedgerEntry> = [LedgerEntry {
        purpose: RecordPurpose::Dkim,
        name: name("big._domainkey.example.test"),
        data: RData::Txt(long_dkim()),
    }]
    .into();
    let changes = diff(
        &zone(),
        &[],
        &snapshot.records,
        &ledger,
        &RecordPurpose::ALL,
    );
    assert_eq!(changes.deletes.len(), 1);
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    assert!(
        server
            .query("big._domainkey.example.test", "TXT")
            .is_empty()
    );
}

async fn txt_split_by_someone_else_is_deleted_exactly(kind: ServerKind) {
    // 300 bytes split 100 + 200 by another tool: mailzone would split 255 + 45, so a delete
    // must repeat the strings as read to match (RFC 2136 §2.5.4).
    let value = "v=spf1 ".to_string() + &"ip4:192.0.2.1 ".repeat(20) + "-all";
    let (a, b) = value.split_at(100);
    let Some(server) = start(
        kind,
        &format!("@ 300 IN TXT \"{a}\" \"{b}\"\n"),
        &ServerOptions::default(),
    ) else {
        return;
    };
    let p = provider(&server);
    let records = vec![txt(ZONE, RecordPurpose::Spf, b"v=spf1 mx -all")];
    let changes = plan(&p, &records).await;
    assert_eq!(changes.deletes.len(), 1);
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    assert_eq!(server.query(ZONE, "TXT"), ["\"v=spf1 mx -all\""]);
}

async fn mx_and_its_address_in_one_message(kind: ServerKind) {
    // BIND refuses an MX whose in-zone target has no address: the address and the MX
    // travel in the same UPDATE, address first.
    let Some(server) = start(kind, "", &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    use RecordPurpose::*;
    if kind == ServerKind::Bind {
        // An MX alone, its target without an address: BIND answers REFUSED, and the
        // message says what is likely wrong instead of only blaming the key.
        let records = vec![desired(
            Mx,
            ZONE,
            RData::Mx {
                preference: 10,
                exchange: name("mx9.example.test"),
            },
        )];
        let e = p.apply(&plan(&p, &records).await).await.unwrap_err();
        assert_permanent(&e, &["REFUSED"]);
        assert!(
            e.to_string()
                .contains("no A or AAAA record: check mx9.example.test."),
            "{e}"
        );
    }
    let records = vec![
        desired(
            Mx,
            ZONE,
            RData::Mx {
                preference: 10,
                exchange: name("mx1.example.test"),
            },
        ),
        desired(
            Srv,
            "_submissions._tcp.example.test",
            RData::Srv {
                priority: 0,
                weight: 1,
                port: 465,
                target: name("mx1.example.test"),
            },
        ),
        desired(
            Address,
            "mx1.example.test",
            RData::Aaaa("2001:db8::1".parse().unwrap()),
        ),
        desired(
            Address,
            "mx1.example.test",
            RData::A(Ipv4Addr::new(192, 0, 2, 1)),
        ),
    ];
    let changes = plan(&p, &records).await;
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    assert_eq!(server.query(ZONE, "MX"), ["10 mx1.example.test."]);
    assert_eq!(server.query("mx1.example.test", "A"), ["192.0.2.1"]);
    assert_eq!(server.query("mx1.example.test", "AAAA"), ["2001:db8::1"]);

    // Moving the MX to a new host (new address, old one deleted) in one message too.
    let records = vec![
        desired(
            Mx,
            ZONE,
            RData::Mx {
                preference: 20,
                exchange: name("mx2.example.test"),
            },
        ),
        desired(
            Address,
            "mx2.example.test",
            RData::A(Ipv4Addr::new(192, 0, 2, 2)),
        ),
    ];
    let snapshot = p.read_zone(&zone(), &[]).await.unwrap();
    let ledger: BTreeSet<LedgerEntry> = snapshot
        .records
        .iter()
        .filter(|l| {
            l.record.name.as_str().starts_with("mx1") || l.record.name.as_str().starts_with("_sub")
        })
        .map(|l| LedgerEntry {
            purpose: if l.record.data.rtype() == RrType::Srv {
                Srv
            } else {
                Address
            },
            name: l.record.name.clone(),
            data: l.record.data.clone(),
        })
        .collect();
    let changes = diff(
        &zone(),
        &records,
        &snapshot.records,
        &ledger,
        &RecordPurpose::ALL,
    );
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    assert_eq!(server.query(ZONE, "MX"), ["20 mx2.example.test."]);
    assert!(server.query("mx1.example.test", "A").is_empty());
}

async fn udp_protocol_falls_back_to_tcp_for_large_messages(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let p = provider_with(server.addr, Some(&server.key), Transport::Udp);
    assert_eq!(p.serial(&zone()).await.unwrap(), server.serial(ZONE));
    // The desired records with an 800-byte DKIM key and more do not fit in 1232 bytes: the
    // UPDATE goes over TCP, still one message.
    let mut records = desired_records();
    records.push(txt(
        "mz2._domainkey.example.test",
        RecordPurpose::Dkim,
        &long_dkim(),
    ));
    let changes = plan(&p, &records).await;
    let report = p.apply(&changes).await.unwrap();
    assert_eq!(report.messages, 1);
    assert_eq!(report.serial, Some(server.serial(ZONE)));
    assert!(plan(&p, &records).await.is_empty());
    // A small update over UDP.
    let records = vec![txt(
        "_dmarc.example.test",
        RecordPurpose::Dmarc,
        b"v=DMARC1; p=none",
    )];
    let changes = diff(
        &zone(),
        &records,
        &p.read_zone(&zone(), &[]).await.unwrap().records,
        &ledger(),
        &[RecordPurpose::Dmarc],
    );
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    assert_eq!(
        server.query("_dmarc.example.test", "TXT"),
        ["\"v=DMARC1; p=none\""]
    );
}

async fn oversized_update_is_split_by_rrset(kind: ServerKind) {
    // 100 DKIM keys of 800 bytes: about 85 kB, more than one TCP message (65535 bytes).
    let Some(server) = start(kind, "", &ServerOptions::default()) else {
        return;
    };
    let p = provider(&server);
    let records: Vec<DesiredRecord> = (0..100)
        .map(|i| {
            txt(
                &format!("k{i}._domainkey.example.test"),
                RecordPurpose::Dkim,
                &long_dkim(),
            )
        })
        .collect();
    let changes = plan(&p, &records).await;
    let report = p.apply(&changes).await.unwrap();
    assert_eq!(report.messages, 2);
    assert_eq!(report.serial, Some(server.serial(ZONE)));
    for i in [0, 57, 99] {
        let served = server.query(&format!("k{i}._domainkey.example.test"), "TXT");
        assert_eq!(joined(&served[0]).as_bytes(), long_dkim().as_slice());
    }
    // The transfer now spans several messages, each verified (RFC 8945 §5.3.1).
    let before = p.messages_sent();
    assert!(plan(&p, &records).await.is_empty());
    assert_eq!(p.messages_sent(), before + 1);
    assert_eq!(
        server.axfr(ZONE).len(),
        100 + 3,
        "SOA, NS, ns1 A and the keys"
    );
}

async fn hmac_sha512_keys_work(kind: ServerKind) {
    if !kind.available() {
        return;
    }
    let mut key = TsigKey::generate("sha512-key");
    key.algorithm = "hmac-sha512".into();
    let server = DnsServer::start(
        kind,
        &[ZoneSpec::new(ZONE, PREFILLED)],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    let p = provider(&server);
    assert_eq!(
        p.config().tsig.as_ref().unwrap().algorithm,
        TsigAlgorithm::HmacSha512
    );
    let records = desired_records();
    let changes = plan(&p, &records).await;
    assert_eq!(p.apply(&changes).await.unwrap().messages, 1);
    assert!(plan(&p, &records).await.is_empty());
}

async fn authoritative_queries(kind: ServerKind) {
    let Some(server) = start(kind, PREFILLED, &ServerOptions::default()) else {
        return;
    };
    let t = Duration::from_secs(5);
    assert_eq!(
        query_serial(server.addr, &zone(), t).await.unwrap(),
        server.serial(ZONE)
    );
    let txt = query_rrset(server.addr, &zone(), "TXT", t).await.unwrap();
    assert_eq!(txt.len(), 2);
    let www = query_rrset(server.addr, &name("www.example.test"), "A", t)
        .await
        .unwrap();
    assert_eq!(www[0].record.data, RData::A(Ipv4Addr::new(192, 0, 2, 10)));
    // NODATA and NXDOMAIN are empty, not errors.
    assert!(
        query_rrset(server.addr, &name("www.example.test"), "TXT", t)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        query_rrset(server.addr, &name("nope.example.test"), "A", t)
            .await
            .unwrap()
            .is_empty()
    );
    // A zone the server does not serve.
    let e = query_serial(server.addr, &name("example.org"), t)
        .await
        .unwrap_err();
    assert_permanent(&e, &["REFUSED", "not authoritative"]);
    let e = query_rrset(server.addr, &name("www.example.org"), "A", t)
        .await
        .unwrap_err();
    assert_permanent(&e, &["REFUSED", "not authoritative"]);
}

macro_rules! for_each_server {
    ($($test:ident),* $(,)?) => {
        mod knot {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(mailzone_testkit::ServerKind::Knot).await
                }
            )*
        }
        mod bind {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(mailzone_testkit::ServerKind::Bind).await
                }
            )*
        }
    };
}

for_each_server!(
    read_zone_by_transfer,
    update_survives_a_closed_kept_connection,
    transfer_reuses_a_kept_connection,
    apply_adds_replaces_and_deletes_in_one_message,
    concurrent_change_is_a_conflict,
    wrong_tsig_secret_is_permanent_and_secret_free,
    update_not_allowed_is_permanent,
    refused_transfer_falls_back_to_queries,
    stopped_server_is_transient,
    long_txt_round_trips,
    txt_split_by_someone_else_is_deleted_exactly,
    mx_and_its_address_in_one_message,
    udp_protocol_falls_back_to_tcp_for_large_messages,
    oversized_update_is_split_by_rrset,
    hmac_sha512_keys_work,
    authoritative_queries,
    unknown_zone_is_permanent,
);
