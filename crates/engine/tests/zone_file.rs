//! Publishing into zone files (`kind = "zonefile"`) that a real Knot loads: the whole zone
//! file with mailzone's block (every other byte kept, the SOA serial bumped), the include
//! layout, the reload command (`knotc zone-reload`), and a failed reload that puts the
//! previous file back. The files written are checked by `named-checkzone` too.

use std::path::{Path, PathBuf};
use std::process::Command;

use mailzone_engine::{EngineError, ReconcileReport};
mod common;

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec, tool_path};

const ZONE: &str = "zf.test";
/// Foreign lines: a comment, a multi-line record, a TXT at the apex that mailzone's SPF
/// shares a name with.
const FOREIGN: &str = "; hand-written, keep me\n\
www 3600 IN A 192.0.2.80 ; the web server\n\
@ 3600 IN TXT ( \"google-site-verification=abc\"\n    \"second string\" )\n";

fn config_text(path: &Path, extra: &str, server: &DnsServer, policy: &str, reload: &str) -> String {
    format!(
        r#"
[server]
hostname = "mail.zf.test"
ipv4 = ["192.0.2.10"]

[dnsServer.files]
kind = "zonefile"
path = "{path}"
reloadCommand = {reload}
authoritativeServers = ["{addr}"]
pollingInterval = "50ms"
propagationTimeout = "10s"
{extra}

[domain."zf.test"]
dmarc = {{ policy = "{policy}" }}
dkimManagement = {{ manual = {{ keys = [] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "files", publishRecords = ["mx", "spf", "dmarc", "address"] }} }}
"#,
        path = path.display(),
        addr = server.addr,
    )
}

fn knotc_reload(server: &DnsServer) -> String {
    format!(
        "[\"{}\", \"-c\", \"{}\", \"zone-reload\", \"{{zone}}\"]",
        tool_path("knotc").unwrap().display(),
        server.config_path().display()
    )
}

async fn run(dir: &Path, text: &str) -> Result<ReconcileReport, EngineError> {
    common::apply(dir, text, None).await
}

fn start(records: &str) -> Option<DnsServer> {
    let tools = [
        ServerKind::Knot.tools().as_slice(),
        &["knotc", "named-checkzone"],
    ]
    .concat();
    if !mailzone_testkit::require_tools(&tools) {
        return None;
    }
    let server = DnsServer::start(
        ServerKind::Knot,
        &[ZoneSpec::new(ZONE, records)],
        &TsigKey::generate("unused"),
        &ServerOptions::default(),
    )
    .unwrap();
    Some(server)
}

fn zone_path(server: &DnsServer) -> PathBuf {
    server.dir().join(format!("{ZONE}.zone"))
}

fn named_checkzone(file: &Path) {
    let output = Command::new(tool_path("named-checkzone").unwrap())
        .args([ZONE])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "named-checkzone: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_zone_file_keeps_foreign_lines_and_knot_serves_the_records() {
    let Some(server) = start(FOREIGN) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let file = zone_path(&server);
    let original = std::fs::read_to_string(&file).unwrap();
    let text = config_text(&file, "", &server, "reject", &knotc_reload(&server));

    let report = run(tmp.path(), &text).await.unwrap();
    assert!(report.zones[0].applied, "{report:#?}");
    let written = std::fs::read_to_string(&file).unwrap();
    // Every line before the block is the original's, the SOA serial aside.
    let before_block = written.split("; BEGIN mailzone").next().unwrap();
    assert_eq!(
        before_block,
        original.replacen(" 1 3600 600", " 2 3600 600", 1)
    );
    named_checkzone(&file);
    assert_eq!(server.query(ZONE, "MX"), vec!["10 mail.zf.test."]);
    let txt = server.query(ZONE, "TXT");
    assert!(
        txt.iter()
            .any(|t| t == "\"google-site-verification=abc\" \"second string\""),
        "{txt:?}"
    );
    assert!(txt.iter().any(|t| t.contains("v=spf1")), "{txt:?}");
    assert_eq!(server.query("www.zf.test", "A"), vec!["192.0.2.80"]);

    // Unchanged: the serial settles it, the file is not touched.
    let report = run(tmp.path(), &text).await.unwrap();
    assert_eq!(report.zones[0].method, None, "{report:#?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);

    // A change replaces mailzone's record in the block, the serial moves on.
    let changed = config_text(&file, "", &server, "quarantine", &knotc_reload(&server));
    run(tmp.path(), &changed).await.unwrap();
    assert!(server.query("_dmarc.zf.test", "TXT")[0].contains("p=quarantine"));
    let rewritten = std::fs::read_to_string(&file).unwrap();
    assert!(!rewritten.contains("p=reject"), "{rewritten}");
    assert!(rewritten.contains(" 3 3600 600"), "{rewritten}");
    assert!(
        rewritten.contains("; hand-written, keep me\nwww 3600 IN A 192.0.2.80 ; the web server\n")
    );
    named_checkzone(&file);

    // A reload that fails puts the previous file back and says so.
    let failing = config_text(&file, "", &server, "none", "[\"/bin/false\"]");
    let e = run(tmp.path(), &failing).await.unwrap_err();
    assert!(e.class().is_transient(), "{e}");
    assert!(e.to_string().contains("was put back"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), rewritten);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_include_layout_rewrites_its_own_file_and_bumps_the_including_zone() {
    let tmp = tempfile::tempdir().unwrap();
    let include = tmp.path().join("mail.inc");
    std::fs::write(&include, "").unwrap();
    let records = format!("{FOREIGN}$INCLUDE {}\n", include.display());
    let Some(server) = start(&records) else {
        return;
    };
    let file = zone_path(&server);
    let extra = format!("layout = \"include\"\nzoneFile = \"{}\"", file.display());
    let text = config_text(&include, &extra, &server, "reject", &knotc_reload(&server));

    run(tmp.path(), &text).await.unwrap();
    let included = std::fs::read_to_string(&include).unwrap();
    assert!(included.contains("IN MX"), "{included}");
    assert!(!included.contains("google-site-verification"), "{included}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains(" 2 3600 600")
    );
    named_checkzone(&file);
    assert_eq!(server.query(ZONE, "MX"), vec!["10 mail.zf.test."]);
    assert_eq!(server.query("www.zf.test", "A"), vec!["192.0.2.80"]);
    // The foreign TXT in the zone file was read: one SPF beside it, nothing duplicated.
    let txt = server.query(ZONE, "TXT");
    assert_eq!(txt.len(), 2, "{txt:?}");
}
