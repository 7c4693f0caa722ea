use super::*;
use clap::Parser as _;

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    init: InitArgs,
}

fn args(flags: &[&str]) -> InitArgs {
    Cli::try_parse_from(std::iter::once("init").chain(flags.iter().copied()))
        .unwrap()
        .init
}

fn machine() -> Machine {
    Machine {
        hostname: Some("box.example.org".into()),
        ipv4: vec!["192.0.2.7".parse().unwrap()],
        ipv6: vec![],
    }
}

#[test]
fn questions_take_defaults_from_the_importer_and_the_machine() {
    let imported = Imported {
        hostname: Some("mx1.example.org".into()),
        domains: vec!["example.org".into(), "example.net".into()],
        ..Imported::default()
    };
    let mut out = Vec::new();
    // Enter for every question: the defaults.
    let input = "\n".repeat(7);
    let mut prompt = Prompt::new(input.as_bytes(), &mut out);
    let answers = ask(&args(&[]), None, imported, &machine(), &mut prompt).unwrap();
    assert_eq!(answers.hostname, "mx1.example.org");
    assert_eq!(answers.ipv4, ["192.0.2.7".parse::<Ipv4Addr>().unwrap()]);
    assert!(answers.ipv6.is_empty());
    assert_eq!(answers.domains, ["example.org", "example.net"]);
    assert_eq!(answers.dns_server, None);
    assert_eq!(
        answers.dkim_algorithms,
        [DkimAlgorithm::Ed25519Sha256, DkimAlgorithm::RsaSha256]
    );
    assert_eq!(answers.report_address, "mailto:postmaster");
    let asked = String::from_utf8(out).unwrap();
    assert!(
        asked.contains("Mail host name (the MX target, e.g. mx1.example.org) [mx1.example.org]: "),
        "{asked}"
    );
    assert!(asked.contains("[192.0.2.7]: "), "{asked}");
    assert!(
        asked.contains("comma-separated [example.org, example.net]: "),
        "{asked}"
    );
}

#[test]
fn flags_skip_their_questions() {
    let mut out = Vec::new();
    let mut prompt = Prompt::new(&b""[..], &mut out);
    let answers = ask(
        &args(&[
            "--hostname",
            "MX1.Example.ORG.",
            "--ipv4",
            "192.0.2.1",
            "--domain",
            "example.org",
            "--dkim-algorithms",
            "ed25519-sha256",
            "--report-address",
            "mailto:dmarc@example.org",
        ]),
        Some(dns_server::parse("kind=rfc2136,host=192.0.2.53").unwrap()),
        Imported::default(),
        &machine(),
        &mut prompt,
    )
    .unwrap();
    assert_eq!(answers.hostname, "mx1.example.org");
    assert_eq!(answers.dkim_algorithms, [DkimAlgorithm::Ed25519Sha256]);
    let asked = String::from_utf8(out).unwrap();
    assert_eq!(asked.lines().count(), 1, "{asked}");
}

#[test]
fn missing_flags_are_named_together() {
    let e = from_flags(
        &args(&[]),
        None,
        Imported::default(),
        &machine(),
        "--non-interactive",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "missing --hostname (the mail host, e.g. mx1.example.org), --ipv4 or --ipv6 (the mail host's public addresses; this machine has 192.0.2.7), --domain (a mail domain; repeat it for more): mailzone init asks no questions when --non-interactive"
    );
}

#[test]
fn an_rfc2136_server_is_asked_with_where_its_secret_lives() {
    let mut out = Vec::new();
    let input = "rfc2136\nns1..example.org\n192.0.2.53\n\n\nkeys/tsig.key\n\n\n\n";
    let mut prompt = Prompt::new(input.as_bytes(), &mut out);
    let flags = [
        "--hostname",
        "mx.example.org",
        "--ipv6",
        "2001:db8::1",
        "--domain",
        "example.org",
    ];
    let answers = ask(
        &args(&flags),
        None,
        Imported::default(),
        &machine(),
        &mut prompt,
    )
    .unwrap();
    let server = answers.dns_server.unwrap();
    assert_eq!(server.host, "192.0.2.53");
    assert_eq!(server.port, Some(53));
    assert_eq!(server.key_name.as_deref(), Some("mailzone"));
    assert_eq!(server.key_file.as_deref(), Some("keys/tsig.key"));
    assert_eq!(server.algorithm.as_deref(), Some("hmac-sha256"));
    let asked = String::from_utf8(out).unwrap();
    assert!(
        asked.contains("neither an IP address nor a host name"),
        "{asked}"
    );
    assert!(
        asked.contains("the secret never goes into the config) [tsig.key]: "),
        "{asked}"
    );
}

#[test]
fn a_text_the_loader_refuses_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailzone.toml");
    let e = write_validated(&path, "[server]\nhostname = \"mx..example.org\"\n", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "the config does not load, nothing was written: {}: server.hostname: ",
            path.display()
        )),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    write_validated(&path, "[server]\nhostname = \"mx.example.org\"\n", false).unwrap();
    assert!(
        write_validated(&path, "[server]\nhostname = \"mx.example.org\"\n", false)
            .unwrap_err()
            .to_string()
            .contains("exists already")
    );
}

#[test]
fn names_must_be_fully_qualified_and_well_formed() {
    assert_eq!(
        parse_host("Bücher.example").unwrap(),
        "xn--bcher-kva.example"
    );
    assert!(
        parse_host("mailhost")
            .unwrap_err()
            .contains("not fully qualified")
    );
    assert!(
        parse_domain("exa mple.org")
            .unwrap_err()
            .contains("not a domain name")
    );
    assert!(parse_report_address("mailto:a b").is_err());
    assert_eq!(shell_word("/tmp/a b.toml"), "'/tmp/a b.toml'");
    assert_eq!(shell_word("conf/mailzone.toml"), "conf/mailzone.toml");
}
