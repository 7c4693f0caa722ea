//! The measurement of bench/README.md, "serve with 100,000 domains": the release
//! `mailzone serve` on a config of N domains (default 100,000), each its own zone in one
//! real knotd on a loopback port, with automatic ed25519 DKIM keys. It reports the time to
//! start (listening, then the start-up tasks written), the resident memory after the start
//! and after each of several drift slices, the time each slice's scheduling took (from the
//! service's log), and the latency of `GET /api/v1/domains?limit=100`, while the workers
//! publish the domains. Not in the suite (minutes, gigabytes):
//!
//! ```sh
//! cargo build --release -p mailzone
//! cargo test -p mailzone-server --test serve_100k -- --ignored --nocapture
//! ```
//!
//! `MAILZONE_BIN` names another binary, `MAILZONE_SERVE_DOMAINS` another size,
//! `MAILZONE_SERVE_SLICES` how many drift slices to wait for (default 6),
//! `MAILZONE_SERVE_TICK` the seconds between two slices (default 10).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

fn domain(i: u64) -> String {
    format!("d{i:06}.scale.test")
}

fn config(server: &DnsServer, domains: u64) -> String {
    let mut text = format!(
        "[server]\nhostname = \"mail.scale.test\"\nipv4 = [\"192.0.2.10\"]\n\n{}\n",
        server.dns_server_table(
            "primary",
            "propagationDelay = \"0s\"\npollingInterval = \"50ms\"\npropagationTimeout = \"60s\"\n",
        ),
    );
    text.push_str(&mailzone_testkit::automatic_domain_tables(
        (0..domains).map(domain),
    ));
    text
}

