//! Config validation: defaults, `dnsServer` and `dnsManagement`, and the key path of each
//! mistake.

use std::path::Path;
use std::time::Duration;

use mailzone_records::config::parse;
use mailzone_records::{
    DnsManagement, DnsProvider, RecordPurpose, SecretSource, Transport, TsigAlgorithm,
};

const SERVER: &str = r#"
[server]
hostname = "mail.example.org"
ipv4 = ["192.0.2.10"]
"#;

fn config(extra: &str) -> Result<mailzone_records::Config, String> {
    parse(&format!("{SERVER}{extra}"), Path::new("/etc/mailzone")).map_err(|e| e.to_string())
}

#[test]
fn issue_3_dns_server_is_accepted() {
    let c = config(
        r#"
[dnsServer.primary]
kind = "rfc2136"
host = "127.0.0.1"
port = 5300
protocol = "tcp"
keyName = "mailzone"
keyFile = "tsig.key"
algorithm = "hmac-sha256"
ttl = 300
propagationDelay = "0s"
pollingInterval = "1s"
propagationTimeout = "30s"
authoritativeServers = ["127.0.0.1:5300", "127.0.0.1:5301"]

[domain."example.org"]
dnsManagement = { automatic = { dnsServer = "primary", origin = "example.org", publishRecords = ["mx", "spf", "dkim", "dmarc", "mtaSts", "tlsRpt", "srv", "autoConfig", "autoConfigLegacy", "autoDiscover", "caa", "tlsa", "address"] } }
"#,
    )
    .unwrap();
    let server = c.dns_server("primary").unwrap();
    let DnsProvider::Rfc2136 {
        host,
        port,
        protocol,
        key_name,
        key,
        algorithm,
    } = &server.provider
    else {
        panic!("an rfc2136 server: {:?}", server.provider);
    };
    assert_eq!(
        (host.as_str(), *port, *protocol),
        ("127.0.0.1", 5300, Transport::Tcp)
    );
    assert_eq!(key_name.as_deref(), Some("mailzone"));
    assert!(
        matches!(key, Some(SecretSource::File(f)) if f.path == Path::new("/etc/mailzone/tsig.key"))
    );
    assert_eq!(*algorithm, TsigAlgorithm::HmacSha256);
    assert_eq!(server.polling_interval, Duration::from_secs(1));
    assert_eq!(server.propagation_timeout, Duration::from_secs(30));
    assert_eq!(server.authoritative_servers.as_ref().map(Vec::len), Some(2));
    let domain = &c.domains[0];
    assert_eq!(
        domain.ttl, 300,
        "the DNS server's ttl applies to its domains"
    );
    match &domain.dns_management {
        DnsManagement::Automatic {
            dns_server,
            publish_records,
        } => {
            assert_eq!(dns_server, "primary");
            assert_eq!(publish_records.len(), 13);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults() {
    let c = config("[domain.\"example.org\"]\n").unwrap();
    let d = &c.domains[0];
    assert_eq!(d.dns_management, DnsManagement::Manual);
    assert_eq!(d.ttl, 3600);
    assert_eq!(d.zone.as_str(), "example.org");
    let c = config(
        "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"127.0.0.1\"\n[domain.\"example.org\"]\ndnsManagement = { automatic = { dnsServer = \"p\" } }\n",
    )
    .unwrap();
    let DnsManagement::Automatic {
        publish_records, ..
    } = &c.domains[0].dns_management
    else {
        panic!()
    };
    assert!(
        !publish_records.contains(&RecordPurpose::Tlsa),
        "tlsa is opt-in"
    );
    assert!(publish_records.contains(&RecordPurpose::Dkim));
    assert_eq!(
        c.dns_servers[0].propagation_timeout,
        Duration::from_secs(120)
    );
}

#[test]
fn mistakes_name_their_key() {
    let cases = [
        (
            "[domain.\"example.org\"]\ndnsManagement = { automatic = { dnsServer = \"nope\" } }\n",
            "domain.\"example.org\".dnsManagement.automatic.dnsServer",
        ),
        (
            "[dnsServer.p]\nkind = \"cloudflair\"\nhost = \"x\"\n",
            "dnsServer.p.kind",
        ),
        (
            "[dnsServer.p]\nkind = \"cloudflare\"\nhost = \"x\"\n",
            "dnsServer.p.apiToken",
        ),
        (
            "[dnsServer.p]\nkind = \"cloudflare\"\napiToken = \"t\"\nzoneId = \"z\"\n",
            "dnsServer.p.zoneId",
        ),
        (
            "[dnsServer.p]\nkind = \"cloudflare\"\napiToken = \"t\"\napiTokenEnv = \"T\"\n",
            "dnsServer.p",
        ),
        (
            "[dnsServer.p]\nkind = \"powerdns\"\nkey = \"k\"\n",
            "dnsServer.p.url",
        ),
        (
            "[dnsServer.p]\nkind = \"powerdns\"\nurl = \"http://127.0.0.1:8081\"\n",
            "dnsServer.p.key",
        ),
        (
            "[dnsServer.p]\nkind = \"powerdns\"\nurl = \"http://127.0.0.1:8081\"\nkey = \"k\"\nhost = \"x\"\n",
            "dnsServer.p.host",
        ),
        ("[dnsServer.p]\nkind = \"zonefile\"\n", "dnsServer.p.path"),
        (
            "[dnsServer.p]\nkind = \"zonefile\"\npath = \"/z/{zone}\"\nzoneFile = \"/z/x\"\n",
            "dnsServer.p.zoneFile",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nmaxRequestsPerSecond = 0\n",
            "dnsServer.p.maxRequestsPerSecond",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nmaxConcurrentZones = 0\n",
            "dnsServer.p.maxConcurrentZones",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nkey = \"c2VjcmV0\"\n",
            "dnsServer.p.keyName",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nkeyName = \"k\"\nkey = \"a\"\nkeyEnv = \"B\"\n",
            "dnsServer.p",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\npollingInterval = \"soon\"\n",
            "dnsServer.p.pollingInterval",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nauthoritativeServers = [\"ns1\"]\n",
            "dnsServer.p.authoritativeServers[0]",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nalgorithm = \"hmac-md5\"\n",
            "dnsServer.p.algorithm",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\n[domain.\"example.org\"]\ndnsManagement = { automatic = { dnsServer = \"p\", publishRecords = [\"mx\", \"txt\"] } }\n",
            "domain.\"example.org\".dnsManagement.automatic.publishRecords[1]",
        ),
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\n[domain.\"sub.example.org\"]\ndnsManagement = { automatic = { dnsServer = \"p\", origin = \"example.net\" } }\n",
            "domain.\"sub.example.org\".dnsManagement.automatic.origin",
        ),
        (
            "[domain.\"example.org\"]\ndkimManagement = { automatic = { onKeyChange = [] } }\n",
            "domain.\"example.org\".dkimManagement.automatic.onKeyChange",
        ),
        (
            "[domain.\"example.org\"]\ndkimManagement = { automatic = { onKeyChange = [\" \", \"x\"] } }\n",
            "domain.\"example.org\".dkimManagement.automatic.onKeyChange[0]",
        ),
    ];
    for (text, key) in cases {
        let err = config(text).unwrap_err();
        assert!(err.starts_with(key), "expected {key} first in: {err}");
    }
}

#[test]
fn an_inline_secret_that_is_not_base64_fails_at_load_without_showing_it() {
    let err = config(
        "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nkeyName = \"k\"\nkey = \"hunter2!secret\"\n",
    )
    .unwrap_err();
    assert!(err.starts_with("dnsServer.p.key"), "{err}");
    assert!(err.contains("base64"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let decode = mailzone_records::config::decode_tsig_secret;
    assert_eq!(decode(" c2VjcmV0\n").unwrap().as_slice(), b"secret");
    assert!(decode("").is_none());
    // The BIND key block tsig-keygen prints is accepted as it is.
    config("[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nkeyName = \"k\"\nkey = '''key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };'''\n").unwrap();
}

#[test]
fn tls_retire_after_has_a_default_and_names_its_key() {
    let base = "[server.tls]\ncertificate = \"c.pem\"\n";
    let c = config(base).unwrap();
    let tls = c.server.tls.unwrap();
    assert_eq!(tls.retire_after, Duration::from_secs(2 * 86_400));
    let err = config(&format!("{base}retireAfter = \"later\"\n")).unwrap_err();
    assert!(err.starts_with("server.tls.retireAfter"), "{err}");
}

#[test]
fn inline_secret_never_shows_in_debug() {
    let c = config("[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\nkeyName = \"k\"\nkey = \"c3VwZXJzZWNyZXQ=\"\n").unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("c3VwZXJzZWNyZXQ="), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn origin_puts_a_subdomain_in_its_parent_zone() {
    let c = config(
        "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\n[domain.\"sub.example.org\"]\ndnsManagement = { automatic = { dnsServer = \"p\", origin = \"example.org\" } }\n",
    )
    .unwrap();
    assert_eq!(c.domains[0].zone.as_str(), "example.org");
}

#[test]
fn on_key_change_is_an_argv_list_relative_to_the_config() {
    let on_key_change = |written: &str| {
        let c = config(&format!(
            "[domain.\"example.org\"]\ndkimManagement = {{ automatic = {{ onKeyChange = {written} }} }}\n"
        ))
        .unwrap();
        match &c.domains[0].dkim_management {
            mailzone_records::DkimManagement::Automatic { on_key_change, .. } => {
                on_key_change.clone()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        on_key_change(r#"["/usr/local/bin/reload", "--quiet"]"#),
        ["/usr/local/bin/reload", "--quiet"]
    );
    // A path with a slash is the config file's neighbour; a bare name is found in PATH.
    assert_eq!(
        on_key_change(r#"["hooks/reload.sh"]"#),
        ["/etc/mailzone/hooks/reload.sh"]
    );
    assert_eq!(
        on_key_change(r#"["systemctl", "reload", "rspamd"]"#)[0],
        "systemctl"
    );
    let c = config("[domain.\"example.org\"]\n").unwrap();
    assert!(matches!(
        &c.domains[0].dkim_management,
        mailzone_records::DkimManagement::Automatic { on_key_change, .. } if on_key_change.is_empty()
    ));
}

#[test]
fn durations_longer_than_a_century_are_refused_with_their_key() {
    // Such a duration used to be accepted and then overflowed the clock it was added to
    // (a panicking worker, or a rotation timer wrapped into the past).
    let cases = [
        (
            "[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\npropagationTimeout = \"500000000000years\"\n",
            "dnsServer.p.propagationTimeout",
        ),
        (
            "[domain.\"example.org\"]\ndkimManagement = { automatic = { rotateAfter = \"200years\" } }\n",
            "domain.\"example.org\".dkimManagement.automatic.rotateAfter",
        ),
        (
            "[server.tls]\ncertificate = \"c.pem\"\nretireAfter = \"101years\"\n",
            "server.tls.retireAfter",
        ),
    ];
    for (text, key) in cases {
        let err = config(text).unwrap_err();
        assert!(err.starts_with(key), "expected {key} first in: {err}");
        assert!(err.contains("at most 100 years"), "{err}");
    }
    config("[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"x\"\npropagationTimeout = \"100years\"\n")
        .unwrap();
    let parse = mailzone_records::config::parse_duration;
    assert_eq!(parse(" 90s ").unwrap(), Duration::from_secs(90));
    assert!(parse("18446744073709551615s").is_err());
}

#[test]
fn unicode_mta_sts_mx_patterns_become_a_labels() {
    // RFC 8461 §3.2's policy grammar is ASCII: `mx: mx.bücher.example` would be invalid.
    let c = config(
        "[domain.\"example.org\"]\nmtaSts = { mx = [\"MX.Bücher.example\", \"*.bücher.example\", \"mail.example.org\"] }\n",
    )
    .unwrap();
    assert_eq!(
        c.domains[0].mta_sts.mx,
        vec![
            "mx.xn--bcher-kva.example",
            "*.xn--bcher-kva.example",
            "mail.example.org"
        ]
    );
    let err = config("[domain.\"example.org\"]\nmtaSts = { mx = [\"bad..name\"] }\n").unwrap_err();
    assert!(
        err.starts_with("domain.\"example.org\".mtaSts.mx[0]"),
        "{err}"
    );
}

#[test]
fn an_algorithm_listed_twice_is_refused_at_its_key() {
    let err = config(
        "[domain.\"example.org\"]\ndkimManagement = { automatic = { algorithms = [\"rsa-sha256\", \"ed25519-sha256\", \"rsa-sha256\"], selectorTemplate = \"{algorithm}{yyyy}{mm}\" } }\n",
    )
    .unwrap_err();
    assert!(
        err.starts_with(
            "domain.\"example.org\".dkimManagement.automatic.algorithms[2]: algorithm listed twice"
        ),
        "{err}"
    );
    let err = config(
        "[domain.\"example.org\"]\ndkimManagement = { automatic = { algorithms = [\"ed25519-sha256\", \" ed25519-sha256\"] } }\n",
    )
    .unwrap_err();
    assert!(
        err.starts_with("domain.\"example.org\".dkimManagement.automatic.algorithms[1]"),
        "{err}"
    );
}

#[test]
fn rsa_key_sizes_outside_2048_to_4096_are_refused_at_their_key() {
    for bits in ["1024", "2047", "8192", "-1", "0"] {
        let err = config(&format!(
            "[domain.\"example.org\"]\ndkimManagement = {{ automatic = {{ rsaBits = {bits} }} }}\n"
        ))
        .unwrap_err();
        assert!(
            err.starts_with("domain.\"example.org\".dkimManagement.automatic.rsaBits")
                && err.contains("2048, 3072 or 4096"),
            "{bits}: {err}"
        );
    }
    let sizes: Vec<usize> = ["", ", rsaBits = 3072", ", rsaBits = 4096"]
        .iter()
        .map(|extra| {
            config(&format!(
                "[domain.\"example.org\"]\ndkimManagement = {{ automatic = {{ algorithms = [\"rsa-sha256\"]{extra} }} }}\n"
            ))
            .unwrap()
            .domains[0]
                .dkim_management
                .rsa_bits()
        })
        .collect();
    assert_eq!(sizes, [2048, 3072, 4096]);
}

#[test]
fn an_empty_file_is_called_empty() {
    for text in ["", "\n\n", "# a comment only\n  # and another\n"] {
        let err = parse(text, Path::new("/etc/mailzone"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the config file is empty") && err.contains("[server]"),
            "{text:?}: {err}"
        );
        assert!(!err.contains("missing field"), "{err}");
    }
    let err = parse("[domain.\"example.org\"]\n", Path::new("/etc/mailzone"))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "server: the [server] table is missing");
}

#[test]
fn a_merged_table_reports_key_paths_without_lines() {
    let mut table: toml::Table = SERVER.parse().unwrap();
    let domain: toml::Table = "dmarc = { policy = 5 }".parse().unwrap();
    let mut domains = toml::Table::new();
    domains.insert("example.org".into(), toml::Value::Table(domain));
    table.insert("domain".into(), toml::Value::Table(domains));
    let err = mailzone_records::config::parse_table(table, Path::new("/etc/mailzone")).unwrap_err();
    assert_eq!(err.key, "domain.\"example.org\".dmarc.policy");
    assert!(!err.message.contains("line"), "{err}");
    let err = mailzone_records::config::parse_table(toml::Table::new(), Path::new("/"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the config file is empty"), "{err}");
}

#[test]
fn an_unknown_provider_kind_names_the_close_ones() {
    let err = mailzone_records::config::parse(
        &format!("{SERVER}[dnsServer.p]\nkind = \"cloudflair\"\n"),
        Path::new("/etc/mailzone"),
    )
    .unwrap_err();
    assert_eq!(err.key, "dnsServer.p.kind");
    assert!(err.message.contains("did you mean cloudflare"), "{err}");
    assert!(err.message.contains("mailzone providers"), "{err}");
}

#[test]
fn every_provider_kind_loads_with_its_settings_and_secrets_stay_sources() {
    let text = format!(
        "{SERVER}\
[dnsServer.pdns]\nkind = \"powerdns\"\nurl = \"http://127.0.0.1:8081/\"\nkeyFile = \"pdns.key\"\ndnsAddress = \"127.0.0.1:5300\"\n\
[dnsServer.files]\nkind = \"zonefile\"\npath = \"zones/{{zone}}.zone\"\nreloadCommand = [\"/usr/sbin/knotc\", \"zone-reload\", \"{{zone}}\"]\n\
[dnsServer.cf]\nkind = \"Cloudflare\"\napiTokenEnv = \"CF_TOKEN\"\nmaxRequestsPerSecond = 4\n"
    );
    let config = mailzone_records::config::parse(&text, Path::new("/etc/mailzone")).unwrap();
    let pdns = config.dns_server("pdns").unwrap();
    assert!(matches!(
        &pdns.provider,
        DnsProvider::PowerDns { url, server_id, key: SecretSource::File(f), dns_address }
            if url == "http://127.0.0.1:8081" && server_id == "localhost"
                && f.path == Path::new("/etc/mailzone/pdns.key")
                && dns_address.map(|a| a.to_string()).as_deref() == Some("127.0.0.1:5300")
    ));
    assert_eq!(pdns.max_concurrent_zones, 4);
    let bad = text.replace("127.0.0.1:5300", "pdns.example");
    let err = mailzone_records::config::parse(&bad, Path::new("/etc/mailzone")).unwrap_err();
    assert_eq!(err.key, "dnsServer.pdns.dnsAddress");
    let files = config.dns_server("files").unwrap();
    assert!(matches!(
        &files.provider,
        DnsProvider::ZoneFile { path, reload_command, .. }
            if path == "/etc/mailzone/zones/{zone}.zone" && reload_command.len() == 3
    ));
    assert_eq!(files.max_concurrent_zones, 16);
    let rfc2136 = mailzone_records::config::parse(
        &format!("{SERVER}[dnsServer.p]\nkind = \"rfc2136\"\nhost = \"127.0.0.1\"\n"),
        Path::new("/etc/mailzone"),
    )
    .unwrap();
    assert_eq!(
        rfc2136.dns_server("p").unwrap().max_concurrent_zones,
        32,
        "an RFC 2136 server: every zone a run holds at once"
    );
    let cf = config.dns_server("cf").unwrap();
    assert_eq!(cf.provider.kind(), "cloudflare");
    assert!(matches!(
        &cf.provider,
        DnsProvider::DnsUpdate { settings, .. }
            if matches!(settings.get("apiToken"), Some(mailzone_records::Setting::Secret(SecretSource::Env(v))) if v == "CF_TOKEN")
    ));
    assert_eq!(
        cf.request_interval,
        Some(std::time::Duration::from_millis(250))
    );
    assert_eq!(cf.max_concurrent_zones, 4, "HTTP APIs: fewer zones at once");
}

/// `Config::domain` through its index: every domain of a few thousand found by its own
/// name (IDN spelling included), unknown names not, a clone and a list changed after the
/// first lookup still answered right.
#[test]
fn domains_are_found_by_name_among_thousands() {
    let mut extra = String::from("[domain]\n\"bücher.example\" = {}\n");
    for i in 0..3000 {
        extra.push_str(&format!("\"d{i:04}.example\" = {{}}\n"));
    }
    let mut c = config(&extra).unwrap();
    let name = |s: &str| mailzone_records::Name::owner(s).unwrap();
    for i in (0..3000).step_by(7) {
        let wanted = name(&format!("d{i:04}.example"));
        assert_eq!(c.domain(&wanted).map(|d| &d.name), Some(&wanted));
    }
    let idn = name("xn--bcher-kva.example");
    assert_eq!(c.domain(&idn).map(|d| &d.name), Some(&idn));
    assert!(c.domain(&name("d3000.example")).is_none());
    assert!(c.domain(&name("example")).is_none());
    let copy = c.clone();
    assert_eq!(copy, c);
    assert!(copy.domain(&name("d2999.example")).is_some());
    let mut added = c.domains[0].clone();
    added.name = name("late.example");
    c.domains.push(added);
    assert!(c.domain(&name("late.example")).is_some());
}
