//! The `dns-update` path end to end: `mailzone apply` through the library's PowerDNS
//! provider (`kind = "pdns"`, RRset by RRset over the HTTP API) against a real PowerDNS,
//! killed with SIGKILL between two RRset writes (`MAILZONE_CRASH_AT=rrset-written`), then
//! run again: every record published once, the foreign ones untouched, and a third run
//! that writes nothing.

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, Output};

use mailzone_testkit::{POWERDNS_TOOLS, PowerDns, ZoneSpec, query_at};

const ZONE: &str = "du.test";

fn mailzone(dir: &Path, args: &[&str], crash_at: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailzone"));
    command
        .args(args)
        .arg("--config")
        .arg(dir.join("mailzone.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"));
    if let Some(step) = crash_at {
        command.env("MAILZONE_CRASH_AT", step);
    }
    command.output().unwrap()
}

fn dig(server: &PowerDns, name: &str, rtype: &str) -> Vec<String> {
    let mut rdata = query_at(server.dns, name, rtype).unwrap().rdata;
    rdata.sort();
    rdata
}

#[test]
fn a_run_killed_between_two_rrset_writes_is_finished_by_the_next() {
    if !mailzone_testkit::require_tools(POWERDNS_TOOLS) {
        return;
    }
    let foreign = "@ 3600 IN TXT \"google-site-verification=abc\"\nwww 3600 IN A 192.0.2.80\n";
    let server = PowerDns::start(&[ZoneSpec::new(ZONE, foreign)]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[server]
hostname = "mail.du.test"
ipv4 = ["192.0.2.10"]

[dnsServer.pdns]
kind = "pdns"
endpoint = "{url}"
apiKeyEnv = "PDNS_TEST_KEY"
maxRequestsPerSecond = 200
authoritativeServers = []

[domain."du.test"]
dmarc = {{ policy = "reject" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "pdns", publishRecords = ["mx", "spf", "dmarc", "caa", "address"] }} }}
"#,
        url = server.api_url
    );
    std::fs::write(tmp.path().join("mailzone.toml"), config).unwrap();
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("PDNS_TEST_KEY", &server.api_key) };

    // The plan says the changes go RRset by RRset, without a guard against other writers.
    let plan = mailzone(tmp.path(), &["plan"], None);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("provider: read: RRset by RRset; atomic: no — applied RRset by RRset; conditional writes: no"),
        "{text}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let plan = mailzone(tmp.path(), &["plan", "--format", "json"], None);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let capabilities = &json["zones"][0]["capabilities"];
    assert_eq!(capabilities["atomic"], false, "{json}");
    assert_eq!(capabilities["conditional"], "none", "{json}");

    let killed = mailzone(tmp.path(), &["apply"], Some("rrset-written"));
    assert_eq!(
        killed.status.signal(),
        Some(9),
        "{:?}: {}",
        killed.status,
        String::from_utf8_lossy(&killed.stderr)
    );
    // The first RRset was written, not the others.
    let written = ["MX", "CAA", "A"]
        .iter()
        .filter(|t| !dig(&server, ZONE, t).is_empty())
        .count()
        + usize::from(!dig(&server, "_dmarc.du.test", "TXT").is_empty())
        + usize::from(!dig(&server, "mail.du.test", "A").is_empty());
    assert!(
        written <= 1,
        "only one RRset before the kill, saw {written}"
    );

    let finished = mailzone(tmp.path(), &["apply"], None);
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert_eq!(dig(&server, ZONE, "MX"), vec!["10 mail.du.test."]);
    assert_eq!(dig(&server, "mail.du.test", "A"), vec!["192.0.2.10"]);
    assert_eq!(dig(&server, "www.du.test", "A"), vec!["192.0.2.80"]);
    let txt = dig(&server, ZONE, "TXT");
    assert_eq!(txt.len(), 2, "the foreign TXT and one SPF: {txt:?}");
    assert!(txt.contains(&"\"google-site-verification=abc\"".to_string()));
    assert_eq!(dig(&server, "_dmarc.du.test", "TXT").len(), 1);
    assert_eq!(
        dig(&server, ZONE, "CAA"),
        vec![
            "0 iodef \"mailto:postmaster@du.test\"",
            "0 issue \"letsencrypt.org\""
        ]
    );

    // Converged: the plan is empty (exit 0 with --detailed-exitcode) and nothing is written.
    let plan = mailzone(tmp.path(), &["plan", "--detailed-exitcode"], None);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
}

