//! "Test connection" (`engine::connect::test_dns_server`) against a real Knot: the right
//! key reads the zone's serial; a wrong secret, an unknown key name and a wrong algorithm
//! are the TSIG errors Knot gives (BADSIG, BADKEY) without the secret in the message; a
//! zone Knot does not serve, a port nobody listens on and a host that does not resolve are
//! each named for what they are, with the class a publication would get.

use std::path::Path;

use mailzone_engine::connect::test_dns_server;
use mailzone_engine::error::FailureClass;
use mailzone_engine::{EngineError, LoadedConfig, load_config};
use mailzone_records::Name;
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const ZONE: &str = "example.test";

fn start_knot() -> Option<DnsServer> {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return None;
    }
    let key = TsigKey::generate("mailzone");
    let zone = ZoneSpec::new(ZONE, "@ 300 IN TXT \"v=spf1 mx -all\"");
    Some(DnsServer::start(ServerKind::Knot, &[zone], &key, &ServerOptions::default()).unwrap())
}

/// A config whose DNS server `primary` has the given `[dnsServer.primary]` body and
/// publishes `example.test`, loaded from `dir`.
fn load(dir: &Path, server_table: &str) -> LoadedConfig {
    let text = format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[dnsServer.primary]
kind = "rfc2136"
timeout = "2s"
{server_table}

[domain."{ZONE}"]
dnsManagement = {{ automatic = {{ dnsServer = "primary" }} }}
"#
    );
    let path = dir.join("mailzone.toml");
    std::fs::write(&path, text).unwrap();
    load_config(&path).unwrap()
}

/// `host`, `port` and the TSIG settings of `knot`, with `key_name`, `secret` and
/// `algorithm` given.
fn knot_table(knot: &DnsServer, key_name: &str, secret: &str, algorithm: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {port}\nkeyName = \"{key_name}\"\nkey = \"{secret}\"\nalgorithm = \"{algorithm}\"",
        port = knot.addr.port(),
    )
}

async fn test(
    dir: &Path,
    loaded: &LoadedConfig,
    zone: Option<&str>,
) -> Result<mailzone_engine::connect::ConnectionTest, EngineError> {
    let zone = zone.map(|z| Name::host(z).unwrap());
    test_dns_server(loaded, "primary", zone.as_ref(), &dir.join("state")).await
}

