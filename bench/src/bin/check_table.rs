//! check_table: the SPF and DMARC checks of 1,000 mail domains served by one local Knot,
//! by mailzone (`mailzone_check::spf::check` + `dmarc::check` through the real
//! `DnsLookup`, with bounded concurrency) and by checkdmarc (`checkdmarc.spf.check_spf` +
//! `checkdmarc.dmarc.check_dmarc`, the SPF/DMARC part of `check_domains`, from the Python
//! venv of scripts/test), printed as one table: domains/s, wall time, peak RSS and the
//! ratio to checkdmarc.
//!
//! Each domain `dNNNN.test` is its own zone: `MX 10 mail.bench.test.`, an apex `A`,
//! `v=spf1 mx include:_spf1.<d> include:_spf2.<d> -all` (both includes in the zone, one
//! `ip4:` and one `ip6:` range), and `_dmarc` `v=DMARC1; p=reject; rua=mailto:…@<d>`.
//! The exchanger `mail.bench.test` (A, AAAA, its own SPF) lives in the zone `bench.test`.
//! Every check is expected to find nothing wrong; the table shows how many domains each
//! tool found valid, so a tool that silently failed is visible.
//!
//! Every run is a child process (mailzone runs this program with `--mailzone-child`), so
//! each peak RSS is that of one run only (`ru_maxrss` from `wait4`). The wall time is the
//! child's whole life (start-up, Python imports, config parsing included); "checks" is the
//! time the child itself measured around the checks alone, and domains/s is computed from
//! it. mailzone runs once with 64 domains in flight and
//! once with 1, since checkdmarc's API checks one domain at a time.
//!
//! ```sh
//! cargo run --release -p mailzone-bench --bin check_table        # 1,000 domains
//! cargo run --release -p mailzone-bench --bin check_table -- 200 # fewer
//! ```
//! The Python is `MAILZONE_TEST_PYTHON`, else `<repo>/.venv-test/bin/python`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt as _;
use mailzone_check::context::{CheckOptions, DomainContext};
use mailzone_check::finding::Severity;
use mailzone_check::lookup::{Answer, Lookup, LookupError};
use mailzone_check::{DnsLookup, dmarc, spf};
use mailzone_records::Name;
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const DEFAULT_DOMAINS: usize = 1_000;
const CONCURRENCY: usize = 64;

fn domain(i: usize) -> String {
    format!("d{i:04}.test")
}

/// The zones: `bench.test` (the exchanger) and one per domain.
fn zones(n: usize) -> Vec<ZoneSpec> {
    let mut zones = vec![ZoneSpec::new(
        "bench.test",
        "mail 300 IN A 192.0.2.10\n\
         mail 300 IN AAAA 2001:db8::10\n\
         mail 300 IN TXT \"v=spf1 a -all\"\n",
    )];
    for i in 0..n {
        let d = domain(i);
        zones.push(ZoneSpec::new(
            &d,
            &format!(
                "@ 300 IN MX 10 mail.bench.test.\n\
                 @ 300 IN A 192.0.2.80\n\
                 @ 300 IN TXT \"v=spf1 mx include:_spf1.{d} include:_spf2.{d} -all\"\n\
                 _spf1 300 IN TXT \"v=spf1 ip4:198.51.100.0/24 -all\"\n\
                 _spf2 300 IN TXT \"v=spf1 ip6:2001:db8:1::/48 -all\"\n\
                 _dmarc 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:postmaster@{d}\"\n"
            ),
        ));
    }
    zones
}

