//! The web UI's domain pages over HTTP against a real `mailzone serve` (no browser): sign
//! in with the admin password, the list and its filters and pages, a domain's records and
//! the zone download (loaded by `named-checkzone`), the add / edit forms (a file-defined
//! domain is read-only, a mistake keeps the values), and against a real Knot: the failed
//! filter, the plan of an empty zone, "Publish now" and "In sync", and "Check now" finding
//! a record deleted behind mailzone's back.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::ui::{self, PASSWORD, UiClient};
use common::{Service, examples};
use mailzone_testkit::{DnsServer, TsigKey, ZoneSpec};

/// Sets the admin password in the service's state directory `dir` and signs in with it.
fn sign_in(service: &Service, dir: &Path) -> UiClient {
    ui::set_password(dir, PASSWORD);
    UiClient::sign_in(service, PASSWORD)
}

/// The HTML of the element that starts with `start` up to its closing `</tr>`.
fn row<'h>(html: &'h str, start: &str) -> &'h str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in:\n{html}"));
    let end = html[at..].find("</tr>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

/// The text of the element with `id` (tags stripped).
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let open_end = at + html[at..].find('>').unwrap() + 1;
    let close = open_end + html[open_end..].find("</").unwrap();
    html[open_end..close].trim().to_string()
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

/// Every `data-copy` value of the page, unescaped.
fn copy_values(html: &str) -> Vec<String> {
    html.split("data-copy=\"")
        .skip(1)
        .map(|s| {
            s[..s.find('"').unwrap()]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

fn manual_config(domains: usize) -> String {
    let ex = examples().display().to_string();
    let mut text = format!(
        r#"
[server]
hostname = "mail.example.test"
ipv4 = ["192.0.2.10"]

[domain."example.test"]
dkimManagement = {{ manual = {{ keys = [{{ selector = "202611e", privateKeyFile = "{ex}/keys/202611e.pem" }}, {{ selector = "202611r", privateKeyFile = "{ex}/keys/202611r.pem" }}] }} }}
"#
    );
    for i in 0..domains {
        text.push_str(&format!(
            "\n[domain.\"d{i:03}.test\"]\ndkimManagement = {{ manual = {{ keys = [{{ selector = \"202611e\", privateKeyFile = \"{ex}/keys/202611e.pem\" }}] }} }}\n"
        ));
    }
    text
}

#[test]
fn the_list_filters_and_pages_and_a_domain_shows_its_records_and_forms() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), manual_config(120)).unwrap();
    let service = Service::start(dir.path(), None);
    let ui = sign_in(&service, dir.path());

    // The list: 121 domains, 100 on the first page, every one manual and unchecked.
    let list = ui.get("/ui/domains");
    assert!(list.body.contains("id=\"add-domain\""), "{}", list.body);
    assert!(list.body.contains("href=\"/ui/domains/new\""));
    assert!(text_of(&list.body, "domain-count").starts_with("121 domains"));
    assert_eq!(count(&list.body, "<tr data-domain="), 100);
    let first = row(&list.body, "<tr data-domain=\"example.test\"");
    assert!(first.contains("class=\"sync\""), "{first}");
    assert!(first.contains(">Manual<"), "{first}");
    assert!(first.contains("Not checked yet"), "{first}");
    let second = ui.get("/ui/domains?page=2");
    assert_eq!(count(&second.body, "<tr data-domain="), 21);
    assert!(second.body.contains("data-domain=\"d119.test\""));

    // Filters: a name substring, then a status no domain has.
    let found = ui.get("/ui/domains?q=d11&status=");
    assert_eq!(count(&found.body, "<tr data-domain="), 10, "{}", found.body);
    assert!(found.body.contains("data-domain=\"d110.test\""));
    assert!(!found.body.contains("data-domain=\"example.test\""));
    let manual = ui.get("/ui/domains?status=manual&q=example");
    assert_eq!(count(&manual.body, "<tr data-domain="), 1);
    let failed = ui.get("/ui/domains?status=failed");
    assert_eq!(count(&failed.body, "<tr data-domain="), 0);

    // The domain page: records with copy buttons; a DKIM value copies unquoted, unsplit.
    let page = ui.get("/ui/domains/example.test");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        count(&page.body, "<tr class=\"record\"") >= 10,
        "{}",
        page.body
    );
    let copies = copy_values(&page.body);
    let rsa = copies
        .iter()
        .find(|v| v.starts_with("v=DKIM1; k=rsa;"))
        .expect("the RSA DKIM value");
    assert!(
        rsa.len() > 255,
        "long enough to be split in a zone file: {rsa}"
    );
    assert!(!rsa.contains('"'), "{rsa}");
    // Names copy as provider forms take them: the full name, without the root's dot.
    assert!(
        copies.contains(&"_dmarc.example.test".to_string()),
        "{copies:?}"
    );
    assert!(page.body.contains("id=\"defined-in\""));
    assert!(page.body.contains("id=\"check-now\""));
    assert!(page.body.contains("id=\"download-zone\""));

    // The zone download: an attachment that named-checkzone loads under an SOA/NS header.
    let zone = ui.get("/ui/domains/example.test/zone");
    assert_eq!(zone.status, 200);
    assert!(
        zone.disposition.starts_with("attachment"),
        "{}",
        zone.disposition
    );
    let rsa_line = zone
        .body
        .lines()
        .find(|l| l.starts_with("202611r._domainkey"))
        .expect("the RSA DKIM line");
    assert!(rsa_line.contains("\" \""), "split into strings: {rsa_line}");
    assert!(!rsa.contains("\" \""), "copied unsplit: {rsa}");
    let json = ui.get("/ui/domains/example.test/json");
    assert!(json.disposition.starts_with("attachment"));
    let records: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert!(
        records.to_string().contains("_dmarc.example.test"),
        "{records}"
    );
    if mailzone_testkit::require_tools(&["named-checkzone"]) {
        let file = dir.path().join("example.test.zone");
        let header = "$ORIGIN example.test.\n$TTL 3600\n@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300\n@ IN NS ns1.example.test.\nns1 IN A 192.0.2.53\n";
        std::fs::write(&file, format!("{header}{}", zone.body)).unwrap();
        let out = Command::new(mailzone_testkit::tool_path("named-checkzone").unwrap())
            .args(["-i", "local", "example.test"])
            .arg(&file)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}\n{}", zone.body);
        assert_eq!(said.lines().last(), Some("OK"), "{said}");
    }

    // A file-defined domain is read-only: its edit page names the file, shows no form.
    let edit = ui.get("/ui/domains/example.test/edit");
    assert_eq!(edit.status, 409);
    let file = dir.path().join("mailzone.toml");
    assert!(
        edit.body.contains(&file.display().to_string()),
        "{}",
        edit.body
    );
    assert!(!edit.body.contains("id=\"domain-form\""));

    // No DNS server: the add form offers to create one.
    let new = ui.get("/ui/domains/new");
    assert!(new.body.contains("id=\"domain-form\""));
    assert!(
        new.body.contains("id=\"create-dns-server\""),
        "{}",
        new.body
    );

    // A mistake is shown above the form with the values kept; nothing is stored.
    let bad = ui.post(
        "/ui/domains/new",
        &[
            ("name", "added.test"),
            ("dnsManagement", "manual"),
            ("advanced", r#"{"dmarc": {"policy": "sometimes"}}"#),
        ],
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        text_of(&bad.body, "form-error").contains("sometimes"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"added.test\""));
    assert!(bad.body.contains("&quot;sometimes&quot;"), "{}", bad.body);
    assert_eq!(service.get("/api/v1/domains/added.test").0, 404);

    // A good one is created through the API's use case and can then be edited.
    let made = ui.post(
        "/ui/domains/new",
        &[
            ("name", "added.test"),
            ("dnsManagement", "manual"),
            ("dmarcPolicy", "quarantine"),
            ("advanced", ""),
        ],
    );
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(made.location, "/ui/domains/added.test?done=saved");
    let (status, stored) = service.get("/api/v1/domains/added.test");
    assert_eq!((status, stored["source"].as_str()), (200, Some("api")));
    let edit = ui.get("/ui/domains/added.test/edit");
    assert_eq!(edit.status, 200);
    assert!(edit.body.contains("quarantine"), "{}", edit.body);
    let deleted = ui.post("/ui/domains/added.test/delete", &[]);
    assert_eq!(deleted.status, 303);
    assert_eq!(service.get("/api/v1/domains/added.test").0, 404);
}

