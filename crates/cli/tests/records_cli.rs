//! `mailzone records` end to end: the example's full output (snapshots), the state
//! database (keys stable across runs, file modes), and one clear error per kind of bad
//! input, with nothing written to the state directory.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn mailzone(args: &[&str], state_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .env_remove("MAILZONE_CONFIG")
        .env_remove("MAILZONE_LOG")
        .output()
        .expect("the mailzone binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "mailzone failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("output is UTF-8")
}

fn example_config() -> String {
    examples().join("example.org.toml").display().to_string()
}

#[test]
fn example_org_zone_snapshot() {
    let state = tempfile::tempdir().unwrap();
    let out = stdout(&mailzone(
        &["records", "--config", &example_config(), "example.org"],
        state.path(),
    ));
    insta::assert_snapshot!("example_org_zone", out);
}

#[test]
fn example_org_json_snapshot() {
    let state = tempfile::tempdir().unwrap();
    let out = stdout(&mailzone(
        &[
            "records",
            "--config",
            &example_config(),
            "example.org",
            "--format",
            "json",
        ],
        state.path(),
    ));
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    for record in parsed.as_array().unwrap() {
        let keys: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in ["domain", "name", "type", "ttl", "value", "recordType"] {
            assert!(keys.contains(&key), "{key} missing in {record}");
        }
    }
    insta::assert_snapshot!("example_org_json", out);
}

/// example.net's DKIM keys are generated, so its snapshot leaves them out; the keys are
/// checked for stability below.
#[test]
fn example_net_zone_snapshot_without_generated_keys() {
    let state = tempfile::tempdir().unwrap();
    let types =
        "mx,address,spf,dmarc,tlsRpt,mtaSts,srv,autoConfig,autoConfigLegacy,autoDiscover,caa,tlsa";
    let out = stdout(&mailzone(
        &[
            "records",
            "--config",
            &example_config(),
            "example.net",
            "--types",
            types,
        ],
        state.path(),
    ));
    insta::assert_snapshot!("example_net_zone", out);
    // Without dkim in --types, nothing needed the state database.
    assert!(!state.path().join("mailzone.db").exists());
}

#[test]
fn automatic_keys_are_generated_once_and_kept_private() {
    let parent = tempfile::tempdir().unwrap();
    let state = parent.path().join("state");
    let run = || {
        stdout(&mailzone(
            &[
                "records",
                "--config",
                &example_config(),
                "example.net",
                "--types",
                "dkim",
            ],
            &state,
        ))
    };
    let first = run();
    assert_eq!(
        first.matches("._domainkey.example.net.").count(),
        2,
        "{first}"
    );
    assert!(
        first.contains("k=ed25519") && first.contains("k=rsa"),
        "{first}"
    );
    assert_eq!(run(), first, "a second run must print the same keys");

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("mailzone.db")), 0o600);

    let other = tempfile::tempdir().unwrap();
    let fresh = stdout(&mailzone(
        &[
            "records",
            "--config",
            &example_config(),
            "example.net",
            "--types",
            "dkim",
        ],
        other.path(),
    ));
    assert_ne!(fresh, first, "another state directory gets other keys");
}

