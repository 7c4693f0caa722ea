//! The web UI's DNS servers and tasks pages over HTTP (no browser), against a real
//! `mailzone serve` publishing into a real Knot: a session opened with the admin password,
//! a DNS server created, edited (an empty secret keeps the stored one), tested and deleted
//! through the forms and seen through the API; no page ever holds a secret; a failed
//! task's reason shown; Retry, Reschedule and Cancel changing the store as the API shows.

mod common;

use std::time::Duration;

use common::ui::{self, PASSWORD, UiClient};
use common::{Service, client};
use mailzone_testkit::{DnsServer, TsigKey, ZoneSpec, poll_until};
use serde_json::{Value, json};

/// The config: `primary` (the right key, in `tsig.key`) publishes example.test; `badkey`
/// (a wrong key, in `bad.key`) publishes bad.test, so its task fails with a TSIG error.
fn config(knot: &DnsServer) -> String {
    format!(
        r#"
[server]
hostname = "mail.example.test"
ipv4 = ["192.0.2.10"]
{primary}{badkey}
[domain."example.test"]
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["mx"] }} }}
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}

[domain."bad.test"]
dnsManagement = {{ automatic = {{ dnsServer = "badkey", publishRecords = ["mx"] }} }}
dkimManagement = {{ automatic = {{ algorithms = ["ed25519-sha256"] }} }}
"#,
        primary = ui::knot_server_table(knot, "primary", "tsig.key"),
        badkey = ui::knot_server_table(knot, "badkey", "bad.key"),
    )
}

/// Knot serving the zones, the service started on a config using it, with the admin
/// password set first.
fn start() -> Option<(DnsServer, tempfile::TempDir, Service, String)> {
    if !mailzone_testkit::require_tools(&["knotd", "kdig"]) {
        return None;
    }
    let zones = ["example.test", "api.test", "bad.test"].map(|z| ZoneSpec::new(z, ""));
    let knot = ui::start_knot(&zones);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), config(&knot)).unwrap();
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    let wrong = TsigKey::generate("mailzone").secret_base64;
    std::fs::write(dir.path().join("bad.key"), &wrong).unwrap();
    ui::set_password(dir.path(), PASSWORD);
    let service = Service::start(dir.path(), None);
    Some((knot, dir, service, wrong))
}

/// The element with `id="<id>"`: its opening tag and what follows, up to `len` bytes.
fn element<'a>(html: &'a str, id: &str, len: usize) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = (start + len).min(html.len());
    let end = (end..=html.len())
        .find(|i| html.is_char_boundary(*i))
        .unwrap();
    &html[start..end]
}

