//! Publish and reconcile against real Knot and BIND servers: foreign
//! records survive, a second run is a no-op, config changes give minimal plans in one
//! UPDATE, concurrent edits are caught and re-planned, propagation to a secondary is
//! awaited, and every failure leaves the zone unchanged with a clear message.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mailzone_engine::reconcile::AfterRead;
use mailzone_engine::{
    EngineError, ReconcileReport, ReconcileRequest, RecordsRequest, Silent, load_config, reconcile,
};
use mailzone_records::diff::PlanEntry;
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const ZONE: &str = "example.test";

/// Records someone else put in the zone; mailzone must leave every one of them alone.
const FOREIGN: &str = "\
@ 3600 IN TXT \"google-site-verification=abc123\"
www 3600 IN A 192.0.2.80
google._domainkey 3600 IN TXT \"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC\"
@ 3600 IN CAA 0 issue \"digicert.com\"
_acme-challenge 3600 IN TXT \"token-from-someone-else\"
";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap()
}

/// What a test changes in the config.
#[derive(Clone)]
struct Setup {
    secret: String,
    dkim_keys: Vec<(&'static str, &'static str)>,
    /// Where the key files of `dkim_keys` are.
    keys_dir: PathBuf,
    submission_cleartext: bool,
    mx_priority: u16,
    /// `authoritativeServers`; `None`: the key left out (the zone's NS are polled).
    authoritative: Option<Vec<String>>,
    propagation_timeout: &'static str,
    zone: &'static str,
    tls: bool,
}

impl Setup {
    fn new(server: &DnsServer) -> Setup {
        Setup {
            secret: server.key.secret_base64.clone(),
            dkim_keys: vec![("202611e", "202611e.pem"), ("202611r", "202611r.pem")],
            keys_dir: examples().join("keys"),
            submission_cleartext: true,
            mx_priority: 10,
            authoritative: Some(vec![]),
            propagation_timeout: "10s",
            zone: ZONE,
            tls: true,
        }
    }

    fn config_text(&self, server: &DnsServer) -> String {
        let ex = examples();
        let keys: Vec<String> = self
            .dkim_keys
            .iter()
            .map(|(s, f)| {
                format!(
                    "{{ selector = \"{s}\", privateKeyFile = \"{}\" }}",
                    self.keys_dir.join(f).display()
                )
            })
            .collect();
        let authoritative = match &self.authoritative {
            Some(list) => {
                let quoted: Vec<String> = list.iter().map(|a| format!("\"{a}\"")).collect();
                format!("authoritativeServers = [{}]", quoted.join(", "))
            }
            None => String::new(),
        };
        format!(
            r#"
[server]
hostname = "mail.{zone}"
ipv4 = ["192.0.2.10"]
ipv6 = ["2001:db8::10"]

[[server.mailExchangers]]
hostname = "mail.{zone}"
priority = {mx}

[server.services]
imap = {{ cleartext = false }}
submission = {{ cleartext = {cleartext} }}
jmap = {{}}

{tls}

[dnsServer.primary]
kind = "rfc2136"
host = "{host}"
port = {port}
protocol = "tcp"
keyName = "{key_name}"
key = "{secret}"
algorithm = "hmac-sha256"
ttl = 300
propagationDelay = "0s"
pollingInterval = "200ms"
propagationTimeout = "{timeout}"
{authoritative}

[domain."{zone}"]
dmarc = {{ policy = "reject" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [{keys}] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "primary", publishRecords = ["mx", "spf", "dkim", "dmarc", "mtaSts", "tlsRpt", "srv", "autoConfig", "autoConfigLegacy", "autoDiscover", "caa", "tlsa", "address"] }} }}
"#,
            zone = self.zone,
            tls = if self.tls {
                format!(
                    "[server.tls]\ncertificate = \"{}/certs/mail.example.org.pem\"",
                    ex.display()
                )
            } else {
                String::new()
            },
            mx = self.mx_priority,
            cleartext = self.submission_cleartext,
            host = server.addr.ip(),
            port = server.addr.port(),
            key_name = server.key.name,
            secret = self.secret,
            timeout = self.propagation_timeout,
            authoritative = authoritative,
            keys = keys.join(", "),
        )
    }
}

