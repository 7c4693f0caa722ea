//! `mailzone check`'s live TLS flags end to end, through the binary: a private Postfix on a
//! loopback port (`--port smtp=…`) with a certificate from a CA made for the test, the zone
//! served by Knot. `--ca-file` makes the certificate trusted, `--no-connect` opens no
//! connection, a bad `--port` is a usage error.
//!
//! Skipped when Knot or Postfix is missing, or when not root (a failure under
//! `MAILZONE_REQUIRE_TOOLS=1`).

use std::path::Path;
use std::process::{Command, Output};

use mailzone_testkit::{
    DnsServer, Listener, ListenerTls, Postfix, ServerKind, ServerOptions, TsigKey, ZoneSpec,
    free_port, postfix_usable,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const CONFIG: &str = r#"
[server]
hostname = "mail.live.test"
ipv4 = ["192.0.2.10"]

[[server.mailExchangers]]
hostname = "mail.live.test"
priority = 10

[server.services]
imap = { enabled = false }
pop3 = { enabled = false }
submission = { enabled = false }
jmap = { enabled = false }
caldav = { enabled = false }
carddav = { enabled = false }

[domain."live.test"]
"#;

/// The CA's PEM, and the key + leaf PEM it issued for mail.live.test.
fn pki() -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mailzone CLI live TLS CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["mail.live.test".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        format!("{}{}", key.serialize_pem(), leaf.pem()),
    )
}

fn check(dir: &Path, server: &DnsServer, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["check", "--config"])
        .arg(dir.join("mailzone.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--nameserver", &server.addr.to_string()])
        .args(["--no-fetch", "--format", "json"])
        .args(extra)
        .env_remove("MAILZONE_CONFIG")
        .output()
        .unwrap()
}

/// The `tls-*` codes of the JSON report.
fn tls_codes(out: &Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let mut codes: Vec<String> = report["domains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .filter(|c| c.starts_with("tls-"))
        .map(str::to_string)
        .collect();
    codes.sort();
    codes
}

#[test]
fn ca_file_no_connect_and_port_flags() {
    if !ServerKind::Knot.available() || !postfix_usable() {
        return;
    }
    let (ca_pem, leaf_pem) = pki();
    let postfix = Postfix::start(&[Listener {
        tls: ListenerTls::Starttls,
        key_and_chain_pem: Some(leaf_pem),
    }])
    .unwrap();
    let server = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(
            "live.test",
            "@ 300 IN MX 10 mail\nmail 300 IN A 127.0.0.1\n",
        )],
        &TsigKey::generate("mailzone"),
        &ServerOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), CONFIG).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let smtp = format!("smtp={}", postfix.ports[0]);
    let ca = ca_file.to_str().unwrap();

    let trusted = check(dir.path(), &server, &["--port", &smtp, "--ca-file", ca]);
    assert_eq!(
        tls_codes(&trusted),
        Vec::<String>::new(),
        "{}",
        postfix.log()
    );

    let untrusted = check(dir.path(), &server, &["--port", &smtp]);
    assert_eq!(tls_codes(&untrusted), ["tls-certificate-untrusted"]);
    assert_eq!(untrusted.status.code(), Some(1));

    let closed = format!("smtp={}", free_port());
    let refused = check(dir.path(), &server, &["--port", &closed, "--ca-file", ca]);
    assert_eq!(tls_codes(&refused), ["tls-connect-failed"]);
    let offline = check(
        dir.path(),
        &server,
        &["--port", &closed, "--ca-file", ca, "--no-connect"],
    );
    assert_eq!(tls_codes(&offline), Vec::<String>::new());

    let bad = check(dir.path(), &server, &["--port", "pop3=1"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown service \"pop3\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let not_pem = check(dir.path(), &server, &["--ca-file", "/dev/null"]);
    assert!(!not_pem.status.success());
    assert!(String::from_utf8_lossy(&not_pem.stderr).contains("--ca-file /dev/null"));
}
