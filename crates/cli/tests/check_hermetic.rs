//! `mailzone check` is hermetic and bounded: 1,000 domains served by one Knot, each with
//! `mta-sts.<domain>` resolvable only through that Knot (to 127.0.0.1, where this test runs
//! an HTTPS server with a certificate from a CA made for the test, trusted through
//! `SSL_CERT_FILE`). The check with the policy fetch finishes within twice the `--no-fetch`
//! time, really fetches every policy, and — watched by strace — connects only to the Knot
//! and to the HTTPS server, never reading the system resolver's configuration. A name whose
//! questions are never answered is `dns-lookup-failed` naming the server and the question,
//! while the other domains finish within the time bound.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const DOMAINS: usize = 1_000;

fn domain(i: usize) -> String {
    format!("d{i:04}.test")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn key_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/keys/202611e.pem")
        .canonicalize()
        .unwrap()
}

/// One server (`mail.hermetic.test`, 127.0.0.1) and the given domains.
fn config(domains: &[String]) -> String {
    let key = key_file().display().to_string();
    let mut text = String::from(
        "[server]\nhostname = \"mail.hermetic.test\"\nipv4 = [\"127.0.0.1\"]\n\
         [[server.mailExchangers]]\nhostname = \"mail.hermetic.test\"\npriority = 10\n\
         [server.services]\nimap = { cleartext = false }\n",
    );
    for d in domains {
        text.push_str(&format!(
            "[domain.\"{d}\"]\ndmarc = {{ policy = \"reject\" }}\n\
             dkimManagement = {{ manual = {{ keys = [{{ selector = \"202611e\", privateKeyFile = \"{key}\" }}] }} }}\n"
        ));
    }
    text
}

/// The zones as `mailzone records` prints them, split per domain, plus `hermetic.test`
/// (the mail host, where every `mta-sts.<domain>` CNAME leads) and the reverse zone.
fn zones(records: &str, domains: &[String]) -> Vec<ZoneSpec> {
    let mut zones = vec![
        // The parent zone: the CAA check climbs to `test.`.
        ZoneSpec::empty("test"),
        ZoneSpec::new(
            "hermetic.test",
            "mail.hermetic.test. 300 IN A 127.0.0.1\n\
             hermetic.test. 300 IN TXT \"v=spf1 -all\"\n",
        ),
        ZoneSpec::new(
            "127.in-addr.arpa",
            "1.0.0.127.in-addr.arpa. 300 IN PTR mail.hermetic.test.\n",
        ),
    ];
    let mut per_domain: std::collections::HashMap<&str, String> = Default::default();
    for line in records.lines() {
        let Some(owner) = line.split_whitespace().next() else {
            continue;
        };
        if owner.starts_with(';') {
            continue;
        }
        let owner = owner.trim_end_matches('.');
        let zone = domains
            .iter()
            .find(|d| owner == d.as_str() || owner.ends_with(&format!(".{d}")))
            .unwrap_or_else(|| panic!("no zone for {line}"));
        let text = per_domain.entry(zone).or_default();
        text.push_str(line);
        text.push('\n');
    }
    for d in domains {
        zones.push(ZoneSpec::new(d, &per_domain[d.as_str()]));
    }
    zones
}

/// A CA made for the test and a certificate for every `mta-sts.<domain>` it signs.
struct TestCa {
    ca_pem: String,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn test_ca(domains: &[String]) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mailzone check_hermetic CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let names: Vec<String> = domains.iter().map(|d| format!("mta-sts.{d}")).collect();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &Issuer::new(ca, ca_key))
        .unwrap();
    TestCa {
        ca_pem: ca_cert.pem(),
        chain: vec![leaf.der().clone(), ca_cert.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

/// The HTTPS server of the policies on 127.0.0.1: every request gets the policy for the
/// host it names; `served` counts the policies sent.
struct PolicyServer {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

fn policy_server(ca: &TestCa) -> PolicyServer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(ca.chain.clone(), ca.key.clone_key())
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, stopping) = (Arc::clone(&served), Arc::clone(&stop));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stopping.load(Ordering::Relaxed) {
                return;
            }
            let Ok(stream) = stream else { continue };
            let (config, count) = (Arc::clone(&config), Arc::clone(&count));
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut reader = BufReader::new(&mut tls);
                let mut host = String::new();
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(h) = line
                        .strip_prefix("host:")
                        .or_else(|| line.strip_prefix("Host:"))
                    {
                        host = h.trim().split(':').next().unwrap_or("").to_string();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                drop(reader);
                let body = if host.starts_with("mta-sts.") {
                    "version: STSv1\r\nmode: enforce\r\nmx: mail.hermetic.test\r\nmax_age: 604800\r\n"
                } else {
                    ""
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                if tls.write_all(response.as_bytes()).is_ok() {
                    let _ = tls.flush();
                    count.fetch_add(1, Ordering::Relaxed);
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest);
            });
        }
    });
    PolicyServer { addr, served, stop }
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    ca_file: PathBuf,
    server: DnsServer,
}