/// VmRSS and VmHWM of a process, in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The number after `key=` in a log line (text or JSON log format).
fn field(line: &str, key: &str) -> Option<u64> {
    for pattern in [format!("{key}="), format!("\"{key}\":")] {
        if let Some(at) = line.find(&pattern) {
            let rest = &line[at + pattern.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: minutes and gigabytes, run by hand (bench/README.md)"]
async fn serve_with_100000_domains() {
    let domains = mailzone_testkit::env_number("MAILZONE_SERVE_DOMAINS", 100_000);
    let slices = mailzone_testkit::env_number("MAILZONE_SERVE_SLICES", 6);
    let tick = mailzone_testkit::env_number("MAILZONE_SERVE_TICK", 10);
    let binary = std::env::var("MAILZONE_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/mailzone").to_string()
    });
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let zones: Vec<ZoneSpec> = (0..domains).map(|i| ZoneSpec::empty(&domain(i))).collect();
    let key = TsigKey::generate("mailzone");
    let knot = DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default())
        .expect("knotd starts");
    drop(zones);
    eprintln!("knotd serves {domains} zones after {:?}", started.elapsed());
    let config_path = tmp.path().join("mailzone.toml");
    std::fs::write(&config_path, config(&knot, domains)).unwrap();
    eprintln!(
        "config: {} MiB",
        std::fs::metadata(&config_path).unwrap().len() / (1 << 20)
    );

    // The interval that makes one slice every `tick` seconds.
    let plan = mailzone_engine::tasks::DriftPlan::new(domains as usize, Duration::from_secs(1));
    let interval = format!("{}s", tick * plan.slices as u64);
    let port = mailzone_testkit::free_port();
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .args(["serve", "--config"])
        .arg(&config_path)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--reconcile-interval", &interval])
        .args(["--check-interval", "24h"])
        // The schedule's lines (and a line per task started, dropped below).
        .env("MAILZONE_LOG", "warn,mailzone_server=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailzone serve starts");
    let pid = child.id();
    let log = Arc::new(Mutex::new(Vec::<(Duration, String)>::new()));
    let stderr = child.stderr.take().unwrap();
    let stderr_log = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !line.contains("scheduled") && !line.contains("ERROR") {
                continue;
            }
            stderr_log.lock().unwrap().push((started.elapsed(), line));
        }
    });
    // stdout: the admin token, then the API line once the port is bound.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut token = String::new();
    let listening = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "serve exited");
        if let Some(at) = line.find("mzt_") {
            token = line[at..].trim().to_string();
        }
        if line.contains("API on") {
            break started.elapsed();
        }
    };
    std::thread::spawn(move || for _ in stdout.lines() {});
    let wait_for = |what: &str, count: usize, timeout: Duration| -> Vec<(Duration, String)> {
        let until = Instant::now() + timeout;
        loop {
            let found: Vec<_> = log
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, l)| l.contains(what))
                .cloned()
                .collect();
            if found.len() >= count || Instant::now() > until {
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let scheduled = wait_for("scheduled at start", 1, Duration::from_secs(1800));
    let (at_start, start_line) = scheduled
        .first()
        .cloned()
        .expect("start-up tasks scheduled");
    let (rss_start, _) = memory(pid);
    eprintln!(
        "listening after {listening:?}; start-up tasks ({} tasks, {} ms) written after {at_start:?}; RSS {rss_start:.1} MiB",
        field(&start_line, "tasks").unwrap_or(0),
        field(&start_line, "millis").unwrap_or(0),
    );

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let mut latencies = Vec::new();
    let mut rss_after = Vec::new();
    let mut seen = 0;
    while seen < slices as usize {
        let lines = wait_for(
            "drift check scheduled",
            seen + 1,
            Duration::from_secs(tick * 3 + 60),
        );
        assert!(lines.len() > seen, "no drift slice");
        seen = lines.len();
        let (at, line) = lines.last().unwrap().clone();
        let (rss, hwm) = memory(pid);
        rss_after.push(rss);
        let waiting = client
            .get(format!("{base}/tasks?status=Scheduled&limit=1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let waiting = waiting.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .to_string();
        eprintln!(
            "slice {seen} at {at:?}: {} tasks in {} ms; RSS {rss:.1} MiB (peak {hwm:.1}); {waiting} tasks Scheduled",
            field(&line, "tasks").unwrap_or(0),
            field(&line, "millis").unwrap_or(0),
        );
        // A page of domains, ten times between two slices.
        for n in 0..10u64 {
            let offset = (n * 9_973 * (seen as u64)) % domains;
            let asked = Instant::now();
            let response = client
                .get(format!("{base}/domains?limit=100&offset={offset}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let total = response.headers()["x-total-count"]
                .to_str()
                .unwrap()
                .to_string();
            let body = response.bytes().await.unwrap();
            latencies.push(asked.elapsed());
            assert_eq!(total, domains.to_string());
            assert!(body.starts_with(b"["));
        }
    }
    latencies.sort();
    // The task list: a page and the count of the whole table.
    let mut task_latencies = Vec::new();
    for n in 0..20u64 {
        let asked = Instant::now();
        let response = client
            .get(format!("{base}/tasks?limit=100&offset={}", n * 1_000))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        task_latencies.push(asked.elapsed());
    }
    task_latencies.sort();
    eprintln!(
        "GET /tasks?limit=100: {} requests, median {:?}, p95 {:?}, max {:?}",
        task_latencies.len(),
        percentile(&task_latencies, 0.5),
        percentile(&task_latencies, 0.95),
        task_latencies.last().unwrap()
    );
    let tasks = client
        .get(format!("{base}/tasks?limit=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let total_tasks = tasks.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .to_string();
    let (rss_end, hwm) = memory(pid);
    let first = rss_after.first().copied().unwrap_or(rss_start);
    eprintln!(
        "RSS over the slices: first {first:.1} MiB, last {rss_end:.1} MiB, max {:.1} MiB",
        rss_after.iter().copied().fold(0.0, f64::max)
    );
    eprintln!(
        "GET /domains?limit=100: {} requests, median {:?}, p95 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().unwrap()
    );
    eprintln!(
        "after {seen} slices: RSS {rss_end:.1} MiB, peak {hwm:.1} MiB; {total_tasks} tasks in the table; {:?} since the start",
        started.elapsed()
    );
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = child.wait();
    drop(knot);
}
