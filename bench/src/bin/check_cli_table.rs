//! check_cli_table: the FULL `mailzone check` (every check, as the CLI runs it, in a child
//! process with `--nameserver` at one local Knot) on N mail domains (default 1,000), with
//! and without the MTA-STS policy fetch, and checkdmarc 6.0.4 (SPF, DMARC and MX, the part
//! of its checks that stays on the given nameserver) on the same zones, in one table:
//! domains/s, wall time, CPU seconds (user + system, from `wait4`'s rusage), CPU per
//! domain, DNS messages per domain, peak RSS, and the ratio to checkdmarc.
//!
//! The zones are what `mailzone records` prints for the configured domains (automatic
//! Ed25519 DKIM keys, so every domain has a key of its own), each domain its own zone, plus
//! `bench.test` holding the shared mail host `mail.bench.test` (127.0.0.1, where every
//! `mta-sts.<domain>` CNAME leads) and the reverse zone of 127.0.0.1. The policies are
//! served by an HTTPS server of this program on 127.0.0.1 with a certificate from a CA made
//! for the run (`SSL_CERT_FILE` for the child); `--mta-sts-url` points the check at its port
//! (the host is still resolved through Knot).
//!
//! DNS messages are counted in a separate run of each tool through a counting proxy (UDP
//! datagrams and TCP messages from client to server), so the timed runs talk to Knot
//! directly.
//!
//! ```sh
//! cargo build --release -p mailzone -p mailzone-bench
//! target/release/check_cli_table          # 1,000 domains
//! target/release/check_cli_table 200      # fewer
//! ```
//! The mailzone binary is `MAILZONE_BIN`, else `mailzone` next to this program; the
//! Python is `MAILZONE_TEST_PYTHON`, else `<repo>/.venv-test/bin/python`;
//! `CHECK_CONCURRENCY=N` passes `--concurrency N` to mailzone.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const DEFAULT_DOMAINS: usize = 1_000;

fn domain(i: usize) -> String {
    format!("d{i:04}.test")
}

fn config_text(n: usize) -> String {
    let mut text = String::from(
        "[server]\nhostname = \"mail.bench.test\"\nipv4 = [\"127.0.0.1\"]\n\
         [[server.mailExchangers]]\nhostname = \"mail.bench.test\"\npriority = 10\n\
         [server.services]\nimap = { cleartext = false }\n",
    );
    for i in 0..n {
        let _ = write!(
            text,
            "[domain.\"{}\"]\ndmarc = {{ policy = \"reject\" }}\n\
             dkimManagement = {{ automatic = {{ algorithms = [\"ed25519-sha256\"] }} }}\n",
            domain(i)
        );
    }
    text
}

/// The zones: what `records` printed, one zone per domain, plus the mail host's and the
/// reverse zone.
fn zones(records: &str, n: usize) -> Vec<ZoneSpec> {
    let mut zones = vec![
        // The parent zone: the CAA check climbs to `test.`.
        ZoneSpec::empty("test"),
        ZoneSpec::new(
            "bench.test",
            "mail 300 IN A 127.0.0.1\nmail 300 IN TXT \"v=spf1 a -all\"\n",
        ),
        ZoneSpec::new(
            "127.in-addr.arpa",
            "1.0.0.127.in-addr.arpa. 300 IN PTR mail.bench.test.\n",
        ),
    ];
    let mut per: HashMap<String, String> = HashMap::new();
    for line in records.lines() {
        let Some(owner) = line.split_whitespace().next() else {
            continue;
        };
        if owner.starts_with(';') {
            continue;
        }
        // dNNNN.test is the last two labels of every owner.
        let owner = owner.trim_end_matches('.');
        let labels: Vec<&str> = owner.rsplitn(3, '.').collect();
        let zone = format!("{}.{}", labels[1], labels[0]);
        let text = per.entry(zone).or_default();
        text.push_str(line);
        text.push('\n');
    }
    for i in 0..n {
        let d = domain(i);
        zones.push(ZoneSpec::new(&d, &per[&d]));
    }
    zones
}

