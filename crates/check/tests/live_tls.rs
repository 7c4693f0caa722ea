//! Live TLS against a real Postfix (Debian's package, a private instance on loopback ports)
//! with certificates from a CA made for the test, the zones served by a real Knot: a good
//! server (SMTP, submission on 465 and 587, IMAP on 993), an expired certificate, a wrong
//! name, a self-signed certificate with and without a DANE-EE record, STARTTLS disabled, a
//! server speaking only TLS 1.0/1.1, a closed port. IMAP has no Postfix: the test's own
//! TLS listener greets as an IMAP server does.
//!
//! Skipped when Knot or Postfix is missing, or when not root (a failure under
//! `MAILZONE_REQUIRE_TOOLS=1`).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use mailzone_check::live_tls::{ProbeCache, ServicePorts};
use mailzone_check::{CheckOptions, DnsLookup, DomainContext, Finding, Lookup, Severity};
use mailzone_records::{Config, Name};
use mailzone_testkit::{
    DnsServer, Listener, ListenerTls, Postfix, ServerKind, ServerOptions, TsigKey, ZoneSpec,
    free_port, postfix_usable,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The test CA and the certificates it issues.
struct Pki {
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mailzone live TLS test CA");
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Key and leaf PEM for `names`, issued by the CA; `expired`: valid in 2020 only.
    fn leaf(&self, names: &[&str], expired: bool) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        format!("{}{}", key.serialize_pem(), cert.pem())
    }

    /// The same, with the CA certificate after the leaf (the chain a server presents).
    fn leaf_with_ca(&self, names: &[&str]) -> String {
        let ca = pem::encode(&pem::Pem::new("CERTIFICATE", self.ca_der.to_vec()));
        format!("{}{ca}", self.leaf(names, false))
    }
}

fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A self-signed key and certificate for `names`, and the SHA-256 of its key (`3 1 1`).
fn self_signed(names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let spki = mailzone_records::tlsa::parse_chain(cert.pem().as_bytes())
        .unwrap()
        .leaf;
    let hex: String = spki.iter().map(|b| format!("{b:02x}")).collect();
    (format!("{}{}", key.serialize_pem(), cert.pem()), hex)
}

/// A TLS listener on loopback that greets as an IMAP server (`* OK`), for port 993.
async fn imap_listener(pem: &str) -> u16 {
    let blocks = pem::parse_many(pem).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::try_from(blocks[0].contents().to_vec()).unwrap();
    let chain: Vec<CertificateDer<'static>> = blocks[1..]
        .iter()
        .map(|b| CertificateDer::from(b.contents().to_vec()))
        .collect();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls
                        .write_all(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
                        .await;
                    let mut sink = [0u8; 512];
                    let _ = tls.read(&mut sink).await;
                }
            });
        }
    });
    port
}

/// One domain to check: its config, the zone lines Knot serves, where its ports go.
struct Case {
    domain: &'static str,
    config: Config,
    options: CheckOptions,
}

fn config(domain: &str, services: &str, extra: &str) -> Config {
    let text = format!(
        r#"
[server]
hostname = "mail.{domain}"
ipv4 = ["192.0.2.10"]

[[server.mailExchangers]]
hostname = "mail.{domain}"
priority = 10

[server.services]
{services}

[domain."{domain}"]
{extra}
"#
    );
    mailzone_records::config::parse(&text, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("{domain}: {e}\n{text}"))
}

const NO_SERVICES: &str = "imap = { enabled = false }\npop3 = { enabled = false }\n\
    submission = { enabled = false }\njmap = { enabled = false }\n\
    caldav = { enabled = false }\ncarddav = { enabled = false }";

fn options(ca: &CertificateDer<'static>, ports: ServicePorts) -> CheckOptions {
    CheckOptions {
        fetch_mta_sts: false,
        connect_timeout: Duration::from_secs(5),
        extra_roots: vec![ca.clone()],
        service_ports: ports,
        ..CheckOptions::default()
    }
}

fn smtp_on(port: u16) -> ServicePorts {
    ServicePorts {
        smtp: port,
        ..ServicePorts::default()
    }
}

async fn findings(case: &Case, lookup: &dyn Lookup) -> Vec<Finding> {
    let name = Name::host(case.domain).unwrap();
    let ctx = DomainContext {
        server: &case.config.server,
        domain: case.config.domain(&name).unwrap(),
        desired: &[],
        dkim_keys: &[],
        tlsa: None,
        lookup,
        options: &case.options,
    };
    mailzone_check::live_tls::check(&ctx).await
}