impl Setup {
    fn start(domains: &[String]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mailzone.toml");
        std::fs::write(&config, self::config(domains)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(["records", "--config"])
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env_remove("MAILZONE_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let zones = zones(&text(&out.stdout), domains);
        let key = TsigKey::generate("hermetic-key");
        let server = DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default())
            .unwrap_or_else(|e| panic!("Knot does not start: {e}"));
        let ca_file = dir.path().join("ca.pem");
        Setup {
            dir,
            config,
            ca_file,
            server,
        }
    }

    /// `mailzone check --format json` with `args`, optionally under strace (its log at
    /// `trace`); returns the output and the wall time.
    fn check(&self, args: &[&str], trace: Option<&Path>) -> (Output, Duration) {
        let binary = env!("CARGO_BIN_EXE_mailzone");
        let mut command = match trace {
            Some(log) => {
                let mut c = Command::new("strace");
                c.args(["-f", "-qq", "-e", "trace=connect,openat,open", "-o"])
                    .arg(log)
                    .arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .arg("check")
            .arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            // The mail host is 127.0.0.1: no live TLS probes (their own test covers them).
            .args(["--format", "json", "--no-connect", "--nameserver"])
            .arg(self.server.addr.to_string())
            .args(args)
            .env_remove("MAILZONE_CONFIG")
            .env("SSL_CERT_FILE", &self.ca_file)
            // A proxy in the environment must not be used either.
            .env("HTTPS_PROXY", "http://192.0.2.1:3128")
            .env("ALL_PROXY", "http://192.0.2.1:3128");
        let start = Instant::now();
        let out = command.output().unwrap();
        (out, start.elapsed())
    }
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// Every finding of the report with `code`, as (domain, finding).
fn with_code<'a>(
    report: &'a serde_json::Value,
    code: &str,
) -> Vec<(&'a str, &'a serde_json::Value)> {
    report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(move |f| f["code"] == code)
                .map(move |f| (d["domain"].as_str().unwrap(), f))
        })
        .collect()
}

/// The `connect()` targets and opened files of an strace log that are not allowed: only
/// `allowed` TCP/UDP endpoints, no Unix socket (nscd, systemd-resolved's varlink), and none
/// of the system resolver's files.
fn forbidden(log: &str, allowed: &[SocketAddr]) -> Vec<String> {
    let mut bad = Vec::new();
    for line in log.lines() {
        if line.contains("connect(") {
            if line.contains("AF_UNSPEC") {
                continue;
            }
            let port = line
                .split("sin_port=htons(")
                .nth(1)
                .or_else(|| line.split("sin6_port=htons(").nth(1))
                .and_then(|r| r.split(')').next())
                .and_then(|p| p.parse::<u16>().ok());
            let ip = line
                .split("inet_addr(\"")
                .nth(1)
                .or_else(|| line.split("inet_pton(AF_INET6, \"").nth(1))
                .and_then(|r| r.split('"').next())
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
            match (ip, port) {
                (Some(ip), Some(port)) if allowed.contains(&SocketAddr::new(ip, port)) => {}
                _ => bad.push(line.to_string()),
            }
        } else if ["resolv.conf", "nsswitch.conf", "/etc/hosts", "nscd"]
            .iter()
            .any(|f| line.contains(f))
        {
            bad.push(line.to_string());
        }
    }
    bad
}

#[test]
fn a_thousand_domains_fetch_their_policies_through_the_given_server_only() {
    if !ServerKind::Knot.available() || !mailzone_testkit::require_tools(&["strace"]) {
        return;
    }
    let domains: Vec<String> = (0..DOMAINS).map(domain).collect();
    let setup = Setup::start(&domains);
    let ca = test_ca(&domains);
    std::fs::write(&setup.ca_file, &ca.ca_pem).unwrap();
    let https = policy_server(&ca);
    let url = format!(
        "https://mta-sts.{{domain}}:{}/.well-known/mta-sts.txt",
        https.addr.port()
    );

    let (no_fetch, no_fetch_time) = setup.check(&["--no-fetch"], None);
    let quiet = report(&no_fetch);
    assert_eq!(quiet["domains"].as_array().unwrap().len(), DOMAINS);
    assert_eq!(https.served.load(Ordering::Relaxed), 0);

    let (fetch, fetch_time) = setup.check(&["--mta-sts-url", &url], None);
    let fetched = report(&fetch);
    assert_eq!(fetched["domains"].as_array().unwrap().len(), DOMAINS);
    for code in [
        "mta-sts-policy-unreachable",
        "mta-sts-policy-invalid",
        "dns-lookup-failed",
    ] {
        let found = with_code(&fetched, code);
        assert!(
            found.is_empty(),
            "{code}: {:#?}",
            &found[..found.len().min(3)]
        );
    }
    assert_eq!(
        https.served.load(Ordering::Relaxed),
        DOMAINS,
        "every policy is fetched once"
    );
    eprintln!("{DOMAINS} domains: --no-fetch {no_fetch_time:.2?}, with the fetch {fetch_time:.2?}");
    assert!(
        fetch_time <= no_fetch_time * 2,
        "with the fetch {fetch_time:.2?}, without {no_fetch_time:.2?}: more than twice"
    );

    // Under strace: every connection goes to the Knot or to the HTTPS server, and the
    // system resolver's files are never opened.
    let log = setup.dir.path().join("strace.log");
    let some: Vec<&str> = domains[..20].iter().map(String::as_str).collect();
    let mut args = vec!["--mta-sts-url", &url];
    args.extend(some);
    let (traced, _) = setup.check(&args, Some(&log));
    let traced_report = report(&traced);
    assert!(with_code(&traced_report, "mta-sts-policy-unreachable").is_empty());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.matches("connect(").count() > 20,
        "strace saw the connections: {log}"
    );
    let allowed = [setup.server.addr, https.addr];
    let bad = forbidden(&log, &allowed);
    assert!(
        bad.is_empty(),
        "connections or files outside {allowed:?}: {bad:#?}"
    );
}