struct Harness {
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    async fn run(
        &self,
        setup: &Setup,
        server: &DnsServer,
        apply: bool,
    ) -> Result<ReconcileReport, EngineError> {
        self.run_with(setup, server, apply, None).await
    }

    async fn run_forced(
        &self,
        setup: &Setup,
        server: &DnsServer,
    ) -> Result<ReconcileReport, EngineError> {
        self.request(setup, server, true, true, None).await
    }

    async fn run_with(
        &self,
        setup: &Setup,
        server: &DnsServer,
        apply: bool,
        after_read: Option<AfterRead>,
    ) -> Result<ReconcileReport, EngineError> {
        self.request(setup, server, apply, false, after_read).await
    }

    async fn request(
        &self,
        setup: &Setup,
        server: &DnsServer,
        apply: bool,
        force: bool,
        after_read: Option<AfterRead>,
    ) -> Result<ReconcileReport, EngineError> {
        let path = self.dir.path().join("mailzone.toml");
        std::fs::write(&path, setup.config_text(server)).unwrap();
        let loaded = load_config(&path)?;
        let request = ReconcileRequest {
            records: RecordsRequest {
                domains: vec![],
                types: vec![],
                state_dir: self.state_dir(),
                now_unix: 1_795_651_200,
                store: None,
            },
            apply,
            force,
            delete_limit: 0.3,
            after_read,
            on_zone: None,
            concurrency: 4,
            both_cores: false,
        };
        reconcile(&loaded, &request, &Silent).await
    }
}

fn start(kind: ServerKind) -> Option<DnsServer> {
    if !mailzone_testkit::require_tools(&kind.tools()) {
        return None;
    }
    let key = TsigKey::generate("mailzone");
    Some(
        DnsServer::start(
            kind,
            &[ZoneSpec::new(ZONE, FOREIGN)],
            &key,
            &ServerOptions::default(),
        )
        .unwrap(),
    )
}

/// The foreign records as the server serves them, for byte-for-byte comparison.
fn foreign_view(server: &DnsServer) -> Vec<Vec<String>> {
    [
        (ZONE, "TXT"),
        ("www.example.test", "A"),
        ("google._domainkey.example.test", "TXT"),
        ("_acme-challenge.example.test", "TXT"),
    ]
    .iter()
    .map(|(n, t)| server.query(n, t))
    .chain([server
        .query(ZONE, "CAA")
        .into_iter()
        .filter(|v| v.contains("digicert"))
        .collect()])
    .map(|mut v| {
        v.retain(|s| !s.contains("v=spf1"));
        v
    })
    .collect()
}

fn change_count(report: &ReconcileReport) -> usize {
    report
        .zones
        .iter()
        .map(|z| z.changes.adds.len() + z.changes.deletes.len())
        .sum()
}