#[test]
fn unicode_domains_become_a_labels() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &base_config().replace("[domain.\"example.net\"]", "[domain.\"bücher.example\"]"),
    );
    let state = dir.path().join("state");
    let out = stdout(&mailzone(
        &[
            "records",
            "--config",
            &config,
            "bücher.example",
            "--types",
            "mx,dmarc",
        ],
        &state,
    ));
    assert!(out.contains("xn--bcher-kva.example. "), "{out}");
    assert!(out.contains("_dmarc.xn--bcher-kva.example."), "{out}");
    assert!(
        out.contains("rua=mailto:postmaster@xn--bcher-kva.example"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Bad input: one line naming the file, the key and the value; exit 1; no state written.

/// The example with absolute file names, so that copies in temporary directories work.
fn base_config() -> String {
    let text = std::fs::read_to_string(examples().join("example.org.toml")).unwrap();
    let ex = examples().canonicalize().unwrap();
    text.replace("\"certs/", &format!("\"{}/certs/", ex.display()))
        .replace("\"keys/", &format!("\"{}/keys/", ex.display()))
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("mailzone.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs `records` on the base config with `from` replaced by `to`, expects a failure, and
/// returns the single stderr line.
fn error_for(from: &str, to: &str, extra_args: &[&str]) -> String {
    let base = base_config();
    assert!(base.contains(from), "the example must contain {from:?}");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &base.replacen(from, to, 1));
    let state = dir.path().join("state");
    let mut args = vec!["records", "--config", config.as_str()];
    args.extend_from_slice(extra_args);
    let output = mailzone(&args, &state);
    assert_eq!(output.status.code(), Some(1), "must fail: {output:?}");
    assert!(output.stdout.is_empty(), "no records printed on error");
    assert!(
        !state.exists(),
        "nothing may be written to the state directory"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&config), "names the file: {stderr}");
    stderr
}

fn assert_mentions(stderr: &str, parts: &[&str]) {
    for part in parts {
        assert!(stderr.contains(part), "{part:?} not in: {stderr}");
    }
}

#[test]
fn invalid_ip() {
    let e = error_for("\"192.0.2.10\"", "\"192.0.2.300\"", &[]);
    assert_mentions(&e, &["server.ipv4[0]", "192.0.2.300", "IPv4"]);
    let e = error_for("\"2001:db8::10\"", "\"2001:db8::g\"", &[]);
    assert_mentions(&e, &["server.ipv6[0]", "2001:db8::g", "IPv6"]);
}

#[test]
fn over_long_label_and_name() {
    let label = "a".repeat(64);
    let e = error_for(
        "hostname = \"mail.example.org\"\nipv4",
        &format!("hostname = \"{label}.example.org\"\nipv4"),
        &[],
    );
    assert_mentions(&e, &["server.hostname", &label, "63"]);
    let long = vec!["abcdefghij"; 24].join(".") + ".example";
    let e = error_for(
        "[domain.\"example.net\"]",
        &format!("[domain.\"{long}\"]"),
        &[],
    );
    assert_mentions(&e, &["domain.", &long, "253"]);
}

#[test]
fn unknown_key_is_not_ignored() {
    let e = error_for("reportAddress", "reportAdress", &[]);
    assert_mentions(&e, &["server", "reportAdress"]);
    let e = error_for(
        "dmarc = { policy = \"reject\" }",
        "dmarc = { polcy = \"reject\" }",
        &[],
    );
    assert_mentions(&e, &["domain.\"example.org\".dmarc", "polcy"]);
}

#[test]
fn bad_enum_value() {
    let e = error_for("policy = \"reject\"", "policy = \"rejected\"", &[]);
    assert_mentions(&e, &["domain.\"example.org\".dmarc.policy", "rejected"]);
}

#[test]
fn unknown_record_type() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let output = mailzone(
        &[
            "records",
            "--config",
            &example_config(),
            "--types",
            "mx,dkimm",
        ],
        &state,
    );
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_mentions(
        &stderr,
        &["dkimm", "unknown record type", "autoConfigLegacy"],
    );
    assert!(!state.exists());
}

#[test]
fn unknown_domain_argument() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let output = mailzone(
        &["records", "--config", &example_config(), "example.com"],
        &state,
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_mentions(
        &stderr,
        &["example.com", "not in", "example.org, example.net"],
    );
    assert!(!state.exists());
}

#[test]
fn missing_key_file() {
    let e = error_for("keys/202611e.pem", "keys/missing.pem", &[]);
    assert_mentions(
        &e,
        &[
            "domain.\"example.org\".dkimManagement.manual.keys[0].privateKeyFile",
            "missing.pem",
            "No such file",
        ],
    );
}

#[test]
fn unreadable_certificate_file() {
    // A directory where a file is expected cannot be read, even by root.
    let e = error_for("certs/mail.example.org.pem", "certs", &[]);
    assert_mentions(&e, &["server.tls.certificate", "cannot read"]);
}

#[test]
fn a_device_or_fifo_as_certificate_or_key_fails_at_once() {
    // /dev/zero used to be read until memory ran out, a FIFO without a writer blocked
    // forever: both are refused before they are opened.
    let base = base_config();
    let ex = examples().canonicalize().unwrap();
    let cert = format!("\"{}/certs/mail.example.org.pem\"", ex.display());
    let e = error_for(&cert, "\"/dev/zero\"", &[]);
    assert_mentions(
        &e,
        &["server.tls.certificate", "/dev/zero", "not a regular file"],
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let key = format!("\"{}/keys/202611e.pem\"", ex.display());
    assert!(base.contains(&key));
    let started = std::time::Instant::now();
    let e = error_for(&key, &format!("\"{}\"", fifo.display()), &[]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_mentions(&e, &["privateKeyFile", "not a regular file"]);
}

#[test]
fn an_oversized_certificate_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'A'; 2 << 20]).unwrap();
    let ex = examples().canonicalize().unwrap();
    let cert = format!("\"{}/certs/mail.example.org.pem\"", ex.display());
    let e = error_for(&cert, &format!("\"{}\"", big.display()), &[]);
    assert_mentions(&e, &["server.tls.certificate", "larger than 1 MiB"]);
}

#[test]
fn chain_without_leaf() {
    let e = error_for("certs/mail.example.org.pem", "certs/ca.pem", &[]);
    assert_mentions(
        &e,
        &[
            "server.tls.certificate",
            "ca.pem",
            "no leaf",
            "CA certificate",
        ],
    );
}

#[test]
fn wrong_key_type() {
    // The example's TLS key is an EC P-256 key: not a DKIM key.
    let e = error_for("keys/202611r.pem", "certs/mail.example.org.key", &[]);
    assert_mentions(
        &e,
        &[
            "keys[1].privateKeyFile",
            "wrong key type",
            "mail.example.org.key",
        ],
    );
    // A certificate is not a key either.
    let e = error_for("keys/202611r.pem", "certs/ca.pem", &[]);
    assert_mentions(
        &e,
        &["keys[1].privateKeyFile", "wrong key type", "CERTIFICATE"],
    );
}

#[test]
fn toml_syntax_error() {
    let e = error_for("priority = 10", "priority = ", &[]);
    assert_mentions(&e, &["line ", "TOML syntax error"]);
}

#[test]
fn missing_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = dir.path().join("nope.toml");
    let output = mailzone(
        &["records", "--config", &path.display().to_string()],
        &state,
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_mentions(&stderr, &["nope.toml", "cannot read the config file"]);
    assert!(!state.exists());
}
