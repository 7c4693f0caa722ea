//! `POST /api/v1/dnsServers/{name}/test` end to end: the API router served on loopback
//! over a real store and a real Knot, asked with a bearer token. A passed test answers the
//! zone's serial; a failed one is a 200 with `ok: false`, the failure class as `code` and
//! no secret; only request mistakes are error statuses (401, 400, 404, 422).

use std::path::Path;
use std::sync::{Arc, RwLock};

use mailzone_server::AppState;
use mailzone_server::auth::{new_token, token_hash};
use mailzone_store::Store;
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};
use serde_json::{Value, json};

const ZONE: &str = "example.test";

/// DNS servers `primary` (Knot, its key; the domain publishes through it), `wrongkey`
/// (Knot, another secret), `down` (nothing listens there) and `spare` (Knot, no key).
fn config(knot: &DnsServer, wrong_secret: &str, free_port: u16) -> String {
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

{primary}
timeout = "2s"

[dnsServer.wrongkey]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}
keyName = "{key_name}"
key = "{wrong_secret}"
timeout = "2s"

[dnsServer.down]
kind = "rfc2136"
host = "127.0.0.1"
port = {free_port}
keyName = "{key_name}"
key = "{wrong_secret}"
timeout = "2s"

[dnsServer.spare]
kind = "rfc2136"
host = "127.0.0.1"
port = {port}

[domain."{ZONE}"]
dnsManagement = {{ automatic = {{ dnsServer = "primary" }} }}

"#,
        primary = knot.dns_server_table("primary", ""),
        port = knot.addr.port(),
        key_name = knot.key.name,
    )
}

/// The API of a service over `config_path`, on a free loopback port; its base URL and a
/// valid token.
async fn serve_api(config_path: &Path, state_dir: &Path) -> (String, String) {
    let store = Store::open_sqlite(state_dir).await.unwrap();
    let loaded = mailzone_engine::load_config_from(config_path, &store)
        .await
        .unwrap();
    let token = new_token();
    store
        .add_api_token("test", &token_hash(&token), 1_795_651_200)
        .await
        .unwrap();
    let state = AppState {
        store,
        config: Arc::new(RwLock::new(Arc::new(loaded))),
        config_path: config_path.to_path_buf(),
        state_dir: state_dir.to_path_buf(),
        metrics: Arc::default(),
        config_writes: Arc::default(),
        last_checks: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = mailzone_server::api::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/api/v1"), token)
}

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    /// POSTs `body` (none when `None`) to the test route of `server`: status and JSON.
    async fn test(&self, server: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/dnsServers/{server}/test", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_through_the_api() {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return;
    }
    let key = TsigKey::generate("mailzone");
    let zone = ZoneSpec::new(ZONE, "@ 300 IN TXT \"v=spf1 mx -all\"");
    let knot =
        DnsServer::start(ServerKind::Knot, &[zone], &key, &ServerOptions::default()).unwrap();
    let wrong_secret = TsigKey::generate("mailzone").secret_base64;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("mailzone.toml");
    let free_port = mailzone_testkit::free_port();
    std::fs::write(&config_path, config(&knot, &wrong_secret, free_port)).unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let (base, token) = serve_api(&config_path, &state_dir).await;
    let api = Api {
        base,
        token,
        client: reqwest::Client::new(),
    };

    // Behind the token check like every route.
    let unauthenticated = api
        .client
        .post(format!("{}/dnsServers/primary/test", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);

    // No body: the zone of the domain publishing through `primary`.
    let (status, answer) = api.test("primary", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["dnsServer"], "primary");
    assert_eq!(answer["zone"], ZONE);
    assert_eq!(answer["serial"], knot.serial(ZONE));
    assert_eq!(answer["endpoint"], knot.addr.to_string());
    assert_eq!(answer["readBy"], "transfer");
    assert_eq!(answer["authenticated"], true);
    assert!(answer["elapsedMs"].is_u64(), "{answer}");
    assert!(answer.get("error").is_none(), "{answer}");

    // A zone Knot does not serve: a result, not an API error.
    let (status, answer) = api
        .test("primary", Some(json!({"zone": "other.test"})))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["zone"], "other.test");
    assert_eq!(answer["error"]["code"], "refused", "{answer}");
    assert_eq!(answer["error"]["transient"], false, "{answer}");

    // The wrong secret: the TSIG failure, without the secret.
    let (status, answer) = api.test("wrongkey", Some(json!({"zone": ZONE}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["error"]["code"], "auth", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("(BADSIG)"), "{message}");
    let text = answer.to_string();
    assert!(!text.contains(&wrong_secret) && !text.contains(&knot.key.secret_base64));

    // Nothing listens: unreachable, worth another try later.
    let (status, answer) = api.test("down", Some(json!({"zone": ZONE}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["error"]["code"], "unreachable", "{answer}");
    assert_eq!(answer["error"]["transient"], true, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("connection refused"), "{message}");

    // Request mistakes are API errors.
    let (status, answer) = api.test("nonexistent", None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, answer) = api
        .test("primary", Some(json!({"zone": "bad..zone"})))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );
    let (status, answer) = api.test("primary", Some(json!({"zones": ZONE}))).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, answer) = api.test("spare", None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid")),
        "{answer}"
    );
    // …and with the zone named, the spare server (no key) answers.
    let (status, answer) = api.test("spare", Some(json!({"zone": ZONE}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["authenticated"], false, "{answer}");
}