/// The failure's class and message, checked to hold none of `secrets`.
fn failure(
    result: Result<mailzone_engine::connect::ConnectionTest, EngineError>,
    secrets: &[&str],
) -> (FailureClass, String) {
    let e = result.expect_err("the test fails");
    let message = e.to_string();
    for secret in secrets {
        assert!(
            !message.contains(secret),
            "a secret in the message: {message}"
        );
    }
    (e.class(), message)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_right_key_reads_the_serial() {
    let Some(knot) = start_knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let table = knot_table(
        &knot,
        &knot.key.name,
        &knot.key.secret_base64,
        "hmac-sha256",
    );
    let loaded = load(dir.path(), &table);
    // No zone given: the zone of the domain that publishes through `primary`.
    let ok = test(dir.path(), &loaded, None).await.unwrap();
    assert_eq!(ok.dns_server, "primary");
    assert_eq!(ok.zone.as_str(), ZONE);
    assert_eq!(ok.serial, Some(knot.serial(ZONE)));
    assert_eq!(ok.endpoint, knot.addr.to_string());
    assert_eq!(ok.read_by, "transfer");
    assert!(ok.authenticated);
    assert!(ok.elapsed.as_secs() < 2, "{:?}", ok.elapsed);
    // The zone named; the server's zone untouched (a read).
    let again = test(dir.path(), &loaded, Some(ZONE)).await.unwrap();
    assert_eq!(again.serial, ok.serial);
    assert_eq!(knot.serial(ZONE), ok.serial.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_the_answer_proves_no_credentials() {
    let Some(knot) = start_knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let table = format!("host = \"127.0.0.1\"\nport = {}", knot.addr.port());
    let loaded = load(dir.path(), &table);
    let ok = test(dir.path(), &loaded, None).await.unwrap();
    assert_eq!(ok.serial, Some(knot.serial(ZONE)));
    assert!(!ok.authenticated);
    // Knot allows transfers to this key only: read record by record, as a publish would.
    assert_eq!(ok.read_by, "queries");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_is_badsig_without_the_secret() {
    let Some(knot) = start_knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wrong = TsigKey::generate("other").secret_base64;
    let table = knot_table(&knot, &knot.key.name, &wrong, "hmac-sha256");
    let loaded = load(dir.path(), &table);
    let (class, message) = failure(
        test(dir.path(), &loaded, None).await,
        &[&wrong, &knot.key.secret_base64],
    );
    assert_eq!(class, FailureClass::Auth, "{message}");
    assert!(
        message.starts_with("zone example.test. (dnsServer primary): "),
        "{message}"
    );
    assert!(
        message.contains("rejected the TSIG key `mailzone` (BADSIG)"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_key_name_is_badkey() {
    let Some(knot) = start_knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let table = knot_table(
        &knot,
        "nonexistent-key",
        &knot.key.secret_base64,
        "hmac-sha256",
    );
    let loaded = load(dir.path(), &table);
    let (class, message) = failure(
        test(dir.path(), &loaded, None).await,
        &[&knot.key.secret_base64],
    );
    assert_eq!(class, FailureClass::Auth, "{message}");
    assert!(
        message.contains("rejected the TSIG key `nonexistent-key` (BADKEY)"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_algorithm_is_a_tsig_failure() {
    let Some(knot) = start_knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let table = knot_table(
        &knot,
        &knot.key.name,
        &knot.key.secret_base64,
        "hmac-sha512",
    );
    let loaded = load(dir.path(), &table);
    let (class, message) = failure(
        test(dir.path(), &loaded, None).await,
        &[&knot.key.secret_base64],
    );
    assert_eq!(class, FailureClass::Auth, "{message}");
    // Knot knows `mailzone` with hmac-sha256 only: no key of that name and algorithm.
    assert!(
        message.contains("(BADKEY)") && message.contains("algorithm hmac-sha512"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zone_not_served_there_is_refused() {
    let Some(knot) = start_knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let table = knot_table(
        &knot,
        &knot.key.name,
        &knot.key.secret_base64,
        "hmac-sha256",
    );
    let loaded = load(dir.path(), &table);
    let (class, message) = failure(
        test(dir.path(), &loaded, Some("other.test")).await,
        &[&knot.key.secret_base64],
    );
    assert_eq!(class, FailureClass::Refused, "{message}");
    assert!(
        message.starts_with("zone other.test. (dnsServer primary): "),
        "{message}"
    );
    assert!(
        message.contains("refused the query for other.test. SOA (REFUSED): does it serve"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_is_unreachable() {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = mailzone_testkit::free_port();
    let secret = TsigKey::generate("mailzone").secret_base64;
    let table =
        format!("host = \"127.0.0.1\"\nport = {port}\nkeyName = \"mailzone\"\nkey = \"{secret}\"");
    let loaded = load(dir.path(), &table);
    let (class, message) = failure(test(dir.path(), &loaded, None).await, &[&secret]);
    assert_eq!(class, FailureClass::Unreachable, "{message}");
    assert!(
        message.contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_does_not_resolve_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // RFC 6761 §6.4: `.invalid` never resolves.
    let loaded = load(dir.path(), "host = \"dns.nonexistent.invalid\"\nport = 53");
    let (class, message) = failure(test(dir.path(), &loaded, None).await, &[]);
    assert_eq!(class, FailureClass::Unreachable, "{message}");
    assert!(
        message.contains("cannot resolve dns.nonexistent.invalid"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_server_or_no_zone_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(dir.path(), "host = \"127.0.0.1\"\nport = 53");
    let state = dir.path().join("state");
    let e = test_dns_server(&loaded, "nonexistent", None, &state)
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Usage(_)), "{e:?}");
    assert!(e.to_string().contains("no DNS server `nonexistent`"), "{e}");

    // A DNS server no domain publishes through: the zone must be named.
    let text = std::fs::read_to_string(dir.path().join("mailzone.toml")).unwrap();
    let text = format!("{text}\n[dnsServer.spare]\nkind = \"rfc2136\"\nhost = \"127.0.0.1\"\n");
    let path = dir.path().join("mailzone.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = load_config(&path).unwrap();
    let e = test_dns_server(&loaded, "spare", None, &state)
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Usage(_)), "{e:?}");
    assert!(e.to_string().contains("name the zone to test"), "{e}");
}
