//! ui_table: how long the web UI's domain list takes with 1,000 domains, against the real
//! `mailzone serve` (release build), printed as one table: the first (cold) request and the
//! median and p95 of 50 more, with the page size.
//!
//! The deployment: N domains `dNNNN.test`, each under automatic DNS management through one
//! RFC 2136 server and with automatic DKIM keys (Ed25519 and RSA-2048), the keys put in the
//! state database before the service starts (so that working out whether a zone is in sync
//! decodes two keys per domain, as on a real service). The DNS server's port has nothing
//! listening: the tasks the start schedules fail once each as unreachable and wait an hour
//! before their retry, so no task runs while the pages are measured (the program waits for
//! the start's tasks to settle first).
//!
//! Times are taken by the client around one HTTP/1.1 request on loopback (connect, send,
//! read to the end): the server's time plus well under a millisecond.
//!
//! ```sh
//! cargo build --release -p mailzone
//! cargo run --release -p mailzone-bench --bin ui_table            # 1,000 domains
//! cargo run --release -p mailzone-bench --bin ui_table -- 5000    # more
//! ```
//! The binary is `MAILZONE_BIN`, else `target/release/mailzone`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailzone_records::{DkimAlgorithm, DkimStage};
use mailzone_store::{Store, StoredDkimKey};

const DEFAULT_DOMAINS: usize = 1_000;
const REQUESTS: usize = 50;
/// The target the list must stay under.
const TARGET: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let domains = match std::env::args().nth(1) {
        None => DEFAULT_DOMAINS,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=100_000).contains(&n) => n,
            _ => {
                eprintln!("usage: ui_table [DOMAINS (1..=100000)]");
                return ExitCode::from(2);
            }
        },
    };
    match run(domains) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ui_table: {e}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn binary() -> Result<PathBuf, String> {
    let path = std::env::var_os("MAILZONE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/mailzone"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: run `cargo build --release -p mailzone` or set MAILZONE_BIN",
            path.display()
        ))
    }
}

fn domain(i: usize) -> String {
    format!("d{i:04}.test")
}

fn config(domains: usize, dead_port: u16) -> String {
    let mut text = format!(
        r#"[server]
hostname = "mail.bench.test"
ipv4 = ["192.0.2.10"]

[server.services]
imap = {{}}
submission = {{}}

[dnsServer.dead]
kind = "rfc2136"
host = "127.0.0.1"
port = {dead_port}
timeout = "1s"
"#
    );
    for i in 0..domains {
        text.push_str(&format!(
            "\n[domain.\"{}\"]\ndnsManagement = {{ automatic = {{ dnsServer = \"dead\" }} }}\ndkimManagement = {{ automatic = {{ algorithms = [\"ed25519-sha256\", \"rsa-sha256\"] }} }}\n",
            domain(i)
        ));
    }
    text
}

/// Puts an Active Ed25519 and RSA key for every domain in the state database.
fn store_keys(state_dir: &Path, domains: usize) -> Result<(), String> {
    let keys = repo_root().join("examples/keys");
    let read =
        |name: &str| std::fs::read_to_string(keys.join(name)).map_err(|e| format!("{name}: {e}"));
    let (ed25519, rsa) = (read("202611e.pem")?, read("202611r.pem")?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = Store::open_sqlite(state_dir)
            .await
            .map_err(|e| e.to_string())?;
        for i in 0..domains {
            for (selector, algorithm, pem) in [
                ("bench1e", DkimAlgorithm::Ed25519Sha256, &ed25519),
                ("bench1r", DkimAlgorithm::RsaSha256, &rsa),
            ] {
                let key = StoredDkimKey {
                    domain: domain(i),
                    selector: selector.to_string(),
                    algorithm,
                    private_key_pem: pem.clone().into(),
                    stage: DkimStage::Active,
                    created_at: 1_700_000_000,
                    next_transition: None,
                };
                store
                    .insert_dkim_key_if_absent(&key)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        store.close().await;
        Ok::<(), String>(())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_080)
}

/// An HTTP answer and how long the request took.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    took: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&raw[split + 4..]).to_string(),
        took,
    })
}

/// The `name=value` of each `Set-Cookie`.
fn cookies(answer: &Answer) -> Vec<String> {
    answer
        .header("set-cookie")
        .iter()
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .collect()
}

