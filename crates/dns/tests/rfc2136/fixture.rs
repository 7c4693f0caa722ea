//! What every test of the RFC 2136 provider starts from: the zone, its prefilled records,
//! the desired records and ledger, the provider and the server.

use super::*;

pub(crate) const ZONE: &str = "example.test";

/// A zone as a real one looks before mailzone touches it: foreign records mailzone must
/// leave alone, a split SPF record, a wildcard, an old MX and a DKIM key mailzone published
/// earlier (in the ledger).
pub(crate) const PREFILLED: &str = r#"
@                 300 IN TXT "google-site-verification=abc123"
@                 300 IN TXT "v=spf1 " "a -all"
@                 300 IN MX  10 old-mx.example.test.
old-mx            300 IN A   192.0.2.20
www               300 IN A   192.0.2.10
google._domainkey 300 IN TXT "v=DKIM1; k=rsa; " "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"
old._domainkey    300 IN TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
@                 300 IN CAA 0 issue "digicert.com"
_acme-challenge   300 IN TXT "acme-token-1"
*.wild            300 IN A   192.0.2.99
"#;

pub(crate) fn name(s: &str) -> Name {
    Name::owner(s).unwrap()
}

pub(crate) fn zone() -> Name {
    name(ZONE)
}

pub(crate) fn tsig(key: &TsigKey) -> TsigConfig {
    TsigConfig::from_base64(
        key.name.clone(),
        key.algorithm.parse().unwrap(),
        &key.secret_base64,
    )
    .unwrap()
}

pub(crate) fn provider_with(
    server: SocketAddr,
    key: Option<&TsigKey>,
    protocol: Transport,
) -> Rfc2136Provider {
    Rfc2136Provider::new(Rfc2136Config {
        server,
        protocol,
        tsig: key.map(tsig),
        timeout: Duration::from_secs(5),
    })
}

pub(crate) fn provider(server: &DnsServer) -> Rfc2136Provider {
    provider_with(server.addr, Some(&server.key), Transport::Tcp)
}

pub(crate) fn start(kind: ServerKind, records: &str, options: &ServerOptions) -> Option<DnsServer> {
    if !kind.available() {
        return None;
    }
    let key = TsigKey::generate("mailzone-key");
    Some(
        DnsServer::start(kind, &[ZoneSpec::new(ZONE, records)], &key, options)
            .unwrap_or_else(|e| panic!("{kind} does not start: {e}")),
    )
}

pub(crate) fn desired(t: RecordPurpose, owner: &str, data: RData) -> DesiredRecord {
    DesiredRecord {
        purpose: t,
        record: Record {
            name: name(owner),
            ttl: 300,
            data,
        },
    }
}

pub(crate) fn txt(owner: &str, t: RecordPurpose, value: &[u8]) -> DesiredRecord {
    desired(t, owner, RData::Txt(value.to_vec()))
}

/// An 800-byte TXT value, the size of a DKIM record of a 4096-bit RSA key.
pub(crate) fn long_dkim() -> Vec<u8> {
    let mut v = b"v=DKIM1; k=rsa; p=".to_vec();
    while v.len() < 800 {
        v.extend_from_slice(b"MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEA");
    }
    v.truncate(800);
    v
}

/// What the planner would want for the zone.
pub(crate) fn desired_records() -> Vec<DesiredRecord> {
    use RecordPurpose::*;
    vec![
        desired(
            Mx,
            ZONE,
            RData::Mx {
                preference: 10,
                exchange: name("mail.example.test"),
            },
        ),
        desired(
            Address,
            "mail.example.test",
            RData::A(Ipv4Addr::new(192, 0, 2, 25)),
        ),
        desired(
            Address,
            "mail.example.test",
            RData::Aaaa("2001:db8::25".parse::<Ipv6Addr>().unwrap()),
        ),
        txt(ZONE, Spf, b"v=spf1 mx -all"),
        txt(
            "_dmarc.example.test",
            Dmarc,
            b"v=DMARC1; p=reject; rua=mailto:postmaster@example.test",
        ),
        txt("mz1._domainkey.example.test", Dkim, &long_dkim()),
        desired(
            Caa,
            ZONE,
            RData::Caa {
                flags: 0,
                tag: "issue".into(),
                value: "letsencrypt.org; validationmethods=dns-01".into(),
            },
        ),
        desired(
            Srv,
            "_imaps._tcp.example.test",
            RData::Srv {
                priority: 0,
                weight: 1,
                port: 993,
                target: name("mail.example.test"),
            },
        ),
        desired(
            Srv,
            "_pop3._tcp.example.test",
            RData::Srv {
                priority: 0,
                weight: 0,
                port: 0,
                target: Name::root(),
            },
        ),
        desired(
            Tlsa,
            "_25._tcp.mail.example.test",
            RData::Tlsa {
                usage: 3,
                selector: 1,
                matching_type: 1,
                data: (0u8..32).collect(),
            },
        ),
    ]
}

/// mailzone published `old._domainkey` earlier: it may be deleted.
pub(crate) fn ledger() -> BTreeSet<LedgerEntry> {
    [LedgerEntry {
        purpose: RecordPurpose::Dkim,
        name: name("old._domainkey.example.test"),
        data: RData::Txt(
            b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_vec(),
        ),
    }]
    .into()
}

pub(crate) fn wanted(records: &[DesiredRecord]) -> Vec<(Name, RrType)> {
    let mut w: Vec<(Name, RrType)> = records
        .iter()
        .map(|d| (d.record.name.clone(), d.record.data.rtype()))
        .collect();
    w.push((name("old._domainkey.example.test"), RrType::Txt));
    w.sort();
    w.dedup();
    w
}

pub(crate) async fn plan(provider: &Rfc2136Provider, records: &[DesiredRecord]) -> ChangeSet {
    let snapshot = provider.read_zone(&zone(), &wanted(records)).await.unwrap();
    diff(
        &zone(),
        records,
        &snapshot.records,
        &ledger(),
        &RecordPurpose::ALL,
    )
}

/// kdig's TXT presentation (`"a" "b"`) joined back into the value.
pub(crate) fn joined(presentation: &str) -> String {
    let mut out = String::new();
    let mut in_quotes = false;
    for c in presentation.chars() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if in_quotes => out.push(c),
            _ => {}
        }
    }
    out
}

pub(crate) fn assert_permanent(e: &DnsError, needles: &[&str]) {
    eprintln!("permanent: {e}");
    assert_eq!(e.class(), ErrorClass::Permanent, "{e:?}");
    assert!(matches!(e, DnsError::Permanent { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        needles.iter().any(|n| text.contains(n)),
        "expected one of {needles:?} in: {text}"
    );
}