/// The policy server: HTTPS on 127.0.0.1, a certificate for every `mta-sts.<domain>`.
struct PolicyServer {
    addr: SocketAddr,
    ca_file: PathBuf,
    served: Arc<AtomicUsize>,
}

fn policy_server(n: usize, dir: &Path) -> PolicyServer {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mailzone bench CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let names: Vec<String> = (0..n).map(|i| format!("mta-sts.{}", domain(i))).collect();
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(names)
        .expect("leaf params")
        .signed_by(&leaf_key, &Issuer::new(ca, ca_key))
        .expect("leaf certificate");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).expect("CA file");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (config, count) = (Arc::clone(&config), Arc::clone(&count));
            std::thread::spawn(move || serve_policy(stream, config, &count));
        }
    });
    PolicyServer {
        addr,
        ca_file,
        served,
    }
}

fn serve_policy(stream: TcpStream, config: Arc<rustls::ServerConfig>, count: &AtomicUsize) {
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
    }
    drop(reader);
    let body = "version: STSv1\r\nmode: enforce\r\nmx: mail.bench.test\r\nmax_age: 604800\r\n";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if tls.write_all(response.as_bytes()).is_ok() {
        count.fetch_add(1, Ordering::Relaxed);
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let mut rest = Vec::new();
    let _ = tls.read_to_end(&mut rest);
}

/// A proxy in front of `upstream` counting the DNS messages clients send (UDP datagrams,
/// TCP length-prefixed messages).
struct CountingProxy {
    addr: SocketAddr,
    messages: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn counting_proxy(upstream: SocketAddr) -> CountingProxy {
    // UDP and TCP on one port: the UDP port first, then its TCP twin if free.
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().expect("address")) {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().expect("address");
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let messages = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // UDP: one upstream socket per request (answers matched by the socket).
    {
        let (messages, stop) = (Arc::clone(&messages), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, client)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                messages.fetch_add(1, Ordering::Relaxed);
                let request = buf[..len].to_vec();
                let replies = udp.try_clone().expect("clone");
                std::thread::spawn(move || {
                    let up = UdpSocket::bind("127.0.0.1:0").expect("bind");
                    up.set_read_timeout(Some(Duration::from_secs(5)))
                        .expect("timeout");
                    if up.send_to(&request, upstream).is_err() {
                        return;
                    }
                    let mut answer = vec![0u8; 65535];
                    if let Ok(len) = up.recv(&mut answer) {
                        let _ = replies.send_to(&answer[..len], client);
                    }
                });
            }
        });
    }
    // TCP: bytes copied both ways; requests counted by their length prefixes.
    {
        let (messages, stop) = (Arc::clone(&messages), Arc::clone(&stop));
        std::thread::spawn(move || {
            for client in tcp.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let messages = Arc::clone(&messages);
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let mut prefix = [0u8; 2];
                    while c_read.read_exact(&mut prefix).is_ok() {
                        let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                        if c_read.read_exact(&mut body).is_err() {
                            break;
                        }
                        messages.fetch_add(1, Ordering::Relaxed);
                        if s_write.write_all(&prefix).is_err() || s_write.write_all(&body).is_err()
                        {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
    }
    CountingProxy {
        addr,
        messages,
        stop,
    }
}

const PYTHON: &str = r#"
import sys, time, logging
logging.disable(logging.CRITICAL)
import checkdmarc.spf, checkdmarc.dmarc, checkdmarc.smtp, dns.nameserver
port, n = int(sys.argv[1]), int(sys.argv[2])
ns = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
domains = ["d%04d.test" % i for i in range(n)]
valid = 0
for d in domains:
    s = checkdmarc.spf.check_spf(d, nameservers=ns, timeout=5.0)
    m = checkdmarc.dmarc.check_dmarc(d, nameservers=ns, timeout=5.0)
    x = checkdmarc.smtp.check_mx(d, nameservers=ns, timeout=5.0, skip_tls=True)
    valid += bool(s["valid"]) and bool(m["valid"]) and not x.get("error")
print(valid)
"#;

fn python() -> PathBuf {
    std::env::var_os("MAILZONE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-test/bin/python")
        })
}

fn mailzone_bin() -> PathBuf {
    std::env::var_os("MAILZONE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .expect("own path")
                .with_file_name("mailzone")
        })
}