fn csrf_of(html: &str) -> Result<String, String> {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).ok_or("no CSRF field")? + marker.len();
    Ok(html[at..at + html[at..].find('"').ok_or("unterminated")?].to_string())
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let value: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The service, killed when dropped.
struct Service {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, dir: &Path, addr: SocketAddr) -> Result<(Service, String), String> {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", &addr.to_string()])
        .args(["--retry-backoff", "1h", "--reconcile-interval", "24h"])
        .args(["--check-interval", "24h"])
        .arg("--config")
        .arg(dir.join("mailzone.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("MAILZONE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let output = Arc::new(Mutex::new(String::new()));
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(mut out) = output.lock() {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        });
    }
    let service = Service { child, output };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = service.output.lock().map(|o| o.clone()).unwrap_or_default();
        if out.contains("mailzone: API on ")
            && let Some(at) = out.find("mzt_")
        {
            let token = out[at..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            return Ok((service, token));
        }
        if Instant::now() > deadline {
            return Err(format!("serve did not start:\n{out}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until no task is waiting or running (each start task failed once, retry in 1 h).
fn settle(addr: SocketAddr, token: &str) -> Result<(), String> {
    let auth = format!("Bearer {token}");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut busy = false;
        for status in ["Scheduled", "Running"] {
            let path = format!("/api/v1/tasks?status={status}&limit=1");
            let answer = request(addr, "GET", &path, &[("Authorization", &auth)], "")?;
            busy |= answer.body.trim() != "[]";
        }
        if !busy {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the start's tasks did not settle in 10 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Signs in with the admin token; returns the session cookie.
fn sign_in(addr: SocketAddr, token: &str) -> Result<String, String> {
    let form = request(addr, "GET", "/ui/sign-in", &[], "")?;
    let cookie = cookies(&form).join("; ");
    let csrf = csrf_of(&form.body)?;
    let body = form_encode(&[("csrf", &csrf), ("secret", token), ("next", "/ui/domains")]);
    let signed = request(
        addr,
        "POST",
        "/ui/sign-in",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    )?;
    if signed.status != 303 {
        return Err(format!("sign-in answered {}", signed.status));
    }
    cookies(&signed)
        .into_iter()
        .find(|c| c.starts_with("mailzone_session=") && c.len() > "mailzone_session=".len())
        .ok_or_else(|| "no session cookie".to_string())
}

/// One row of the table: the first request, then `REQUESTS` more.
struct Row {
    what: String,
    first: Duration,
    median: Duration,
    p95: Duration,
    bytes: usize,
    rows: usize,
}

fn measure(addr: SocketAddr, cookie: &str, path: &str, what: &str) -> Result<Row, String> {
    let get = || -> Result<Answer, String> {
        let answer = request(addr, "GET", path, &[("Cookie", cookie)], "")?;
        if answer.status != 200 {
            return Err(format!("{path}: HTTP {}", answer.status));
        }
        Ok(answer)
    };
    let first = get()?;
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        times.push(get()?.took);
    }
    times.sort();
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    Ok(Row {
        what: what.to_string(),
        first: first.took,
        median: pick(0.5),
        p95: pick(0.95),
        bytes: first.body.len(),
        rows: first.body.matches("<tr data-domain=").count(),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn run(domains: usize) -> Result<(), String> {
    let bin = binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("mailzone.toml"),
        config(domains, free_port()),
    )
    .map_err(|e| e.to_string())?;
    let setup = Instant::now();
    store_keys(&dir.path().join("state"), domains)?;
    eprintln!(
        "ui_table: {domains} domains, {} DKIM keys stored in {:.1} s",
        domains * 2,
        setup.elapsed().as_secs_f64()
    );
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .map_err(|e| format!("{e}"))?;
    let (service, token) = start(&bin, dir.path(), addr)?;
    let settling = Instant::now();
    settle(addr, &token)?;
    eprintln!(
        "ui_table: the start's {domains} tasks settled in {:.1} s",
        settling.elapsed().as_secs_f64()
    );
    let cookie = sign_in(addr, &token)?;
    let rows = [
        measure(addr, &cookie, "/ui/domains", "list, page 1 (100 rows)")?,
        measure(
            addr,
            &cookie,
            "/ui/domains?status=out-of-sync",
            "filter out-of-sync (all domains' sync state)",
        )?,
        measure(
            addr,
            &cookie,
            "/ui/domains?page=10",
            "list, page 10 (100 rows)",
        )?,
        measure(addr, &cookie, "/ui/domains?q=d00", "filter q=d00")?,
    ];
    drop(service);
    println!(
        "\n/ui/domains with {domains} domains (mailzone serve, release build; {REQUESTS} requests after the first)\n"
    );
    println!(
        "| request | first (cold cache) | median | p95 | page bytes | rows | under {} ms |",
        TARGET.as_millis()
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.what,
            ms(r.first),
            ms(r.median),
            ms(r.p95),
            r.bytes,
            r.rows,
            if r.p95 < TARGET && r.first < TARGET {
                "yes"
            } else if r.p95 < TARGET {
                "warm only"
            } else {
                "no"
            }
        );
    }
    Ok(())
}