/// The config of the mailzone child: one server, `n` domains.
fn config_text(n: usize) -> String {
    let mut text = String::from(
        "[server]\nhostname = \"mail.bench.test\"\nipv4 = [\"192.0.2.10\"]\nipv6 = [\"2001:db8::10\"]\n\
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

/// A [`Lookup`] that counts the questions it passes on.
struct Counting {
    inner: DnsLookup,
    questions: AtomicUsize,
}

#[async_trait::async_trait]
impl Lookup for Counting {
    async fn query(&self, name: &Name, rtype: &str) -> Result<Answer, LookupError> {
        self.questions.fetch_add(1, Ordering::Relaxed);
        self.inner.query(name, rtype).await
    }
}

/// The child: checks every domain against the server at `addr`, `concurrency` domains in
/// flight; prints `seconds valid_spf valid_dmarc findings questions`.
fn mailzone_child(addr: SocketAddr, n: usize, concurrency: usize) {
    let config = mailzone_records::config::parse(&config_text(n), Path::new("."))
        .unwrap_or_else(|e| panic!("bench config: {e}"));
    let options = CheckOptions {
        fetch_mta_sts: false,
        ..CheckOptions::default()
    };
    let lookup = Counting {
        inner: DnsLookup::with_servers(vec![addr], Duration::from_secs(5)),
        questions: AtomicUsize::new(0),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let start = Instant::now();
    let results: Vec<(bool, bool, usize)> = runtime.block_on(
        futures::stream::iter(&config.domains)
            .map(|domain| {
                let ctx = DomainContext {
                    server: &config.server,
                    domain,
                    desired: &[],
                    dkim_keys: &[],
                    tlsa: None,
                    lookup: &lookup,
                    options: &options,
                };
                async move {
                    let (s, d) = tokio::join!(spf::check(&ctx), dmarc::check(&ctx));
                    let errors = |f: &[mailzone_check::Finding]| {
                        f.iter().any(|f| f.severity == Severity::Error)
                    };
                    (!errors(&s), !errors(&d), s.len() + d.len())
                }
            })
            .buffer_unordered(concurrency)
            .collect(),
    );
    let seconds = start.elapsed().as_secs_f64();
    let spf_ok = results.iter().filter(|r| r.0).count();
    let dmarc_ok = results.iter().filter(|r| r.1).count();
    let findings: usize = results.iter().map(|r| r.2).sum();
    let questions = lookup.questions.load(Ordering::Relaxed);
    println!("{seconds} {spf_ok} {dmarc_ok} {findings} {questions}");
}

const PYTHON: &str = r#"
import sys, time, logging
logging.disable(logging.CRITICAL)
import checkdmarc.spf, checkdmarc.dmarc, dns.nameserver, dns.resolver
port, n = int(sys.argv[1]), int(sys.argv[2])
questions = 0
_resolve = dns.resolver.Resolver.resolve
def counting(self, *args, **kwargs):
    global questions
    questions += 1
    return _resolve(self, *args, **kwargs)
dns.resolver.Resolver.resolve = counting
ns = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
domains = ["d%04d.test" % i for i in range(n)]
start = time.monotonic()
spf_ok = dmarc_ok = warnings = 0
for d in domains:
    s = checkdmarc.spf.check_spf(d, nameservers=ns, timeout=5.0)
    m = checkdmarc.dmarc.check_dmarc(d, nameservers=ns, timeout=5.0)
    spf_ok += bool(s["valid"])
    dmarc_ok += bool(m["valid"])
    warnings += len(s.get("warnings", [])) + len(m.get("warnings", []))
print(time.monotonic() - start, spf_ok, dmarc_ok, warnings, questions)
"#;

fn python() -> PathBuf {
    std::env::var_os("MAILZONE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-test/bin/python")
        })
}

/// One measured run.
struct Run {
    tool: String,
    wall: Duration,
    checks: f64,
    peak_kib: u64,
    spf_ok: usize,
    dmarc_ok: usize,
    findings: usize,
    questions: usize,
}

/// Runs `command`, waits for it with `wait4`, and parses its one output line.
fn measure(tool: &str, mut command: Command) -> Result<Run, String> {
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
    std::io::Read::read_to_string(&mut stdout, &mut output).map_err(|e| e.to_string())?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in; an all-zero value is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (the `Child` was consumed above
    // without `wait`); both pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if reaped != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{tool} exited with status {status}"));
    }
    let fields: Vec<&str> = output.split_whitespace().collect();
    let [checks, spf_ok, dmarc_ok, findings, questions] = fields.as_slice() else {
        return Err(format!("{tool}: unexpected output {output:?}"));
    };
    let number = |s: &str| s.parse::<usize>().map_err(|e| format!("{tool}: {s}: {e}"));
    Ok(Run {
        tool: tool.to_string(),
        wall,
        checks: checks.parse().map_err(|e| format!("{tool}: {e}"))?,
        // ru_maxrss is in KiB on Linux.
        peak_kib: usage.ru_maxrss as u64,
        spf_ok: number(spf_ok)?,
        dmarc_ok: number(dmarc_ok)?,
        findings: number(findings)?,
        questions: number(questions)?,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--mailzone-child") {
        let addr = args[2].parse().expect("server address");
        let n = args[3].parse().expect("domain count");
        let concurrency = args[4].parse().expect("concurrency");
        mailzone_child(addr, n, concurrency);
        return;
    }
    let n: usize = args
        .get(1)
        .map(|s| s.parse().expect("the number of domains"))
        .unwrap_or(DEFAULT_DOMAINS);

    assert!(
        ServerKind::Knot.available(),
        "knotd missing: run scripts/test (it installs knot)"
    );
    let start = Instant::now();
    let server = DnsServer::start(
        ServerKind::Knot,
        &zones(n),
        &TsigKey::generate("bench"),
        &ServerOptions::default(),
    )
    .expect("knotd starts");
    eprintln!(
        "Knot serving {} zones on {} (ready in {:.2?})",
        n + 1,
        server.addr,
        start.elapsed()
    );

    let exe = std::env::current_exe().expect("own path");
    let mailzone = |concurrency: usize| {
        let mut c = Command::new(&exe);
        c.arg("--mailzone-child")
            .arg(server.addr.to_string())
            .arg(n.to_string())
            .arg(concurrency.to_string());
        c
    };
    // Warm-up: the first questions to a fresh Knot (and the page cache) cost more.
    let _ = measure("warm-up", mailzone(CONCURRENCY));

    let mut runs = Vec::new();
    for (tool, command) in [
        (
            format!("mailzone ({CONCURRENCY} in flight)"),
            mailzone(CONCURRENCY),
        ),
        ("mailzone (1 in flight)".to_string(), mailzone(1)),
        ("checkdmarc 6.0.4 (sequential API)".to_string(), {
            let mut c = Command::new(python());
            c.arg("-c")
                .arg(PYTHON)
                .arg(server.addr.port().to_string())
                .arg(n.to_string());
            c
        }),
    ] {
        match measure(&tool, command) {
            Ok(run) => runs.push(run),
            Err(e) => eprintln!("{tool}: {e}"),
        }
    }
    print_table(n, &runs);
}

fn print_table(n: usize, runs: &[Run]) {
    let reference = runs.iter().find(|r| r.tool.starts_with("checkdmarc"));
    println!("\nSPF + DMARC checks of {n} domains served by one local Knot (2 cores):\n");
    println!(
        "| tool | domains/s | checks | wall time (process) | peak RSS | DNS questions/domain | SPF valid | DMARC valid | findings/warnings | speed vs checkdmarc | RSS vs checkdmarc |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let rate = n as f64 / r.checks;
        let (speed, rss) = match reference {
            Some(c) => (
                format!("{:.1}×", rate / (n as f64 / c.checks)),
                format!("{:.2}×", r.peak_kib as f64 / c.peak_kib as f64),
            ),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {} | {:.0} | {:.2} s | {:.2} s | {:.1} MiB | {:.1} | {}/{n} | {}/{n} | {} | {} | {} |",
            r.tool,
            rate,
            r.checks,
            r.wall.as_secs_f64(),
            r.peak_kib as f64 / 1024.0,
            r.questions as f64 / n as f64,
            r.spf_ok,
            r.dmarc_ok,
            r.findings,
            speed,
            rss
        );
    }
}