/// A proxy in front of `upstream` that never answers UDP questions whose name contains
/// `silent`; TCP (the DNSSEC check's questions) is passed through as it is.
struct SilentProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for SilentProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn silent_proxy(upstream: SocketAddr, silent: &'static str) -> SilentProxy {
    // UDP and TCP on one port: the UDP port first, then its TCP twin if free.
    let (socket, tcp) = loop {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = TcpListener::bind(socket.local_addr().unwrap()) {
            break (socket, tcp);
        }
    };
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in tcp.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = std::net::TcpStream::connect(upstream) else {
                continue;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut buf = [0u8; 65535];
        while !stopping.load(Ordering::Relaxed) {
            let Ok((n, client)) = socket.recv_from(&mut buf) else {
                continue;
            };
            if question_name(&buf[..n]).contains(silent) {
                continue;
            }
            let request = buf[..n].to_vec();
            let replies = socket.try_clone().unwrap();
            std::thread::spawn(move || {
                let up = UdpSocket::bind("127.0.0.1:0").unwrap();
                up.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                up.send_to(&request, upstream).unwrap();
                let mut answer = [0u8; 65535];
                if let Ok(n) = up.recv(&mut answer) {
                    let _ = replies.send_to(&answer[..n], client);
                }
            });
        }
    });
    SilentProxy { addr, stop }
}

/// The first question's name of a DNS message, as dotted text (RFC 1035 §4.1.2).
fn question_name(message: &[u8]) -> String {
    let mut at = 12;
    let mut labels = Vec::new();
    while let Some(&len) = message.get(at) {
        if len == 0 || len & 0xC0 != 0 {
            break;
        }
        let start = at + 1;
        let end = start + usize::from(len);
        let Some(label) = message.get(start..end) else {
            break;
        };
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at = end;
    }
    labels.join(".")
}

#[test]
fn an_unanswered_name_is_reported_and_the_other_domains_finish_on_time() {
    if !ServerKind::Knot.available() {
        return;
    }
    let domains: Vec<String> = ["d0000.test", "d0001.test", "silent.test", "d0002.test"]
        .map(String::from)
        .to_vec();
    let setup = Setup::start(&domains);
    let proxy = silent_proxy(setup.server.addr, "silent.test");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .arg("check")
        .arg("--config")
        .arg(&setup.config)
        .arg("--state-dir")
        .arg(setup.dir.path().join("state"))
        .args([
            "--format",
            "json",
            "--no-fetch",
            "--no-connect",
            "--nameserver",
        ])
        .arg(proxy.addr.to_string())
        .args(["--timeout", "10s", "--domain-timeout", "2s"])
        .env_remove("MAILZONE_CONFIG")
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let report = report(&out);
    // The silent domain is bounded by --domain-timeout (2 s), not by --timeout (10 s).
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:.2?}");
    let failed = with_code(&report, "dns-lookup-failed");
    assert!(!failed.is_empty(), "{report:#}");
    for (domain, finding) in &failed {
        assert_eq!(*domain, "silent.test", "{finding:#}");
    }
    // The question and the server asked are named.
    let proxy_addr = proxy.addr.to_string();
    let mx = failed
        .iter()
        .map(|(_, f)| f)
        .find(|f| {
            f["name"] == "silent.test."
                && f["message"].as_str().unwrap().contains("silent.test. MX")
        })
        .unwrap_or_else(|| panic!("no failed MX question: {failed:#?}"));
    let seen = mx["seen"].as_str().unwrap();
    assert!(
        seen.contains(&format!(
            "no answer to silent.test. MX from {proxy_addr} within the domain's time limit of 2 s"
        )),
        "{seen}"
    );
    // The other domains were checked completely: their questions were answered.
    for d in ["d0000.test", "d0001.test", "d0002.test"] {
        let findings = report["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["domain"] == d)
            .unwrap();
        assert!(
            !findings["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == "dns-lookup-failed"),
            "{findings:#}"
        );
    }
}