/// Text as maud escapes it in a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[test]
fn dns_servers_are_created_edited_tested_and_deleted_through_the_forms() {
    let Some((knot, _dir, service, wrong)) = start() else {
        return;
    };
    let ui = UiClient::sign_in(&service, PASSWORD);
    let secret = knot.key.secret_base64.clone();
    let port = knot.addr.port().to_string();

    // The list: the config file's servers, read-only.
    let list = ui.get("/ui/dns-servers");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("id=\"dns-servers\""), "{}", list.body);
    assert!(list.body.contains("data-dns-server=\"primary\""));
    assert!(list.body.contains("Config file"));
    assert!(list.body.contains("id=\"add-dns-server\""));
    let file_server = ui.get("/ui/dns-servers/primary");
    assert!(file_server.body.contains("id=\"read-only\""));
    assert!(file_server.body.contains("mailzone.toml"));
    assert!(!file_server.body.contains("id=\"delete-dns-server\""));
    assert_eq!(ui.get("/ui/dns-servers/primary/edit").status, 409);

    // The kind first, then its fields; no zone-file server here.
    let picker = ui.get("/ui/dns-servers/new");
    let select = element(&picker.body, "kind", 200);
    assert!(
        select.starts_with("<select") && select.contains("name=\"kind\""),
        "{select}"
    );
    assert!(picker.body.contains("value=\"cloudflare\""));
    assert!(!picker.body.contains("value=\"zonefile\""));
    assert_eq!(ui.get("/ui/dns-servers/new?kind=zonefile").status, 422);
    let fields = ui.get("/ui/dns-servers/new?kind=rfc2136");
    for input in [
        "name=\"host\"",
        "name=\"keyName\"",
        "name=\"algorithm\"",
        "name=\"port\"",
    ] {
        assert!(fields.body.contains(input), "{input}: {}", fields.body);
    }
    assert!(fields.body.contains("type=\"password\" name=\"key\""));
    let cloudflare = ui.get("/ui/dns-servers/new?kind=cloudflare");
    assert!(
        cloudflare.body.contains("name=\"apiToken\""),
        "{}",
        cloudflare.body
    );

    // A mistake: shown above the form, the other values kept, the secret not echoed.
    let bad = ui.post(
        "/ui/dns-servers/new",
        &[
            ("kind", "rfc2136"),
            ("name", "apiprimary"),
            ("host", "127.0.0.1"),
            ("port", &port),
            ("keyName", &knot.key.name),
            ("key", "not base64 at all!"),
        ],
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        element(&bad.body, "form-error", 400).contains("key"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains(&format!("value=\"{port}\"")));
    assert!(!bad.body.contains("not base64 at all!"));
    assert_eq!(service.get("/api/v1/dnsServers/apiprimary").0, 404);

    let created = ui.post(
        "/ui/dns-servers/new",
        &[
            ("kind", "rfc2136"),
            ("name", "apiprimary"),
            ("host", "127.0.0.1"),
            ("port", &port),
            ("keyName", &knot.key.name),
            ("key", &secret),
            ("algorithm", "hmac-sha256"),
            ("pollingInterval", "100ms"),
        ],
    );
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.location, "/ui/dns-servers/apiprimary?done=created");
    let (status, shown) = service.get("/api/v1/dnsServers/apiprimary");
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["source"], "api");
    assert_eq!(shown["host"], "127.0.0.1");
    assert_eq!(shown["port"], knot.addr.port());
    assert_eq!(shown["keySet"], true);
    assert_eq!(shown["pollingInterval"], "100ms");
    let list = ui.get("/ui/dns-servers");
    assert!(list.body.contains("data-dns-server=\"apiprimary\""));

    // A domain using it (through the API); the test zone defaults to its zone.
    let (status, domain) = service.post(
        "/api/v1/domains",
        &json!({ "name": "api.test",
                 "dnsManagement": { "automatic": { "dnsServer": "apiprimary", "publishRecords": ["mx"] } },
                 "dkimManagement": { "automatic": { "algorithms": ["ed25519-sha256"] } } }),
    );
    assert_eq!(status, 201, "{domain}");
    let page = ui.get("/ui/dns-servers/apiprimary");
    assert!(
        element(&page.body, "test-zone", 300).contains("value=\"api.test\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"test-connection\""));
    assert!(page.body.contains("id=\"test-connection-form\""));

    // Test connection with the right key: ok, with the serial and the endpoint.
    let tested = ui.post("/ui/dns-servers/apiprimary/test", &[("zone", "api.test")]);
    assert_eq!(tested.status, 200);
    let result = element(&tested.body, "connection-result", 600);
    assert!(result.contains("class=\"alert ok\""), "{result}");
    assert!(result.contains("SOA serial"), "{result}");
    assert!(result.contains(&knot.addr.to_string()), "{result}");

    // Edit: the form never holds the secret; left empty, the stored one is kept.
    let edit = ui.get("/ui/dns-servers/apiprimary/edit");
    assert_eq!(edit.status, 200);
    assert!(edit.body.contains("Leave empty to keep the stored value"));
    assert!(edit.body.contains("id=\"save-dns-server\""));
    let saved = ui.post(
        "/ui/dns-servers/apiprimary/edit",
        &[
            ("kind", "rfc2136"),
            ("host", "127.0.0.1"),
            ("port", &port),
            ("keyName", &knot.key.name),
            ("key", ""),
            ("ttl", "300"),
            ("pollingInterval", "100ms"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, shown) = service.get("/api/v1/dnsServers/apiprimary");
    assert_eq!(
        (shown["ttl"].as_u64(), shown["keySet"].as_bool()),
        (Some(300), Some(true))
    );
    let tested = ui.post("/ui/dns-servers/apiprimary/test", &[("zone", "api.test")]);
    let result = element(&tested.body, "connection-result", 600);
    assert!(
        result.contains("class=\"alert ok\""),
        "the kept key works: {result}"
    );

    // A wrong secret: the TSIG error, exactly.
    let saved = ui.post(
        "/ui/dns-servers/apiprimary/edit",
        &[
            ("kind", "rfc2136"),
            ("host", "127.0.0.1"),
            ("port", &port),
            ("keyName", &knot.key.name),
            ("key", &wrong),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let tested = ui.post("/ui/dns-servers/apiprimary/test", &[("zone", "api.test")]);
    let result = element(&tested.body, "connection-result", 800);
    assert!(result.contains("class=\"alert error\""), "{result}");
    assert!(result.contains("BADSIG"), "{result}");
    assert!(result.contains("TSIG"), "{result}");

    // Delete: refused while api.test uses it, with the reason; then done.
    let refused = ui.post("/ui/dns-servers/apiprimary/delete", &[]);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        element(&refused.body, "action-error", 400).contains("api.test"),
        "{}",
        refused.body
    );
    assert_eq!(service.get("/api/v1/dnsServers/apiprimary").0, 200);
    let page = ui.get("/ui/dns-servers/apiprimary");
    assert!(page.body.contains("data-confirm="), "delete asks first");
    let gone = client()
        .delete(service.url("/api/v1/domains/api.test"))
        .bearer_auth(&service.token)
        .send()
        .unwrap();
    assert!(gone.status().is_success(), "{}", gone.text().unwrap());
    let deleted = ui.post("/ui/dns-servers/apiprimary/delete", &[]);
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(deleted.location, "/ui/dns-servers?done=deleted");
    assert_eq!(service.get("/api/v1/dnsServers/apiprimary").0, 404);

    // An HTTP provider of the catalog: its token is write-only too.
    let token = "cf-token-that-must-never-show-3c9f1e";
    let created = ui.post(
        "/ui/dns-servers/new",
        &[
            ("kind", "cloudflare"),
            ("name", "cf"),
            ("apiToken", token),
            ("ttl", "300"),
        ],
    );
    assert_eq!(created.status, 303, "{}", created.body);
    let (_, shown) = service.get("/api/v1/dnsServers/cf");
    assert_eq!(shown["kind"], "cloudflare", "{shown}");
    assert_eq!(shown["secretsSet"], json!(["apiToken"]), "{shown}");
    let edit = ui.get("/ui/dns-servers/cf/edit");
    assert!(edit.body.contains("name=\"apiToken\""), "{}", edit.body);
    let page = ui.get("/ui/dns-servers/cf");
    assert!(page.body.contains("Cloudflare"), "{}", page.body);
    assert_eq!(ui.post("/ui/dns-servers/cf/delete", &[]).status, 303);

    // No page held a secret: not the key, not the wrong one, not the token.
    let seen = ui.seen();
    assert!(!seen.contains(token), "the token is in a page");
    for secret in [&secret, &wrong] {
        assert!(!seen.contains(secret.as_str()), "a secret is in a page");
    }
}

/// Task `id` once it has `status`, as the API shows it.
fn wait_status(service: &Service, id: &str, status: &str) -> Value {
    service.wait_for_task(id, status, Duration::from_secs(30))
}

#[test]
fn tasks_show_failures_and_retry_reschedule_and_cancel_change_the_store() {
    let Some((knot, dir, service, wrong)) = start() else {
        return;
    };
    let ui = UiClient::sign_in(&service, PASSWORD);

    // The start-up tasks: example.test publishes, bad.test fails on its wrong key.
    let mut bad_id = None;
    poll_until(Duration::from_secs(10), || {
        bad_id = service
            .tasks()
            .iter()
            .find(|t| t["domain"] == "bad.test" && t["type"] == "DnsManagement")
            .map(|t| t["id"].as_str().unwrap().to_string());
        bad_id.is_some()
    });
    let bad_id = bad_id.expect("bad.test has a task");
    let failed = wait_status(&service, &bad_id, "Failed");
    let reason = failed["failureReason"].as_str().unwrap().to_string();
    assert!(reason.contains("TSIG"), "{reason}");

    let list = ui.get("/ui/tasks?status=Failed");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("id=\"task-filter\""));
    assert!(
        list.body.contains("data-live="),
        "the list refreshes itself"
    );
    let row = element(&list.body, "tasks", 100_000);
    let row = &row[row
        .find(&format!("data-task-id=\"{bad_id}\""))
        .expect("the failed task is listed")..];
    assert!(row.contains("data-status=\"Failed\""), "{row}");
    assert!(row.contains(&escaped(&reason)), "{row}");
    assert!(row.contains("class=\"retry\""), "{row}");
    assert!(!list.body.contains("data-status=\"Succeeded\""), "filtered");
    let detail = ui.get(&format!("/ui/tasks/{bad_id}"));
    assert!(detail.body.contains(&escaped(&reason)));
    assert!(detail.body.contains("DnsManagement"));

    // Filters: by domain, by type.
    let mut done_id = String::new();
    poll_until(Duration::from_secs(30), || {
        service.tasks().iter().any(|t| {
            let found = t["domain"] == "example.test" && t["status"] == "Succeeded";
            if found {
                done_id = t["id"].as_str().unwrap().to_string();
            }
            found
        })
    });
    assert!(!done_id.is_empty(), "example.test was published");
    let by_domain = ui.get("/ui/tasks?domain=example.test");
    assert!(
        by_domain
            .body
            .contains(&format!("data-task-id=\"{done_id}\""))
    );
    assert!(
        !by_domain
            .body
            .contains(&format!("data-task-id=\"{bad_id}\""))
    );
    let rotations = ui.get("/ui/tasks?type=DkimRotation");
    assert!(
        rotations.body.contains("data-status=\"Succeeded\""),
        "{}",
        rotations.body
    );
    assert!(
        !rotations
            .body
            .contains(&format!("data-task-id=\"{bad_id}\""))
    );
    let renewals = ui.get("/ui/tasks?type=AcmeRenewal");
    assert!(
        renewals.body.contains("id=\"no-tasks\""),
        "{}",
        renewals.body
    );

    // Reschedule the failed task for later: Scheduled, attempts reset, due then.
    let moved = ui.post(
        &format!("/ui/tasks/{bad_id}/reschedule"),
        &[("from", "task"), ("dueAt", "2030-01-31T12:00")],
    );
    assert_eq!(moved.status, 303, "{}", moved.body);
    assert_eq!(
        moved.location,
        format!("/ui/tasks/{bad_id}?done=rescheduled")
    );
    let (_, task) = service.get(&format!("/api/v1/tasks/{bad_id}"));
    assert_eq!(
        (
            task["status"].as_str(),
            task["dueAt"].as_str(),
            task["attempts"].as_u64()
        ),
        (Some("Scheduled"), Some("2030-01-31T12:00:00Z"), Some(0)),
        "{task}"
    );

    // Cancel it: it will not run; cancelling again is refused with the reason.
    let cancelled = ui.post(&format!("/ui/tasks/{bad_id}/cancel"), &[("from", "list")]);
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(cancelled.location, "/ui/tasks?done=cancelled");
    assert_eq!(
        service.get(&format!("/api/v1/tasks/{bad_id}")).1["status"],
        "Cancelled"
    );
    let again = ui.post(&format!("/ui/tasks/{bad_id}/cancel"), &[("from", "list")]);
    assert_eq!(again.status, 409);
    assert!(
        element(&again.body, "action-error", 300).contains("only Scheduled and Retry"),
        "{}",
        again.body
    );

    // A new task for bad.test fails too; with the key fixed, Retry publishes.
    let (status, created) = service.post(
        "/api/v1/tasks",
        &json!({ "type": "DnsManagement", "domain": "bad.test" }),
    );
    assert_eq!(status, 202, "{created}");
    let second = created["id"].as_str().unwrap().to_string();
    assert_ne!(second, bad_id, "a cancelled task stands for no new one");
    wait_status(&service, &second, "Failed");
    std::fs::write(dir.path().join("bad.key"), &knot.key.secret_base64).unwrap();
    let retried = ui.post(&format!("/ui/tasks/{second}/retry"), &[("from", "list")]);
    assert_eq!(retried.status, 303, "{}", retried.body);
    assert_eq!(retried.location, "/ui/tasks?done=retried");
    wait_status(&service, &second, "Succeeded");
    assert_eq!(knot.query("bad.test", "MX"), ["10 mail.example.test."]);
    let notice = ui.get("/ui/tasks?done=retried");
    assert!(notice.body.contains("scheduled to run again"));
    assert_eq!(
        service.get(&format!("/api/v1/tasks/{bad_id}")).1["status"],
        "Cancelled",
        "never ran"
    );

    // The API's own endpoints: cancel and reschedule refused for an ended task.
    let (status, e) = service.post(&format!("/api/v1/tasks/{second}/cancel"), &json!({}));
    assert_eq!(status, 409, "{e}");
    let (status, e) = service.post(
        &format!("/api/v1/tasks/{second}/reschedule"),
        &json!({ "dueAt": "soon" }),
    );
    assert_eq!(status, 400, "{e}");
    let (status, e) = service.post(&format!("/api/v1/tasks/{second}/reschedule"), &json!({}));
    assert_eq!(status, 409, "{e}");
    assert_eq!(service.post("/api/v1/tasks/nope/cancel", &json!({})).0, 404);

    let seen = ui.seen();
    for secret in [&knot.key.secret_base64, &wrong] {
        assert!(!seen.contains(secret.as_str()), "a secret is in a page");
    }
}