/// One measured run.
struct Run {
    tool: String,
    wall: Duration,
    cpu: Duration,
    peak_kib: u64,
    messages: Option<usize>,
    /// What the tool found valid (mailzone: domains without an error finding).
    valid: usize,
}

/// Runs `command` to its end with `wait4`: wall time, rusage, stdout.
fn measure(tool: &str, mut command: Command) -> Result<(Duration, Duration, u64, String), String> {
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{tool}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.expect("piped stdout");
    let mut output = String::new();
    stdout
        .read_to_string(&mut output)
        .map_err(|e| e.to_string())?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in; an all-zero value is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; both pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if reaped != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) > 1 {
        return Err(format!("{tool} exited with status {status}"));
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    Ok((wall, cpu, usage.ru_maxrss as u64, output))
}

/// The error the bench's own set-up causes in every domain: its mail host is 127.0.0.1
/// (loopback is all a bench may talk to), which a real MX must not be.
const LOOPBACK_MX: &str = "mx-target-private-address";

/// Domains of a `check --format json` report without an error finding (but
/// [`LOOPBACK_MX`]).
fn mailzone_valid(json: &str) -> usize {
    let report: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    report["domains"]
        .as_array()
        .map(|domains| {
            domains
                .iter()
                .filter(|d| {
                    !d["findings"].as_array().is_some_and(|f| {
                        f.iter()
                            .any(|f| f["severity"] == "error" && f["code"] != LOOPBACK_MX)
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

/// The error codes of a `check --format json` report and how many domains have each, on
/// stderr: what keeps a domain from "valid".
fn print_error_codes(tool: &str, json: &str) {
    let report: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut codes: std::collections::BTreeMap<String, usize> = Default::default();
    for d in report["domains"].as_array().into_iter().flatten() {
        for f in d["findings"].as_array().into_iter().flatten() {
            if f["severity"] == "error" {
                *codes
                    .entry(f["code"].as_str().unwrap_or("").to_string())
                    .or_default() += 1;
            }
        }
    }
    if !codes.is_empty() {
        eprintln!("{tool}: error findings {codes:?}");
        if std::env::var_os("CHECK_TABLE_SHOW").is_some() {
            for d in report["domains"].as_array().into_iter().flatten().take(1) {
                eprintln!("{:#}", d);
            }
        }
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the number of domains"))
        .unwrap_or(DEFAULT_DOMAINS);
    assert!(
        ServerKind::Knot.available(),
        "knotd missing: run scripts/test (it installs knot)"
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("mailzone.toml");
    std::fs::write(&config, config_text(n)).expect("config");
    let state = dir.path().join("state");
    let bin = mailzone_bin();
    let out = Command::new(&bin)
        .args(["records", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = Instant::now();
    let server = DnsServer::start(
        ServerKind::Knot,
        &zones(&records, n),
        &TsigKey::generate("bench"),
        &ServerOptions::default(),
    )
    .expect("knotd starts");
    eprintln!(
        "Knot serving {} zones on {} (ready in {:.2?})",
        n + 3,
        server.addr,
        start.elapsed()
    );
    let https = policy_server(n, dir.path());
    let url = format!(
        "https://mta-sts.{{domain}}:{}/.well-known/mta-sts.txt",
        https.addr.port()
    );

    let mailzone = |at: SocketAddr, fetch: bool| {
        let mut c = Command::new(&bin);
        c.arg("check")
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            // DNS and the MTA-STS fetch only, as checkdmarc: the live TLS probes of the
            // mail host (127.0.0.1 here) are not part of this comparison.
            .args(["--format", "json", "--no-connect", "--nameserver"])
            .arg(at.to_string())
            .env("SSL_CERT_FILE", &https.ca_file);
        if let Some(n) = std::env::var_os("CHECK_CONCURRENCY") {
            c.arg("--concurrency").arg(n);
        }
        if fetch {
            c.args(["--mta-sts-url", &url]);
        } else {
            c.arg("--no-fetch");
        }
        c
    };
    let checkdmarc = |at: SocketAddr| {
        let mut c = Command::new(python());
        c.arg("-c")
            .arg(PYTHON)
            .arg(at.port().to_string())
            .arg(n.to_string());
        c
    };
    // Warm-up: the first questions to a fresh Knot (and the page cache) cost more.
    let _ = measure("warm-up", mailzone(server.addr, false));

    let mut runs = Vec::new();
    type Make<'a> = Box<dyn Fn(SocketAddr) -> Command + 'a>;
    let tools: Vec<(&str, Make<'_>, bool)> = vec![
        (
            "mailzone check --no-fetch",
            Box::new(|at| mailzone(at, false)),
            true,
        ),
        (
            "mailzone check (MTA-STS fetched)",
            Box::new(|at| mailzone(at, true)),
            true,
        ),
        (
            "checkdmarc 6.0.4 (SPF, DMARC, MX)",
            Box::new(checkdmarc),
            false,
        ),
    ];
    for (tool, make, is_mailzone) in &tools {
        let before = https.served.load(Ordering::Relaxed);
        let measured = measure(tool, make(server.addr));
        let fetched = https.served.load(Ordering::Relaxed) - before;
        let (wall, cpu, peak_kib, output) = match measured {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let valid = if *is_mailzone {
            print_error_codes(tool, &output);
            mailzone_valid(&output)
        } else {
            output.trim().parse().unwrap_or(0)
        };
        if fetched > 0 {
            eprintln!("{tool}: {fetched} policies fetched");
        }
        // The count, in a run of its own through the counting proxy.
        let proxy = counting_proxy(server.addr);
        let messages = measure(tool, make(proxy.addr))
            .ok()
            .map(|_| proxy.messages.load(Ordering::Relaxed));
        runs.push(Run {
            tool: tool.to_string(),
            wall,
            cpu,
            peak_kib,
            messages,
            valid,
        });
    }
    print_table(n, &runs);
}

fn print_table(n: usize, runs: &[Run]) {
    let reference = runs.iter().find(|r| r.tool.starts_with("checkdmarc"));
    println!("\nChecks of {n} domains served by one local Knot (2 cores):\n");
    println!(
        "| tool | domains/s | wall time | CPU (user+sys) | CPU/domain | DNS messages/domain | peak RSS | valid | speed vs checkdmarc | CPU vs checkdmarc |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let rate = n as f64 / r.wall.as_secs_f64();
        let (speed, cpu) = match reference {
            Some(c) => (
                format!("{:.1}×", rate / (n as f64 / c.wall.as_secs_f64())),
                format!("{:.2}×", r.cpu.as_secs_f64() / c.cpu.as_secs_f64()),
            ),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {} | {:.0} | {:.2} s | {:.2} s | {:.2} ms | {} | {:.1} MiB | {}/{n} | {} | {} |",
            r.tool,
            rate,
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64(),
            r.cpu.as_secs_f64() * 1000.0 / n as f64,
            r.messages
                .map(|m| format!("{:.1}", m as f64 / n as f64))
                .unwrap_or_else(|| "–".into()),
            r.peak_kib as f64 / 1024.0,
            r.valid,
            speed,
            cpu
        );
    }
}
