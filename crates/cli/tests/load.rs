//! `mailzone serve` under load against one real Knot: many domains, each in its own zone,
//! published by 4 workers while clients keep asking the API (health, a page of tasks, a
//! domain, a page of 50 domains); then a soak in which the
//! service reconciles every domain again and again. Every domain ends published, the API
//! answers with a p99 under 100 ms throughout, and the service's memory stays flat.
//! Loopback only.
//!
//! In the suite: 300 domains and a 20 s soak. The full run of docs/reliability.md is
//! `MAILZONE_LOAD_DOMAINS=10000 MAILZONE_LOAD_SOAK_SECONDS=600` (about 15 minutes).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Service, client};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec, poll_until};

const WORKERS: &str = "4";
/// The p99 the API must keep, under publication and during the soak.
const P99_TARGET: Duration = Duration::from_millis(100);

fn domain(i: u64) -> String {
    format!("d{i:05}.load.test")
}

fn config(server: &DnsServer, domains: u64) -> String {
    let mut text = format!(
        r#"
[server]
hostname = "mail.load.test"
ipv4 = ["192.0.2.10"]

{dns_server}
"#,
        dns_server = server.dns_server_table(
            "primary",
            "propagationDelay = \"0s\"\npollingInterval = \"50ms\"\npropagationTimeout = \"60s\"\n",
        ),
    );
    text.push_str(&mailzone_testkit::automatic_domain_tables(
        (0..domains).map(domain),
    ));
    text
}

/// The resident set of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap()
}

/// API requests a client keeps sending until `stop`, with each answer's latency.
fn api_client(
    service: Arc<Service>,
    stop: Arc<AtomicBool>,
    domains: u64,
) -> std::thread::JoinHandle<Vec<(Instant, Duration)>> {
    std::thread::spawn(move || {
        let http = client();
        let mut latencies = Vec::new();
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let path = match i % 4 {
                0 => "/healthz".to_string(),
                1 => "/api/v1/tasks?limit=20".to_string(),
                2 => format!("/api/v1/domains/{}", domain(i % domains)),
                _ => format!("/api/v1/domains?offset={}&limit=50", (i * 50) % domains),
            };
            let asked = Instant::now();
            let response = http
                .get(service.url(&path))
                .bearer_auth(&service.token)
                .send()
                .unwrap();
            let status = response.status().as_u16();
            let _ = response.bytes().unwrap();
            latencies.push((asked, asked.elapsed()));
            assert_eq!(status, 200, "{path}");
            i += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        latencies
    })
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    latencies.sort();
    let at = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
    latencies[at]
}

/// The count of tasks of each status, from the API's listing.
fn task_counts(service: &Service) -> (usize, usize, usize) {
    let (mut done, mut failed, mut open) = (0, 0, 0);
    for status in ["Succeeded", "Failed", "Scheduled", "Running"] {
        let (code, tasks) = service.get(&format!("/api/v1/tasks?status={status}&limit=1000"));
        assert_eq!(code, 200, "{tasks}");
        let n = tasks.as_array().unwrap().len();
        match status {
            "Succeeded" => done = n,
            "Failed" => failed = n,
            _ => open += n,
        }
    }
    (done, failed, open)
}

#[test]
fn serve_publishes_every_domain_and_keeps_the_api_fast_and_its_memory_flat() {
    if !mailzone_testkit::require_tools(&ServerKind::Knot.tools()) {
        return;
    }
    let domains = mailzone_testkit::env_number("MAILZONE_LOAD_DOMAINS", 300);
    let soak = Duration::from_secs(mailzone_testkit::env_number(
        "MAILZONE_LOAD_SOAK_SECONDS",
        20,
    ));
    let zones: Vec<ZoneSpec> = (0..domains)
        .map(|i| ZoneSpec::new(&domain(i), ""))
        .collect();
    let key = TsigKey::generate("mailzone");
    let knot = DnsServer::start(ServerKind::Knot, &zones, &key, &ServerOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mailzone.toml"), config(&knot, domains)).unwrap();

    // Publication: the start-up schedules one DnsManagement task per domain.
    let started = Instant::now();
    let service = Arc::new(Service::start_with(
        tmp.path(),
        None,
        &["--workers", WORKERS],
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| api_client(Arc::clone(&service), Arc::clone(&stop), domains))
        .collect();
    let published = poll_until(Duration::from_secs(domains.max(120)), || {
        let (done, failed, open) = task_counts(&service);
        assert_eq!(failed, 0, "a task failed: {}", service.output());
        done as u64 >= domains.min(1000) && open == 0
    });
    let publication = started.elapsed();
    assert!(
        published,
        "not every domain was published: {}",
        service.output()
    );
    stop.store(true, Ordering::SeqCst);
    let mut during: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .map(|(_, l)| l)
        .collect();
    for i in (0..domains).step_by((domains / 20).max(1) as usize) {
        let name = domain(i);
        assert_eq!(knot.query(&name, "MX"), ["10 mail.load.test."], "{name}");
        assert!(
            knot.query(&format!("_dmarc.{name}"), "TXT")
                .iter()
                .any(|t| t.contains("v=DMARC1")),
            "{name}"
        );
    }
    let p99_publication = percentile(&mut during, 0.99);
    eprintln!(
        "{domains} domains published by {WORKERS} workers in {publication:?}; API p50 {:?} p99 {p99_publication:?} over {} requests",
        percentile(&mut during, 0.5),
        during.len()
    );
    let service = Arc::try_unwrap(service).ok().unwrap();
    let token = service.token.clone();
    service.terminate();

    // Soak: the same state, every domain reconciled again every few seconds (at least
    // 5 s, longer with more domains: a round of no-op tasks ends before the next).
    let interval = format!("{}s", (domains / 100).max(5));
    let service = Arc::new(Service::start_with(
        tmp.path(),
        Some(&token),
        &["--workers", WORKERS, "--reconcile-interval", &interval],
    ));
    let pid = service.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| api_client(Arc::clone(&service), Arc::clone(&stop), domains))
        .collect();
    let soak_started = Instant::now();
    let mut rss = Vec::new();
    while soak_started.elapsed() < soak {
        std::thread::sleep(Duration::from_secs(1));
        rss.push(rss_bytes(pid));
    }
    stop.store(true, Ordering::SeqCst);
    let mut soaking: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .map(|(_, l)| l)
        .collect();
    let (done, failed, _) = task_counts(&service);
    assert_eq!(
        failed,
        0,
        "a task failed during the soak: {}",
        service.output()
    );
    let p99_soak = percentile(&mut soaking, 0.99);
    let third = rss.len() / 3;
    let early = *rss[..third.max(1)].iter().max().unwrap();
    let late = *rss[rss.len() - third.max(1)..].iter().max().unwrap();
    eprintln!(
        "soak of {soak:?}: {done} tasks succeeded (latest 1000 listed); API p50 {:?} p99 {p99_soak:?} over {} requests; RSS {} MB in the first third, {} MB in the last",
        percentile(&mut soaking, 0.5),
        soaking.len(),
        early / 1_000_000,
        late / 1_000_000
    );
    assert!(
        p99_publication < P99_TARGET && p99_soak < P99_TARGET,
        "API p99 {p99_publication:?} during publication, {p99_soak:?} during the soak"
    );
    // Flat: the last third of the soak no higher than the first by more than a tenth
    // (allocator noise) plus 8 MB.
    assert!(
        late <= early + early / 10 + 8_000_000,
        "memory grew during the soak: {rss:?}"
    );
}