fn knot(zones: &[ZoneSpec]) -> DnsServer {
    DnsServer::start(
        ServerKind::Knot,
        zones,
        &TsigKey::generate("mailzone"),
        &ServerOptions::default(),
    )
    .unwrap_or_else(|e| panic!("Knot does not start: {e}"))
}

fn codes(findings: &[Finding]) -> Vec<(&'static str, Severity)> {
    let mut c: Vec<_> = findings.iter().map(|f| (f.code, f.severity)).collect();
    c.sort();
    c
}

fn available() -> bool {
    ServerKind::Knot.available() && postfix_usable()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_servers_pass_and_a_shared_host_is_probed_once() {
    if !available() {
        return;
    }
    let pki = Pki::new();
    let good = pki.leaf(&["mail.good.test"], false);
    let postfix = Postfix::start(&[
        Listener {
            tls: ListenerTls::Starttls,
            key_and_chain_pem: Some(good.clone()),
        },
        Listener {
            tls: ListenerTls::Implicit,
            key_and_chain_pem: Some(good.clone()),
        },
        Listener {
            tls: ListenerTls::Starttls,
            key_and_chain_pem: Some(good.clone()),
        },
    ])
    .unwrap();
    let imaps = imap_listener(&good).await;
    let server = knot(&[
        ZoneSpec::new(
            "good.test",
            "@ 300 IN MX 10 mail\nmail 300 IN A 127.0.0.1\n",
        ),
        ZoneSpec::new("also.test", "@ 300 IN MX 10 mail.good.test.\n"),
    ]);
    let lookup = DnsLookup::with_servers(vec![server.addr], Duration::from_secs(3));
    let ports = ServicePorts {
        smtp: postfix.ports[0],
        submissions: postfix.ports[1],
        submission: postfix.ports[2],
        imaps,
    };
    let services = "imap = { cleartext = false }\npop3 = { enabled = false }\n\
        submission = { cleartext = true }\njmap = { enabled = false }\n\
        caldav = { enabled = false }\ncarddav = { enabled = false }";
    let opts = options(&pki.ca_der, ports);
    // One server, two domains: also.test's MX is mail.good.test too.
    let both = mailzone_records::config::parse(
        &format!(
            "[server]\nhostname = \"mail.good.test\"\nipv4 = [\"192.0.2.10\"]\n\
             [[server.mailExchangers]]\nhostname = \"mail.good.test\"\npriority = 10\n\
             [server.services]\n{services}\n[domain.\"good.test\"]\n[domain.\"also.test\"]\n"
        ),
        std::path::Path::new("."),
    )
    .unwrap();
    let cases: Vec<Case> = ["good.test", "also.test"]
        .into_iter()
        .map(|domain| Case {
            domain,
            config: both.clone(),
            options: opts.clone(), // clones share the run's probe cache
        })
        .collect();
    let started = std::time::Instant::now();
    let all = futures::future::join_all(cases.iter().map(|c| findings(c, &lookup))).await;
    for (case, found) in cases.iter().zip(&all) {
        assert!(
            found.is_empty(),
            "{}: {found:#?}\n{}",
            case.domain,
            postfix.log()
        );
    }
    // MX (port 25), 465, 587, 993 of mail.good.test: four probes for two domains.
    assert_eq!(opts.live_tls_cache.len(), 4);
    // Postfix logs through postlogd, a moment later.
    let handshakes = || postfix.log().matches("TLS connection established").count();
    mailzone_testkit::poll_until(Duration::from_secs(3), || handshakes() >= 3);
    std::thread::sleep(Duration::from_millis(200));
    let log = postfix.log();
    assert_eq!(
        handshakes(),
        3,
        "each Postfix endpoint handshaken once:\n{log}"
    );
    assert!(log.contains("TLSv1.3"), "{log}");
    eprintln!("two domains, four endpoints: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_server_has_its_finding() {
    if !available() {
        return;
    }
    let pki = Pki::new();
    let (self_signed_pem, self_signed_digest) = self_signed(&["localhost"]);
    let (imap_pem, _) = self_signed(&["imap.elsewhere.example"]);
    let listeners = [
        (
            "expired",
            ListenerTls::Starttls,
            Some(pki.leaf(&["mail.expired.test"], true)),
        ),
        (
            "wrongname",
            ListenerTls::Starttls,
            Some(pki.leaf(&["other.example.net"], false)),
        ),
        (
            "withca",
            ListenerTls::Starttls,
            Some(pki.leaf_with_ca(&["other.example.net"])),
        ),
        ("selfsigned", ListenerTls::Starttls, Some(self_signed_pem)),
        ("plain", ListenerTls::Off, None),
        (
            "old",
            ListenerTls::OldVersionsOnly,
            Some(pki.leaf(&["mail.old.test"], false)),
        ),
    ];
    let postfix = Postfix::start(
        &listeners
            .iter()
            .map(|(_, tls, pem)| Listener {
                tls: *tls,
                key_and_chain_pem: pem.clone(),
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let port = |name: &str| postfix.ports[listeners.iter().position(|l| l.0 == name).unwrap()];
    let imaps = imap_listener(&imap_pem).await;
    let closed = free_port();
    let mx = "@ 300 IN MX 10 mail\nmail 300 IN A 127.0.0.1\n";
    let other_digest = "00".repeat(32);
    // DANE-TA `2 0 1`: the SHA-256 of the whole CA certificate, which Postfix presents
    // after the leaf.
    let ca_digest: String = sha256_hex(&pki.ca_der);
    let server = knot(&[
        ZoneSpec::new("expired.test", mx),
        ZoneSpec::new("testing.test", "@ 300 IN MX 10 mail.expired.test.\n"),
        ZoneSpec::new("wrongname.test", mx),
        ZoneSpec::new(
            "dane.test",
            &format!("{mx}_25._tcp.mail 300 IN TLSA 3 1 1 {self_signed_digest}\n"),
        ),
        ZoneSpec::new("selfsigned.test", mx),
        ZoneSpec::new(
            "danewrong.test",
            &format!("{mx}_25._tcp.mail 300 IN TLSA 3 1 1 {other_digest}\n"),
        ),
        ZoneSpec::new("plain.test", mx),
        ZoneSpec::new("old.test", mx),
        ZoneSpec::new("closed.test", mx),
        ZoneSpec::new("imap.test", "mail 300 IN A 127.0.0.1\n"),
        ZoneSpec::new(
            "doc.test",
            "@ 300 IN MX 10 mail\nmail 300 IN A 192.0.2.25\n",
        ),
        ZoneSpec::new(
            "danetta.test",
            &format!("{mx}_25._tcp.mail 300 IN TLSA 2 0 1 {ca_digest}\n"),
        ),
    ]);
    let lookup = DnsLookup::with_servers(vec![server.addr], Duration::from_secs(3));
    let case = |domain: &'static str, extra: &str, services: &str, ports: ServicePorts| Case {
        domain,
        config: config(domain, services, extra),
        options: options(&pki.ca_der, ports),
    };
    let imap_only = "imap = { cleartext = false }\npop3 = { enabled = false }\n\
        submission = { enabled = false }\njmap = { enabled = false }\n\
        caldav = { enabled = false }\ncarddav = { enabled = false }";
    let cases = vec![
        case("expired.test", "", NO_SERVICES, smtp_on(port("expired"))),
        case(
            "testing.test",
            "mtaSts = { mode = \"testing\" }",
            NO_SERVICES,
            smtp_on(port("expired")),
        ),
        case(
            "wrongname.test",
            "",
            NO_SERVICES,
            smtp_on(port("wrongname")),
        ),
        case("dane.test", "", NO_SERVICES, smtp_on(port("selfsigned"))),
        case(
            "selfsigned.test",
            "",
            NO_SERVICES,
            smtp_on(port("selfsigned")),
        ),
        case(
            "danewrong.test",
            "",
            NO_SERVICES,
            smtp_on(port("selfsigned")),
        ),
        case("plain.test", "", NO_SERVICES, smtp_on(port("plain"))),
        case("old.test", "", NO_SERVICES, smtp_on(port("old"))),
        case("closed.test", "", NO_SERVICES, smtp_on(closed)),
        case(
            "imap.test",
            "",
            imap_only,
            ServicePorts {
                imaps,
                ..ServicePorts::default()
            },
        ),
        case("doc.test", "", NO_SERVICES, smtp_on(port("plain"))),
        // Trusted through DANE-TA alone (no extra root), so the name is checked and, with
        // DANE, a mismatch is an error even though MTA-STS only tests.
        Case {
            options: CheckOptions {
                extra_roots: Vec::new(),
                ..options(&pki.ca_der, smtp_on(port("withca")))
            },
            ..case(
                "danetta.test",
                "mtaSts = { mode = \"testing\" }",
                NO_SERVICES,
                smtp_on(port("withca")),
            )
        },
    ];
    let started = std::time::Instant::now();
    let all = futures::future::join_all(cases.iter().map(|c| findings(c, &lookup))).await;
    eprintln!(
        "{} domains checked live in {:?}",
        cases.len(),
        started.elapsed()
    );
    let of = |domain: &str| {
        let i = cases.iter().position(|c| c.domain == domain).unwrap();
        (&all[i], codes(&all[i]))
    };
    use Severity::{Error, Warning};
    let expect = [
        ("expired.test", vec![("tls-certificate-expired", Error)]),
        // MTA-STS in testing mode: senders still deliver, a warning.
        ("testing.test", vec![("tls-certificate-expired", Warning)]),
        (
            "wrongname.test",
            vec![("tls-certificate-name-mismatch", Error)],
        ),
        // A matching DANE-EE record: the self-signed, misnamed certificate is fine.
        ("dane.test", vec![]),
        (
            "selfsigned.test",
            vec![
                ("tls-certificate-name-mismatch", Error),
                ("tls-certificate-untrusted", Error),
            ],
        ),
        (
            "danewrong.test",
            vec![
                ("tls-certificate-name-mismatch", Error),
                ("tls-certificate-untrusted", Error),
                ("tls-dane-mismatch", Error),
            ],
        ),
        ("plain.test", vec![("tls-starttls-missing", Error)]),
        ("old.test", vec![("tls-version-old", Error)]),
        ("closed.test", vec![("tls-connect-failed", Error)]),
        (
            "imap.test",
            vec![
                ("tls-certificate-name-mismatch", Error),
                ("tls-certificate-untrusted", Error),
            ],
        ),
        // A documentation address is never connected to.
        ("doc.test", vec![]),
        (
            "danetta.test",
            vec![("tls-certificate-name-mismatch", Error)],
        ),
    ];
    for (domain, wanted) in expect {
        let (found, got) = of(domain);
        assert_eq!(got, wanted, "{domain}: {found:#?}\n{}", postfix.log());
    }
    let (found, _) = of("danewrong.test");
    let dane = found
        .iter()
        .find(|f| f.code == "tls-dane-mismatch")
        .unwrap();
    assert_eq!(dane.name, "_25._tcp.mail.danewrong.test.");
    assert!(
        dane.expected
            .as_deref()
            .unwrap()
            .ends_with(&format!("3 1 1 {self_signed_digest}")),
        "{dane:#?}"
    );
    let (found, _) = of("imap.test");
    assert!(
        found
            .iter()
            .all(|f| f.purpose == Some(mailzone_records::RecordPurpose::Srv)
                && f.message.contains("IMAP")),
        "{found:#?}"
    );
    let (found, _) = of("expired.test");
    assert_eq!(
        found[0].seen.as_deref(),
        Some("valid from 2020-01-01 to 2020-12-31")
    );
    let doc = cases.iter().find(|c| c.domain == "doc.test").unwrap();
    assert!(
        doc.options.live_tls_cache.is_empty(),
        "192.0.2.25 was probed"
    );
}

#[tokio::test]
async fn no_connect_opens_nothing() {
    // A listener that counts connections; the zone points the MX at it.
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let lookup = mailzone_check::lookup::ZoneLookup::new(
        "example.test. 300 IN MX 10 mail.example.test.\n\
         mail.example.test. 300 IN A 127.0.0.1\n",
    );
    let case = Case {
        domain: "example.test",
        config: config("example.test", NO_SERVICES, ""),
        options: CheckOptions {
            live_tls: false,
            service_ports: smtp_on(port),
            ..CheckOptions::default()
        },
    };
    assert!(findings(&case, &lookup).await.is_empty());
    assert!(case.options.live_tls_cache.is_empty());
    assert!(listener.accept().is_err(), "a connection was opened");
    // The same with live TLS on: the listener sees the connection (and says nothing).
    let on = Case {
        options: CheckOptions {
            connect_timeout: Duration::from_millis(500),
            ..case.options.clone()
        },
        ..case
    };
    let on = Case {
        options: CheckOptions {
            live_tls: true,
            live_tls_cache: ProbeCache::default(),
            ..on.options
        },
        ..on
    };
    let found = findings(&on, &lookup).await;
    assert_eq!(
        codes(&found),
        [("tls-handshake-failed", Severity::Error)],
        "{found:#?}"
    );
    assert!(listener.accept().is_ok());
}
