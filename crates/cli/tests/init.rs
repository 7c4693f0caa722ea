//! `mailzone init` end to end: answered through a real pseudo-terminal and from flags, the
//! config it writes is accepted by `records`, published by `apply` and checked by `check`
//! against a real Knot; refusal to overwrite, missing flags, bad values (nothing written);
//! the Postfix importer on the `main.cf` of Debian's postfix package edited with its own
//! `postconf`, the Stalwart importer on a fixture (Stalwart has no Debian package).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mailzone_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailzone"));
    command
        .args(args)
        .env_remove("MAILZONE_CONFIG")
        .env_remove("MAILZONE_STATE_DIR")
        .env("NO_COLOR", "1");
    command
}

/// `mailzone ARGS` with stdin not a terminal.
fn mailzone(args: &[&str]) -> Output {
    mailzone_command(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `mailzone records` on the config (state in `state/` beside it): must succeed.
fn records(config: &Path) -> String {
    let state = config.parent().unwrap().join("state");
    let out = mailzone(&[
        "records",
        "--config",
        path_str(config),
        "--state-dir",
        path_str(&state),
    ]);
    assert!(out.status.success(), "records: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `mailzone check` against `server`, without the MTA-STS fetch.
fn check(config: &Path, server: &DnsServer) -> Output {
    let state = config.parent().unwrap().join("state");
    mailzone(&[
        "check",
        "--config",
        path_str(config),
        "--state-dir",
        path_str(&state),
        "--nameserver",
        &server.addr.to_string(),
        "--no-fetch",
    ])
}

/// The reverse zone of 192.0.2.0/24 naming `host` for `.last`.
fn reverse_zone(last: u8, host: &str) -> ZoneSpec {
    ZoneSpec::new(
        "2.0.192.in-addr.arpa",
        &format!("{last} 3600 IN PTR {host}.\n"),
    )
}

#[test]
fn interactive_answers_through_a_terminal_give_a_config_records_and_check_accept() {
    if !ServerKind::Knot.available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailzone.toml");
    let mut command = mailzone_command(&["init", "--config", path_str(&config)]);
    command.current_dir(dir.path());
    let mut session = rexpect::session::spawn_command(command, Some(20_000)).unwrap();
    let answers = [
        (
            "Mail host name (the MX target, e.g. mx1.example.org)",
            "mail.pty.test",
        ),
        ("Public IPv4 addresses of the mail host", "192.0.2.40"),
        ("Public IPv6 addresses of the mail host", "2001:db8::40x"),
        // The wrong address is explained and asked again.
        ("not an IPv6 address; try again", "2001:db8::40"),
        ("Mail domains, comma-separated [pty.test]", ""),
        ("DNS management: \"manual\"", "manual"),
        ("DKIM key algorithms", "ed25519-sha256"),
        (
            "Where DMARC and TLS-RPT reports go",
            "mailto:dmarc@pty.test",
        ),
    ];
    for (question, answer) in answers {
        session
            .exp_string(question)
            .unwrap_or_else(|e| panic!("waiting for {question:?}: {e}"));
        session.send_line(answer).unwrap();
    }
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("wrote "), "{rest}");
    assert!(
        rest.contains(&format!("mailzone check --config {}", config.display())),
        "{rest}"
    );
    let status = session.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}: {rest}"
    );

    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("hostname = \"mail.pty.test\""),
        "{written}"
    );
    assert!(written.contains("ipv6 = [\"2001:db8::40\"]"), "{written}");
    assert!(
        written.contains("reportAddress = \"mailto:dmarc@pty.test\""),
        "{written}"
    );
    assert!(
        written.contains("algorithms = [\"ed25519-sha256\"]"),
        "{written}"
    );
    assert!(
        written.contains("dnsManagement = { manual = {} }"),
        "{written}"
    );

    // Serve exactly what `records` prints; `check` then finds no error.
    let zone = records(&config);
    assert!(zone.contains("mail.pty.test."), "{zone}");
    assert!(zone.contains("_dmarc.pty.test."), "{zone}");
    let key = TsigKey::generate("init-test");
    let server = DnsServer::start(
        ServerKind::Knot,
        &[
            ZoneSpec::empty("test"),
            ZoneSpec::new("pty.test", &zone),
            reverse_zone(40, "mail.pty.test"),
            // 2001:db8::40
            ZoneSpec::new(
                "8.b.d.0.1.0.0.2.ip6.arpa",
                "0.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 3600 IN PTR mail.pty.test.\n",
            ),
        ],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    let out = check(&config, &server);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", text(&out.stderr));
    assert!(
        report.ends_with("1 domain checked: 0 errors, 0 warnings\n"),
        "{report}"
    );
}

#[test]
fn flags_give_a_config_that_records_apply_and_check_accept() {
    if !ServerKind::Knot.available() {
        return;
    }
    let key = TsigKey::generate("mailzone-init");
    // The mail host's address is published by someone else (`address` is not in the
    // default publishRecords): it is in the zone from the start.
    let server = DnsServer::start(
        ServerKind::Knot,
        &[
            ZoneSpec::empty("test"),
            ZoneSpec::new("flags.test", "mail 3600 IN A 192.0.2.41\n"),
            ZoneSpec::empty("flags2.test"),
            reverse_zone(41, "mail.flags.test"),
        ],
        &key,
        &ServerOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("tsig.key");
    std::fs::write(&key_file, format!("{}\n", key.secret_base64)).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("mailzone.toml");
    let dns_server = format!(
        "kind=rfc2136,host=127.0.0.1,port={},keyName={},keyFile=tsig.key",
        server.addr.port(),
        key.name
    );
    let out = mailzone(&[
        "init",
        "--config",
        path_str(&config),
        "--non-interactive",
        "--hostname",
        "mail.flags.test",
        "--ipv4",
        "192.0.2.41",
        "--domain",
        "flags.test",
        "--domain",
        "flags2.test",
        "--dns-server",
        &dns_server,
        "--dkim-algorithms",
        "ed25519-sha256,rsa-sha256",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for command in ["records", "check", "apply"] {
        assert!(
            stdout.contains(&format!("mailzone {command} --config {}", config.display())),
            "{stdout}"
        );
    }
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        !written.contains(&key.secret_base64),
        "the secret leaked: {written}"
    );
    assert!(written.contains("keyFile = \"tsig.key\""), "{written}");
    assert_eq!(
        written.matches("dnsServer = \"primary\"").count(),
        2,
        "{written}"
    );
    // Every key line is explained by a comment above it.
    assert!(written.lines().filter(|l| l.starts_with('#')).count() > 30);

    let zone = records(&config);
    assert!(zone.contains("flags2.test."), "{zone}");
    let state = dir.path().join("state");
    let apply = mailzone(&[
        "apply",
        "--config",
        path_str(&config),
        "--state-dir",
        path_str(&state),
    ]);
    assert!(
        apply.status.success(),
        "apply: {}{}",
        text(&apply.stdout),
        text(&apply.stderr)
    );
    assert_eq!(
        server.query("_dmarc.flags2.test", "TXT"),
        ["\"v=DMARC1; p=reject; rua=mailto:postmaster@flags2.test\""]
    );
    let out = check(&config, &server);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", text(&out.stderr));
    assert!(
        report.ends_with("2 domains checked: 0 errors, 0 warnings\n"),
        "{report}"
    );
}

#[test]
fn an_existing_file_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailzone.toml");
    std::fs::write(&config, "# mine\n").unwrap();
    let flags = [
        "init",
        "--config",
        path_str(&config),
        "--yes",
        "--hostname",
        "mx.keep.test",
        "--ipv4",
        "192.0.2.1",
        "--domain",
        "keep.test",
    ];
    let out = mailzone(&flags);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {} exists already and is left as it is (--force replaces it)\n",
            config.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");

    let mut forced = flags.to_vec();
    forced.push("--force");
    let out = mailzone(&forced);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("[domain.\"keep.test\"]"), "{written}");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // Only the config: no temporary file left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn missing_answers_name_their_flags_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailzone.toml");
    let config = path_str(&config);
    // --non-interactive on a terminal-less stdin, and a stdin that is no terminal alone.
    for (flags, why) in [
        (
            vec![
                "init",
                "--config",
                config,
                "--non-interactive",
                "--hostname",
                "mx.miss.test",
            ],
            "--non-interactive",
        ),
        (
            vec!["init", "--config", config, "--hostname", "mx.miss.test"],
            "stdin is not a terminal",
        ),
    ] {
        let out = mailzone(&flags);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: missing --ipv4 or --ipv6 (the mail host's public addresses"),
            "{stderr}"
        );
        assert!(
            stderr.contains(", --domain (a mail domain; repeat it for more)"),
            "{stderr}"
        );
        assert!(!stderr.contains("--hostname"), "{stderr}");
        assert!(
            stderr.ends_with(&format!("mailzone init asks no questions when {why}\n")),
            "{stderr}"
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bad_values_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailzone.toml");
    let base = ["init", "--config", path_str(&config), "--yes"];
    let good = [
        ("--hostname", "mx.bad.test"),
        ("--ipv4", "192.0.2.1"),
        ("--domain", "bad.test"),
    ];
    let cases = [
        (
            "--hostname",
            "mx..bad.test",
            "is not a host name: the name has an empty label",
        ),
        ("--hostname", "mailhost", "is not fully qualified"),
        ("--ipv4", "192.0.2.300", "invalid IPv4 address syntax"),
        ("--domain", "bad_domain.test", "is not a domain name"),
        ("--domain", "test", "is not a mail domain"),
    ];
    for (flag, value, expected) in cases {
        let mut args: Vec<&str> = base.to_vec();
        for (f, v) in good.iter().filter(|(f, _)| *f != flag) {
            args.extend([*f, *v]);
        }
        args.extend([flag, value]);
        let out = mailzone(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(expected),
            "{flag} {value}: {stderr}"
        );
    }
    // A TSIG secret given inline is refused without being repeated.
    let mut args: Vec<&str> = base.to_vec();
    for (f, v) in good {
        args.extend([f, v]);
    }
    args.extend([
        "--dns-server",
        "kind=rfc2136,host=192.0.2.53,keyName=k,key=c2VjcmV0c2VjcmV0",
    ]);
    let out = mailzone(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the TSIG secret never goes into the config"),
        "{stderr}"
    );
    assert!(!stderr.contains("c2VjcmV0c2VjcmV0"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A copy of Debian's packaged `main.cf.dist` in `dir`, set with the real `postconf -e`.
fn postfix_main_cf(dir: &Path, settings: &[&str]) -> PathBuf {
    let main_cf = dir.join("main.cf");
    std::fs::copy("/usr/share/postfix/main.cf.dist", &main_cf)
        .expect("/usr/share/postfix/main.cf.dist (Debian's postfix package)");
    let out = Command::new(mailzone_testkit::tool_path("postconf").unwrap())
        .arg("-c")
        .arg(dir)
        .arg("-e")
        .args(settings)
        .output()
        .unwrap();
    assert!(out.status.success(), "postconf -e: {}", text(&out.stderr));
    main_cf
}

/// What Postfix itself makes of a parameter: `postconf -c DIR -x -h NAME`.
fn postconf_expanded(dir: &Path, name: &str) -> String {
    let out = Command::new(mailzone_testkit::tool_path("postconf").unwrap())
        .arg("-c")
        .arg(dir)
        .args(["-x", "-h", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "postconf -x: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn postfix_main_cf_prefills_the_host_and_domains() {
    if !mailzone_testkit::require_tool("postconf") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let main_cf = postfix_main_cf(
        dir.path(),
        &[
            "myhostname = mx1.pf.test",
            "mydomain = pf.test",
            "mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain",
            "virtual_mailbox_domains = pf-virtual.test, Shop.PF-Virtual.test hash:/etc/postfix/vdomains",
        ],
    );
    // Postfix's own reading of the file, the importer's judge.
    assert_eq!(
        postconf_expanded(dir.path(), "mydestination"),
        "mx1.pf.test, localhost.pf.test, localhost, pf.test"
    );
    let config = dir.path().join("out").join("mailzone.toml");
    std::fs::create_dir(config.parent().unwrap()).unwrap();
    let out = mailzone(&[
        "init",
        "--config",
        path_str(&config),
        "--from-postfix",
        path_str(&main_cf),
        "--yes",
        "--ipv4",
        "192.0.2.30",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: virtual_mailbox_domains names hash:/etc/postfix/vdomains, a lookup table or file mailzone does not read: add its domains with --domain"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("hostname = \"mx1.pf.test\""), "{written}");
    assert!(
        written.contains(&format!("# Prefilled from Postfix {}.", main_cf.display())),
        "{written}"
    );
    let domains: Vec<&str> = written
        .lines()
        .filter_map(|l| l.strip_prefix("[domain.\""))
        .collect();
    assert_eq!(
        domains,
        [
            "pf.test\"]",
            "pf-virtual.test\"]",
            "shop.pf-virtual.test\"]"
        ]
    );
    let zone = records(&config);
    assert!(zone.contains("shop.pf-virtual.test."), "{zone}");
}

#[test]
fn postfix_debian_starter_main_cf_has_no_host_name_and_says_so() {
    if !mailzone_testkit::require_tool("postconf") {
        return;
    }
    // The file Debian's postfix tells to start from: no myhostname in it.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailzone.toml");
    let out = mailzone(&[
        "init",
        "--config",
        path_str(&config),
        "--from-postfix",
        "/usr/share/postfix/main.cf.debian",
        "--yes",
        "--ipv4",
        "192.0.2.30",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("note: myhostname is not set in main.cf"),
        "{stderr}"
    );
    assert!(stderr.contains("error: missing --hostname"), "{stderr}");
    assert!(!config.exists());
}

#[test]
fn stalwart_config_prefills_host_domains_and_dkim() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stalwart/config.toml");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailzone.toml");
    let out = mailzone(&[
        "init",
        "--config",
        path_str(&config),
        "--from-stalwart",
        path_str(&fixture),
        "--yes",
        "--ipv4",
        "192.0.2.10",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "no notes expected");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("hostname = \"mx1.example.org\""),
        "{written}"
    );
    assert_eq!(written.matches("[domain.").count(), 1, "{written}");
    assert!(written.contains("[domain.\"example.org\"]"), "{written}");
    assert!(
        written.contains(
            "dkimManagement = { automatic = { algorithms = [\"ed25519-sha256\", \"rsa-sha256\"] } }"
        ),
        "{written}"
    );
    assert!(
        written.contains("#  { selector = \"202409r\", privateKeyFile = \"/var/lib/stalwart-mail/dkim/example.org.rsa.pem\" },"),
        "{written}"
    );
    let zone = records(&config);
    assert!(
        zone.contains("example.org.") && zone.contains("mx1.example.org."),
        "{zone}"
    );
}