const ZONE: &str = "example.test";
const DMARC: &str = "_dmarc.example.test.";

fn knot_config(knot: &DnsServer) -> String {
    let ex = examples().display().to_string();
    format!(
        r#"
[server]
hostname = "mail.{ZONE}"
ipv4 = ["192.0.2.10"]

[serve]
checkNameservers = ["{addr}"]
{primary}
[domain."{ZONE}"]
dkimManagement = {{ manual = {{ keys = [{{ selector = "202611e", privateKeyFile = "{ex}/keys/202611e.pem" }}] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary" }} }}

[domain."manual.example"]
dkimManagement = {{ manual = {{ keys = [{{ selector = "202611e", privateKeyFile = "{ex}/keys/202611e.pem" }}] }} }}
"#,
        addr = knot.addr,
        primary = ui::knot_server_table(knot, "primary", "tsig.key"),
    )
}

fn summary(ui: &UiClient) -> String {
    let plan = ui.get(&format!("/ui/domains/{ZONE}/plan"));
    assert_eq!(plan.status, 200, "{}", plan.body);
    text_of(&plan.body, "plan-summary")
}

#[test]
fn plan_publish_and_check_against_knot() {
    if !mailzone_testkit::require_tools(&["knotd", "kdig", "knsupdate"]) {
        return;
    }
    let zone = ZoneSpec::new(ZONE, "@ 3600 IN TXT \"site-verification=xyz\"\n");
    let knot = ui::start_knot(&[zone]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), knot_config(&knot)).unwrap();
    // A wrong key first: the start's task fails, and the zone stays empty of mailzone's records.
    let wrong = TsigKey::generate("mailzone").secret_base64;
    std::fs::write(dir.path().join("tsig.key"), &wrong).unwrap();
    let service = Service::start(dir.path(), None);
    let ui = sign_in(&service, dir.path());
    let first = service.tasks();
    let id = first[0]["id"].as_str().unwrap().to_string();
    service.wait_for_task(&id, "Failed", Duration::from_secs(20));

    let failed = ui.get("/ui/domains?status=failed");
    assert_eq!(
        count(&failed.body, "<tr data-domain="),
        1,
        "{}",
        failed.body
    );
    let line = row(&failed.body, &format!("<tr data-domain=\"{ZONE}\""));
    assert!(line.contains("Failed"), "{line}");
    assert!(line.contains("Never published"), "{line}");
    assert!(line.contains("Automatic via primary"), "{line}");

    // The plan is its own part; with the right key it lists every record to add.
    let page = ui.get(&format!("/ui/domains/{ZONE}"));
    assert!(
        page.body
            .contains(&format!("data-src=\"/ui/domains/{ZONE}/plan\""))
    );
    assert!(page.body.contains("id=\"publish-now\""));
    let unreadable = summary(&ui);
    assert!(unreadable.contains("The plan failed"), "{unreadable}");
    assert!(!unreadable.contains(&wrong));
    std::fs::write(dir.path().join("tsig.key"), &knot.key.secret_base64).unwrap();
    let plan = ui.get(&format!("/ui/domains/{ZONE}/plan"));
    let adds = text_of(&plan.body, "plan-summary");
    assert!(adds.ends_with("to add, 0 to update, 0 to delete"), "{adds}");
    assert!(!adds.starts_with("0 "), "{adds}");
    assert!(
        plan.body
            .contains("<ins><code>+ _dmarc.example.test. 3600 TXT"),
        "{}",
        plan.body
    );

    // Publish now: a DnsManagement task, the page shows it live, then the zone is in sync.
    let published = ui.post(&format!("/ui/domains/{ZONE}/publish"), &[]);
    assert_eq!(published.status, 303, "{}", published.body);
    assert!(
        published
            .location
            .starts_with(&format!("/ui/domains/{ZONE}?done=published&task=")),
        "{}",
        published.location
    );
    let task = published.location.rsplit('=').next().unwrap().to_string();
    service.wait_for_task(&task, "Succeeded", Duration::from_secs(30));
    let shown = ui.get(&published.location);
    let live = text_of(&shown.body, "domain-task");
    assert!(
        shown.body.contains("id=\"domain-task\" data-live="),
        "{}",
        shown.body
    );
    assert!(live.contains("Last task"), "{live}");
    assert!(shown.body.contains(">Succeeded<"), "{}", shown.body);
    assert_eq!(summary(&ui), "In sync");
    let list = ui.get("/ui/domains");
    let line = row(&list.body, &format!("<tr data-domain=\"{ZONE}\""));
    assert!(line.contains("In sync"), "{line}");
    assert!(line.contains("Succeeded"), "{line}");
    assert_eq!(
        count(
            &ui.get("/ui/domains?status=out-of-sync").body,
            "<tr data-domain="
        ),
        0
    );

    // DMARC deleted behind mailzone's back: Check now finds it, the plan adds it back.
    knot.nsupdate(ZONE, &[&format!("update delete {DMARC} TXT")]);
    let checked = ui.post(&format!("/ui/domains/{ZONE}/check"), &[]);
    assert_eq!(checked.status, 303, "{}", checked.body);
    let page = ui.get(&checked.location);
    let finding = row(
        &page.body,
        "<tr class=\"finding\" data-code=\"record-missing\"",
    );
    assert!(finding.contains("Error"), "{finding}");
    assert!(
        finding.contains("v=DMARC1"),
        "the expected value or fix: {finding}"
    );
    assert!(page.body.contains("data-code=\"dmarc-missing\""));
    let list = ui.get("/ui/domains?status=errors");
    let line = row(&list.body, &format!("<tr data-domain=\"{ZONE}\""));
    assert!(line.contains(" error"), "{line}");
    assert_eq!(summary(&ui), "1 to add, 0 to update, 0 to delete");

    // A domain added through the form inside the zone is created with a task that publishes.
    let made = ui.post(
        "/ui/domains/new",
        &[
            ("name", "shop.example.test"),
            ("dnsManagement", "automatic"),
            ("dnsServer", "primary"),
            ("origin", ZONE),
            ("advanced", ""),
        ],
    );
    assert_eq!(made.status, 303, "{}", made.body);
    let tasks = service.tasks();
    let added = tasks
        .iter()
        .find(|t| t["domain"] == "shop.example.test")
        .expect("a task for the added domain");
    assert_eq!(added["type"], "DnsManagement");
    let id = added["id"].as_str().unwrap();
    service.wait_for_task(id, "Succeeded", Duration::from_secs(30));
    assert_eq!(
        knot.query("shop.example.test", "MX"),
        ["10 mail.example.test."]
    );
}

#[test]
fn dkim_keys_are_listed_generated_and_never_shown_private() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[server]
hostname = "mail.example.test"
ipv4 = ["192.0.2.10"]

[domain."keys.test"]
dkimManagement = { automatic = { algorithms = ["ed25519-sha256"] } }
"#;
    std::fs::write(dir.path().join("mailzone.toml"), config).unwrap();
    let service = Service::start(dir.path(), None);
    let ui = sign_in(&service, dir.path());
    // The first view plans the records, which makes the first key (Active: manual DNS).
    ui.get("/ui/domains/keys.test");
    let page = ui.get("/ui/domains/keys.test");
    assert_eq!(
        count(&page.body, "<tr class=\"dkim-key\""),
        1,
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"dkim-generate\""));
    assert!(page.body.contains("id=\"dkim-rotate\""));
    let generated = ui.post("/ui/domains/keys.test/dkim/generate", &[]);
    assert_eq!(generated.status, 303, "{}", generated.body);
    assert_eq!(
        generated.location,
        "/ui/domains/keys.test?done=dkim-generated"
    );
    let page = ui.get(&generated.location);
    assert_eq!(
        count(&page.body, "<tr class=\"dkim-key\""),
        2,
        "{}",
        page.body
    );
    assert!(page.body.contains(">Pending<"), "{}", page.body);
    assert!(!page.body.contains("PRIVATE KEY"));
}