async fn publish_keeps_foreign_records_and_is_idempotent(kind: ServerKind) {
    let Some(server) = start(kind) else { return };
    let harness = Harness::new();
    let setup = Setup::new(&server);
    let before = foreign_view(&server);

    let report = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(report.zones.len(), 1);
    assert_eq!(report.zones[0].updates_sent, 1, "one UPDATE for the zone");
    assert!(report.zones[0].applied);

    // Every desired record is served, checked with kdig rather than our own code.
    assert_eq!(server.query(ZONE, "MX"), vec!["10 mail.example.test."]);
    assert_eq!(server.query("mail.example.test", "A"), vec!["192.0.2.10"]);
    let apex_txt = server.query(ZONE, "TXT");
    assert!(
        apex_txt.iter().any(|t| t.contains("v=spf1 mx -all")),
        "{apex_txt:?}"
    );
    assert!(server.query("_dmarc.example.test", "TXT")[0].contains("v=DMARC1; p=reject"));
    let rsa = server
        .query("202611r._domainkey.example.test", "TXT")
        .join("");
    assert!(
        rsa.contains("k=rsa") && rsa.contains("\" \""),
        "split into strings: {rsa}"
    );
    assert_eq!(
        server.query("_submission._tcp.example.test", "SRV"),
        vec!["0 1 587 mail.example.test."]
    );
    assert_eq!(server.query("_25._tcp.mail.example.test", "TLSA").len(), 2);
    assert!(
        server
            .query(ZONE, "CAA")
            .iter()
            .any(|c| c.contains("letsencrypt.org"))
    );
    // Foreign records are untouched.
    assert_eq!(foreign_view(&server), before);

    // A second apply reads the serial, sees nothing changed, sends no UPDATE.
    let serial = server.serial(ZONE);
    let again = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(change_count(&again), 0);
    assert_eq!(again.zones[0].updates_sent, 0);
    assert!(
        again.zones[0].method.is_none(),
        "warm: the zone was not even read"
    );
    assert_eq!(again.messages, 1, "one SOA query");
    assert_eq!(server.serial(ZONE), serial);

    // Cold (no state database): one read, still no change.
    let cold = Harness::new();
    let report = cold.run(&setup, &server, false).await.unwrap();
    let entries = report.zones[0].entries();
    // The cold run has no ledger, but every record is already right: nothing to do.
    assert!(entries.is_empty(), "{entries:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn knot_publish_keeps_foreign_records_and_is_idempotent() {
    publish_keeps_foreign_records_and_is_idempotent(ServerKind::Knot).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_publish_keeps_foreign_records_and_is_idempotent() {
    publish_keeps_foreign_records_and_is_idempotent(ServerKind::Bind).await;
}

async fn config_changes_give_a_minimal_plan(kind: ServerKind) {
    let Some(server) = start(kind) else { return };
    let harness = Harness::new();
    let mut setup = Setup::new(&server);
    harness.run(&setup, &server, true).await.unwrap();
    let before = foreign_view(&server);

    setup.dkim_keys = vec![("202611e", "202611e.pem")];
    setup.submission_cleartext = false;
    setup.mx_priority = 20;
    let plan = harness.run(&setup, &server, false).await.unwrap();
    let mut lines: Vec<String> = plan.zones[0]
        .entries()
        .iter()
        .map(|e| match e {
            PlanEntry::Add(d) => format!("add {} {}", d.record.name, d.record.data.rtype()),
            PlanEntry::Replace { new, .. } => {
                format!("replace {} {}", new[0].name, new[0].data.rtype())
            }
            PlanEntry::Delete(_, r) => format!("delete {} {}", r.name, r.data.rtype()),
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "delete 202611r._domainkey.example.test. TXT",
            // Port 587 is no longer offered, so its DANE records go too (2 1 1 and 3 1 1).
            "delete _587._tcp.mail.example.test. TLSA",
            "delete _587._tcp.mail.example.test. TLSA",
            "replace _submission._tcp.example.test. SRV",
            "replace example.test. MX",
        ],
        "exactly the minimal plan"
    );
    let applied = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(applied.zones[0].updates_sent, 1);
    assert_eq!(server.query(ZONE, "MX"), vec!["20 mail.example.test."]);
    assert!(
        server
            .query("202611r._domainkey.example.test", "TXT")
            .is_empty()
    );
    assert_eq!(
        server.query("_submission._tcp.example.test", "SRV"),
        vec!["0 0 0 ."]
    );
    assert_eq!(foreign_view(&server), before);
    let after = harness.run(&setup, &server, false).await.unwrap();
    assert_eq!(change_count(&after), 0);
}

/// A warm run plans no records for a zone whose inputs are those it was last found in sync
/// with; the zone is still repaired when someone else changed it, and a change the config
/// file does not show (a key file's contents) is still published.
#[tokio::test(flavor = "multi_thread")]
async fn unchanged_inputs_skip_the_planning_but_never_a_change() {
    let Some(server) = start(ServerKind::Knot) else {
        return;
    };
    let harness = Harness::new();
    let mut setup = Setup::new(&server);
    let keys = tempfile::tempdir().unwrap();
    for file in ["202611e.pem", "202611r.pem"] {
        std::fs::copy(setup.keys_dir.join(file), keys.path().join(file)).unwrap();
    }
    setup.keys_dir = keys.path().to_path_buf();
    let first = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(first.zones_planned, 1);

    let warm = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(
        warm.zones_planned, 0,
        "in sync by serial, records not planned"
    );
    assert!(warm.zones[0].method.is_none());
    assert_eq!(warm.messages, 1, "one SOA query");

    // Someone else deletes the MX: the serial moves, the zone is planned, read and mended.
    server.nsupdate(ZONE, &["update delete example.test. MX"]);
    assert!(server.query(ZONE, "MX").is_empty());
    let mended = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(mended.zones_planned, 1);
    assert_eq!(change_count(&mended), 1, "{:#?}", mended.zones[0].entries());
    assert_eq!(server.query(ZONE, "MX"), vec!["10 mail.example.test."]);
    assert_eq!(
        harness
            .run(&setup, &server, true)
            .await
            .unwrap()
            .zones_planned,
        0
    );

    // Another Ed25519 key in the same file: the config text is unchanged, the digest of the
    // key's contents is not.
    let served_key = || {
        server
            .query("202611e._domainkey.example.test", "TXT")
            .join("")
    };
    let before = served_key();
    let other = mailzone_records::dkim::DkimPrivateKey::generate(
        mailzone_records::DkimAlgorithm::Ed25519Sha256,
        &mut rand::rng(),
    );
    std::fs::write(
        keys.path().join("202611e.pem"),
        other.pkcs8_pem().as_bytes(),
    )
    .unwrap();
    let rotated = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(rotated.zones_planned, 1);
    assert_eq!(rotated.zones[0].updates_sent, 1);
    let after = served_key();
    assert_ne!(after, before);
    let published = other.public_key().txt_value();
    let key_data = published.split("p=").nth(1).unwrap();
    assert!(after.contains(key_data), "{after} lacks {key_data}");

    // A state remembered without the digest of its inputs (an older mailzone wrote it):
    // planned once, found in sync by its serial, and remembered with the digest.
    edit_state(&harness, |state| state.inputs_digest = None).await;
    let upgraded = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(upgraded.zones_planned, 1);
    assert!(upgraded.zones[0].method.is_none(), "in sync by its serial");
    assert_eq!(
        harness
            .run(&setup, &server, true)
            .await
            .unwrap()
            .zones_planned,
        0
    );

    // An older mailzone sharing the store rewrites the desired digest and leaves the
    // inputs column as it was: the pair no longer holds, the zone is planned and read.
    edit_state(&harness, |state| {
        state.desired_digest = "written by an older mailzone".into();
    })
    .await;
    let reread = harness.run(&setup, &server, true).await.unwrap();
    assert_eq!(reread.zones_planned, 1);
    assert!(reread.zones[0].method.is_some(), "the zone was read");
    assert_eq!(change_count(&reread), 0);
    assert_eq!(
        harness
            .run(&setup, &server, true)
            .await
            .unwrap()
            .zones_planned,
        0
    );

    // A plan reads: it uses the remembered digest but never writes one.
    edit_state(&harness, |state| state.inputs_digest = None).await;
    for _ in 0..2 {
        let plan = harness.run(&setup, &server, false).await.unwrap();
        assert_eq!(plan.zones_planned, 1, "plan leaves the state as it was");
    }
}

/// The zone's remembered state, which has the digest of its inputs, changed by `edit` as
/// another program would leave it.
async fn edit_state(harness: &Harness, edit: impl FnOnce(&mut mailzone_store::ZoneState)) {
    let store = mailzone_store::Store::open_sqlite(&harness.state_dir())
        .await
        .unwrap();
    let key = (ZONE.to_string(), "primary".to_string());
    let mut state = store.zone_states().await.unwrap().remove(&key).unwrap();
    assert!(state.inputs_digest.is_some());
    edit(&mut state);
    let zone = mailzone_records::Name::host(ZONE).unwrap();
    store
        .set_zone_state(&zone, "primary", &state, 1)
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn knot_config_changes_give_a_minimal_plan() {
    config_changes_give_a_minimal_plan(ServerKind::Knot).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_config_changes_give_a_minimal_plan() {
    config_changes_give_a_minimal_plan(ServerKind::Bind).await;
}

async fn concurrent_edit_is_caught_and_replanned(kind: ServerKind) {
    let Some(server) = start(kind) else { return };
    let server = Arc::new(server);
    let harness = Harness::new();
    let setup = Setup::new(&server);
    let edited = Arc::new(AtomicBool::new(false));
    let hook = {
        let server = Arc::clone(&server);
        let edited = Arc::clone(&edited);
        Arc::new(move |_: &mailzone_records::Name| {
            // Someone else sets an SPF record between our read and our write, once.
            if !edited.swap(true, Ordering::SeqCst) {
                server.nsupdate(
                    ZONE,
                    &["update add example.test. 3600 TXT \"v=spf1 a ~all\""],
                );
            }
        })
    };
    let report = harness
        .run_with(&setup, &server, true, Some(hook))
        .await
        .unwrap();
    assert!(edited.load(Ordering::SeqCst));
    assert_eq!(
        report.zones[0].replans, 1,
        "the prerequisite failed once, then it re-planned"
    );
    let spf: Vec<String> = server
        .query(ZONE, "TXT")
        .into_iter()
        .filter(|t| t.contains("v=spf1"))
        .collect();
    assert_eq!(
        spf,
        vec!["\"v=spf1 mx -all\""],
        "converged on the desired SPF only"
    );
    assert_eq!(
        change_count(&harness.run(&setup, &server, false).await.unwrap()),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn knot_concurrent_edit_is_caught_and_replanned() {
    concurrent_edit_is_caught_and_replanned(ServerKind::Knot).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_concurrent_edit_is_caught_and_replanned() {
    concurrent_edit_is_caught_and_replanned(ServerKind::Bind).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_waits_for_the_secondary_and_names_a_lagging_one() {
    if !mailzone_testkit::require_tools(&["knotd", "named", "kdig"]) {
        return;
    }
    let key = TsigKey::generate("mailzone");
    let secondary_port = mailzone_testkit::free_port();
    let notify = vec![format!("127.0.0.1:{secondary_port}").parse().unwrap()];
    let primary = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(ZONE, FOREIGN)],
        &key,
        &ServerOptions {
            notify,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let secondary =
        DnsServer::start_secondary_on(secondary_port, primary.addr, &[ZONE], &key).unwrap();
    let harness = Harness::new();
    let mut setup = Setup::new(&primary);
    setup.authoritative = Some(vec![primary.addr.to_string(), secondary.addr.to_string()]);

    harness.run(&setup, &primary, true).await.unwrap();
    // apply returned only once the secondary served the data.
    assert_eq!(secondary.query(ZONE, "MX"), vec!["10 mail.example.test."]);
    assert!(secondary.query("_dmarc.example.test", "TXT")[0].contains("v=DMARC1"));

    secondary.stop();
    setup.mx_priority = 30;
    setup.propagation_timeout = "2s";
    let err = harness
        .run(&setup, &primary, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&secondary.addr.to_string()),
        "names the lagging server: {err}"
    );
    assert!(err.contains("did not serve the change within"), "{err}");
    assert_eq!(
        primary.query(ZONE, "MX"),
        vec!["30 mail.example.test."],
        "the primary has it"
    );
}

/// Without `authoritativeServers`, the zone's NS are polled: the secondary named by the
/// zone's first NS record (`ns1`, 127.0.0.1) on the primary's port (name servers share
/// port 53; the primary listens on 127.0.0.2) is waited for, and a lagging one fails the
/// apply by its address.
#[tokio::test(flavor = "multi_thread")]
async fn apply_without_authoritative_servers_polls_the_zones_name_servers() {
    if !mailzone_testkit::require_tools(&["knotd", "named", "kdig"]) {
        return;
    }
    let key = TsigKey::generate("mailzone");
    let port = mailzone_testkit::free_port();
    let secondary_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let zone_text = format!("{FOREIGN}@ 3600 IN NS ns2.{ZONE}.\nns2 3600 IN A 127.0.0.2\n");
    let primary = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(ZONE, &zone_text)],
        &key,
        &ServerOptions {
            notify: vec![secondary_addr],
            port: Some(port),
            ip: std::net::Ipv4Addr::new(127, 0, 0, 2),
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let secondary = DnsServer::start_secondary_on(port, primary.addr, &[ZONE], &key).unwrap();
    let harness = Harness::new();
    let mut setup = Setup::new(&primary);
    setup.authoritative = None;

    let report = harness.run(&setup, &primary, true).await.unwrap();
    assert!(report.messages > 0);
    assert_eq!(secondary.query(ZONE, "MX"), vec!["10 mail.example.test."]);

    secondary.stop();
    setup.mx_priority = 30;
    setup.propagation_timeout = "1s";
    let err = harness.run(&setup, &primary, true).await.unwrap_err();
    assert!(err.is_transient(), "worth retrying: {err}");
    let err = err.to_string();
    assert!(
        err.contains(&secondary_addr.to_string()),
        "names the NS: {err}"
    );
    assert!(err.contains("did not serve the change within"), "{err}");
}

async fn errors_leave_the_zone_unchanged(kind: ServerKind) {
    let Some(server) = start(kind) else { return };
    let before = server.axfr(ZONE);
    let harness = Harness::new();

    // Wrong key: a secret of the right length that the server does not know.
    let mut setup = Setup::new(&server);
    setup.secret = TsigKey::generate("mailzone").secret_base64;
    let err = harness
        .run(&setup, &server, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("TSIG"), "{err}");
    assert!(!err.contains(&setup.secret), "no secret in messages: {err}");

    // A zone the server does not serve.
    let mut setup = Setup::new(&server);
    setup.zone = "unknown.test";
    let err = harness
        .run(&setup, &server, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown.test"), "{err}");

    let mut sorted_before = before.clone();
    sorted_before.sort();
    let mut after = server.axfr(ZONE);
    after.sort();
    assert_eq!(after, sorted_before, "the zone is unchanged");

    // Server down.
    server.stop();
    let setup = Setup::new(&server);
    let err = harness.run(&setup, &server, true).await.unwrap_err();
    assert!(
        err.is_transient(),
        "a stopped server is worth retrying: {err}"
    );
    assert!(err.to_string().contains(&server.addr.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn knot_errors_leave_the_zone_unchanged() {
    errors_leave_the_zone_unchanged(ServerKind::Knot).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_errors_leave_the_zone_unchanged() {
    errors_leave_the_zone_unchanged(ServerKind::Bind).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_too_much_needs_force() {
    let Some(server) = start(ServerKind::Knot) else {
        return;
    };
    let harness = Harness::new();
    let mut setup = Setup::new(&server);
    harness.run(&setup, &server, true).await.unwrap();
    // Dropping the certificate and the DKIM keys deletes 12 of ~40 managed records: more
    // than 30%, so apply refuses and changes nothing.
    setup.dkim_keys = vec![];
    setup.tls = false;
    let serial = server.serial(ZONE);
    let err = harness
        .run(&setup, &server, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("safety limit") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(server.serial(ZONE), serial, "nothing was sent");
    let forced = harness.run_forced(&setup, &server).await.unwrap();
    assert!(forced.zones[0].applied);
    assert!(
        server
            .query("_25._tcp.mail.example.test", "TLSA")
            .is_empty()
    );
}