/// `mailzone providers`: every kind (mailzone's three and dns-update's 72) with its keys and
/// capabilities; a typo gets the close names.
#[test]
fn providers_lists_every_kind_with_its_keys_and_capabilities() {
    let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["providers", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let kinds: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(kinds.len(), 3 + 72);
    let by_kind = |k: &str| kinds.iter().find(|e| e["kind"] == k).unwrap().clone();
    let pdns = by_kind("powerdns");
    assert_eq!(pdns["capabilities"]["atomic"], true);
    assert_eq!(pdns["capabilities"]["conditional"], "serial");
    let cloudflare = by_kind("cloudflare");
    assert_eq!(cloudflare["settings"][0]["key"], "apiToken");
    assert_eq!(cloudflare["settings"][0]["secret"], true);
    assert_eq!(cloudflare["capabilities"]["atomic"], false);
    assert_eq!(cloudflare["capabilities"]["minTtl"], 60);

    let typo = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["providers", "powerdsn"])
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(stderr.contains("did you mean powerdns"), "{stderr}");
}

/// A moto Route 53 server on a free loopback port, killed when dropped.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto(program: &Path) -> Moto {
    let port = mailzone_testkit::free_port();
    let child = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = mailzone_testkit::poll_until(std::time::Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(ready, "moto_server did not start");
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Runs boto3 against moto: `script` gets a client `c`; what it prints is returned.
fn boto3(python: &Path, moto: &Moto, script: &str) -> String {
    let prelude = format!(
        "import boto3\nc = boto3.client('route53', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n",
        moto.url
    );
    let out = Command::new(python)
        .args(["-c", &format!("{prelude}{script}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// dns-update's Route 53 provider (`kind = "route53"`, `endpoint` on loopback) against moto's
/// Route 53 API: published, the foreign TXT value kept in the shared RRset, then in sync.
#[test]
fn route53_through_dns_update_against_moto() {
    let Some(program) = mailzone_testkit::test_venv_program("moto_server") else {
        return;
    };
    let Some(python) = mailzone_testkit::test_python(&["boto3"]) else {
        return;
    };
    let moto = start_moto(&program);
    let zone_id = boto3(
        &python,
        &moto,
        "z = c.create_hosted_zone(Name='r53.test.', CallerReference='mailzone')['HostedZone']['Id']\n\
         c.change_resource_record_sets(HostedZoneId=z, ChangeBatch={'Changes': [{'Action': 'CREATE', 'ResourceRecordSet': {'Name': 'r53.test.', 'Type': 'TXT', 'TTL': 300, 'ResourceRecords': [{'Value': '\"google-site-verification=abc\"'}]}}]})\n\
         print(z.split('/')[-1])",
    );
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[server]
hostname = "mail.r53.test"
ipv4 = ["192.0.2.10"]

[dnsServer.aws]
kind = "route53"
accessKeyId = "test"
secretAccessKey = "test"
hostedZoneId = "{zone}"
endpoint = "{url}"
authoritativeServers = []

[domain."r53.test"]
dmarc = {{ policy = "reject" }}
dkimManagement = {{ manual = {{ keys = [] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "aws", publishRecords = ["mx", "spf", "dmarc", "address"] }} }}
"#,
        zone = zone_id.trim(),
        url = moto.url
    );
    std::fs::write(tmp.path().join("mailzone.toml"), config).unwrap();

    let applied = mailzone(tmp.path(), &["apply"], None);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let listed = boto3(
        &python,
        &moto,
        &format!(
            "for r in c.list_resource_record_sets(HostedZoneId='{}')['ResourceRecordSets']:\n    print(r['Name'], r['Type'], sorted(x['Value'] for x in r.get('ResourceRecords', [])))",
            zone_id.trim()
        ),
    );
    assert!(
        listed.contains("r53.test. MX ['10 mail.r53.test.']"),
        "{listed}"
    );
    assert!(
        listed.contains("r53.test. TXT ['\"google-site-verification=abc\"', '\"v=spf1 mx -all\"']"),
        "{listed}"
    );
    assert!(
        listed.contains("mail.r53.test. A ['192.0.2.10']"),
        "{listed}"
    );
    assert!(listed.contains("_dmarc.r53.test. TXT"), "{listed}");

    let plan = mailzone(tmp.path(), &["plan", "--detailed-exitcode"], None);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
}
