//! mailzone vs octoDNS publishing the same records into one PowerDNS through its HTTP API
//! (the provider benchmark): prints one markdown table of wall time, HTTP requests, peak
//! RSS and pdns_server's CPU time for each operation and tool, and whether mailzone meets
//! its targets (publish and key change ≥ 10× faster than octoDNS, no-op ≥ 50×).
//!
//! ```sh
//! cargo build --release -p mailzone
//! cargo run --release -p mailzone-bench --bin powerdns_table -- [--zones N] [--skip-octodns]
//! ```
//!
//! Operations, each on N zones `z00000.bench.test` … (default 1,000) served by one
//! pdns_server with the SQLite back end (testkit), holding only the kit's SOA, NS and `ns1`
//! glue at the start:
//! - (a) initial publish;
//! - (b) a no-op: mailzone cold (a fresh state directory) and warm (the state of (a)),
//!   octoDNS (no state);
//! - (c) the RSA DKIM key of every domain replaced by another one (new selector).
//!
//! mailzone is the release binary (`apply --format json --quiet`, DNS server of kind
//! `powerdns`), octoDNS is `octodns-sync --doit` with octodns-powerdns' `PowerDnsProvider`
//! in the venv `bench/.venv-octodns`. Each tool gets a fresh server. HTTP requests are
//! counted from the server's own request log, not from either tool. See bench/README.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use mailzone_bench::examples_dir;
use mailzone_bench::mail_zones::{
    ByZone, NEW_RSA_SELECTOR, OLD_RSA_SELECTOR, mailzone_config, records_by_zone, verify_samples,
    zone_name,
};
use mailzone_bench::measure::{
    duration, load_average, machine_busy, mailzone_binary, mib, number_arg, openssl_rsa_key,
    print_markdown_table, ratio, run_measured, table_main, tail_of, wait_for_quiet, which,
};
use mailzone_bench::octodns::{octodns_venv, write_octodns_yaml, write_zone_files};
use mailzone_bench::pcap::thousands;
use mailzone_bench::reconcile::apply_args;
use mailzone_testkit::{ApiRequest, POWERDNS_TOOLS, PowerDns, ZoneSpec};

const DEFAULT_ZONES: usize = 1_000;
/// mailzone's no-op runs are repeated this many times (median reported).
const NOOP_RUNS: usize = 3;
/// How long after a tool exits the server's CPU time and request log are read again (the
/// web server logs a request after answering it).
const SETTLE: Duration = Duration::from_millis(300);
/// The targets: mailzone's wall time at most 1/10 of octoDNS's for (a) and (c), 1/50 for (b).
const TARGET_PUBLISH: f64 = 10.0;
const TARGET_NOOP: f64 = 50.0;

struct Args {
    zones: usize,
    octodns: bool,
    /// `maxConcurrentZones` of mailzone's DNS server (its default when `None`).
    concurrency: Option<u32>,
}

fn main() -> ExitCode {
    table_main(
        "powerdns_table",
        "[--zones N] [--skip-octodns] [--concurrency N]",
        parse_args,
        run,
    )
}

fn parse_args(raw: Vec<String>) -> Result<Args, String> {
    let mut args = Args {
        zones: DEFAULT_ZONES,
        octodns: true,
        concurrency: None,
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--zones" => args.zones = number_arg("--zones", &mut it, 1..=99_999)?,
            "--skip-octodns" => args.octodns = false,
            "--concurrency" => {
                args.concurrency = Some(number_arg("--concurrency", &mut it, 1..=256)?);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------
// Measuring one run against the server.

/// What one run of a tool cost, and what it asked of the server.
#[derive(Clone, Debug)]
struct Measure {
    wall: Duration,
    peak_rss_kib: u64,
    cpu: Duration,
    /// pdns_server's CPU time over the run.
    server_cpu: Duration,
    /// CPU time the rest of the machine used meanwhile.
    others_cpu: Duration,
    /// The API requests the server logged during the run.
    requests: Vec<ApiRequest>,
    /// DNS queries the server answered during the run (its `udp-queries` + `tcp-queries`).
    dns_queries: u64,
}

impl Measure {
    fn count(&self, method: &str) -> u64 {
        self.requests.iter().filter(|r| r.method == method).count() as u64
    }

    /// `1,000 GET + 1,000 PATCH over 16 connections`.
    fn breakdown(&self) -> String {
        let mut by_method: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &self.requests {
            *by_method.entry(r.method.as_str()).or_default() += 1;
        }
        let methods: Vec<String> = by_method
            .iter()
            .map(|(m, n)| format!("{} {m}", thousands(*n)))
            .collect();
        let connections: std::collections::BTreeSet<&str> =
            self.requests.iter().map(|r| r.peer.as_str()).collect();
        let failed = self.requests.iter().filter(|r| r.status >= 400).count();
        format!(
            "{} over {} connections{}",
            if methods.is_empty() {
                "no request".to_owned()
            } else {
                methods.join(" + ")
            },
            thousands(connections.len() as u64),
            if failed > 0 {
                format!(", {failed} answered with an error")
            } else {
                String::new()
            }
        )
    }
}

/// The server's count of DNS queries answered so far, from `pdns_control`.
fn dns_queries(server: &PowerDns) -> Result<u64, String> {
    let pdns_control = which("pdns_control").ok_or("pdns_control is missing")?;
    let mut total = 0;
    for counter in ["udp-queries", "tcp-queries"] {
        let output = Command::new(&pdns_control)
            .arg(format!("--config-dir={}", server.dir().display()))
            .args(["show", counter])
            .output()
            .map_err(|e| format!("pdns_control: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        total += text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("pdns_control show {counter}: {text:?}"))?;
    }
    Ok(total)
}

fn requests_so_far(server: &PowerDns) -> Result<Vec<ApiRequest>, String> {
    server
        .api_requests()
        .map_err(|e| format!("the server's log: {e}"))
}

/// Runs `program args` (stdout and stderr into `<label>.out` / `.stderr` in `work`) and
/// measures it against `server`.
fn measure(
    server: &mut PowerDns,
    work: &Path,
    label: &str,
    program: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<Measure, String> {
    let out = work.join(format!("{label}.out"));
    let err = work.join(format!("{label}.stderr"));
    wait_for_quiet();
    let logged_before = requests_so_far(server)?.len();
    let queries_before = dns_queries(server)?;
    let cpu_before = server.cpu_time();
    let machine_before = machine_busy();
    let child = run_measured(program, args, &out, &err);
    std::thread::sleep(SETTLE);
    let server_cpu = server.cpu_time().saturating_sub(cpu_before);
    let machine = machine_busy().saturating_sub(machine_before);
    let requests = requests_so_far(server)?.split_off(logged_before);
    let dns_queries = dns_queries(server)?.saturating_sub(queries_before);
    let child = child?;
    if !libc::WIFEXITED(child.status) || libc::WEXITSTATUS(child.status) != 0 {
        let tail = |p: &Path| tail_of(p, 30);
        return Err(format!(
            "{label}: {} failed (wait status {}); stderr:\n{}\nstdout:\n{}\npdns_server's log:\n{}",
            program.display(),
            child.status,
            tail(&err),
            tail(&out),
            server
                .log_tail(400)
                .lines()
                .filter(|l| !l.contains("[webserver]") && !l.contains("connection to"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if !server.is_running() {
        return Err(format!(
            "{label}: pdns_server died during the run; log:\n{}",
            server.log_tail(30)
        ));
    }
    Ok(Measure {
        wall: child.wall,
        peak_rss_kib: child.peak_rss_kib,
        cpu: child.cpu,
        server_cpu,
        others_cpu: machine.saturating_sub(child.cpu + server_cpu),
        requests,
        dns_queries,
    })
}

/// Fails unless the run sent exactly `want` successful PATCHes, one per zone it changed.
fn expect_patches(label: &str, m: &Measure, zones: &[String], want: usize) -> Result<(), String> {
    let patched: std::collections::BTreeSet<&str> = m
        .requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 204)
        .map(|r| r.path.as_str())
        .collect();
    let succeeded = m
        .requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 204)
        .count();
    if succeeded != want || patched.len() != want {
        return Err(format!(
            "{label}: {succeeded} PATCHes applied to {} zones, expected one to each of {want} of \
             {} zones ({})",
            patched.len(),
            zones.len(),
            m.breakdown()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The table.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Op {
    Publish,
    NoopCold,
    NoopWarm,
    NoopOctodns,
    Dkim,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Publish => "(a) initial publish",
            Op::NoopCold => "(b) no-op, cold",
            Op::NoopWarm => "(b) no-op, warm",
            Op::NoopOctodns => "(b) no-op (no state: cold = warm)",
            Op::Dkim => "(c) DKIM key changed in every zone",
        }
    }

    /// The octoDNS row a mailzone row is compared with.
    fn octodns_counterpart(self) -> Op {
        match self {
            Op::NoopCold | Op::NoopWarm => Op::NoopOctodns,
            other => other,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Tool {
    Mailzone,
    Octodns,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Mailzone => "mailzone",
            Tool::Octodns => "octoDNS",
        }
    }
}

struct Row {
    op: Op,
    tool: Tool,
    measure: Measure,
    /// Runs of which `measure` is the median (by wall time).
    runs: usize,
    /// mailzone's own count of HTTP requests and DNS queries (`summary.dnsMessages`).
    own_messages: Option<u64>,
}

/// `1,000`, or `1,014 (14 answered 500, sent again)` when the server refused some.
fn patches_cell(m: &Measure) -> String {
    let patches: Vec<&ApiRequest> = m.requests.iter().filter(|r| r.method == "PATCH").collect();
    let refused: BTreeMap<u16, usize> =
        patches
            .iter()
            .filter(|r| r.status >= 300)
            .fold(BTreeMap::new(), |mut by, r| {
                *by.entry(r.status).or_default() += 1;
                by
            });
    let total = thousands(patches.len() as u64);
    if refused.is_empty() {
        return total;
    }
    let refused: Vec<String> = refused
        .iter()
        .map(|(status, n)| format!("{n} answered {status}"))
        .collect();
    format!("{total} ({}, sent again)", refused.join(", "))
}

fn print_table(rows: &[Row], zones: usize, octodns_note: &str) {
    let header = [
        "operation",
        "tool",
        "wall time",
        "HTTP requests",
        "PATCHes",
        "DNS queries",
        "peak RSS",
        "tool CPU",
        "pdns_server CPU",
        "others' CPU",
        "octoDNS ÷ mailzone (wall)",
    ];
    let find = |op: Op, tool: Tool| rows.iter().find(|r| r.op == op && r.tool == tool);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let m = &r.measure;
            let speedup = match r.tool {
                Tool::Octodns => "–".into(),
                Tool::Mailzone => find(r.op.octodns_counterpart(), Tool::Octodns)
                    .map(|o| ratio(o.measure.wall, m.wall))
                    .unwrap_or_else(|| "n/a".into()),
            };
            vec![
                r.op.label().into(),
                if r.runs > 1 {
                    format!("{} (median of {})", r.tool.name(), r.runs)
                } else {
                    r.tool.name().into()
                },
                duration(m.wall),
                thousands(m.requests.len() as u64),
                patches_cell(m),
                thousands(m.dns_queries),
                mib(m.peak_rss_kib),
                duration(m.cpu),
                duration(m.server_cpu),
                duration(m.others_cpu),
                speedup,
            ]
        })
        .collect();
    print_markdown_table(&header, &cells, 2);
    println!();
    println!(
        "{} zones `z00000.bench.test` …, each receiving the same 26 records from both tools \
         (MX, SPF, 2 DKIM, DMARC, TLS-RPT, 2 MTA-STS, 11 SRV, 3 autoconfig, 2 autodiscover, \
         2 CAA). {octodns_note}",
        thousands(zones as u64)
    );
    println!();
    println!(
        "HTTP requests: counted from pdns_server's request log (webserver-loglevel=normal). \
         DNS queries: pdns_server's udp-queries + tcp-queries (mailzone confirms each change \
         on the server's DNS port; octoDNS does not look). tool CPU: user + system; \
         pdns_server CPU: from /proc, 10 ms ticks; others' CPU: the rest of the machine \
         meanwhile, 2 cores in all."
    );
    let disturbed: Vec<String> = rows
        .iter()
        .filter(|r| r.measure.others_cpu > r.measure.wall.mul_f64(0.2))
        .map(|r| format!("{} {}", r.op.label(), r.tool.name()))
        .collect();
    if !disturbed.is_empty() {
        println!(
            "Warning: other work took more than 20 % of a core during {}: their wall times are \
             inflated; run again on an idle machine.",
            disturbed.join(", ")
        );
    }
    println!();
    println!("What was asked of the API (from the server's log):");
    for r in rows {
        let own = r
            .own_messages
            .map(|n| {
                format!(
                    " (mailzone's own count: {} requests and queries)",
                    thousands(n)
                )
            })
            .unwrap_or_default();
        println!(
            "- {} — {}: {}{own}",
            r.op.label(),
            r.tool.name(),
            r.measure.breakdown()
        );
    }
    if cfg!(debug_assertions) {
        println!();
        println!("warning: this is a debug build of powerdns_table; run it with --release.");
    }
}

fn print_targets(rows: &[Row]) {
    let get = |op: Op, tool: Tool| rows.iter().find(|r| r.op == op && r.tool == tool);
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    let mut lines = Vec::new();
    for (op, target) in [
        (Op::Publish, TARGET_PUBLISH),
        (Op::Dkim, TARGET_PUBLISH),
        (Op::NoopWarm, TARGET_NOOP),
        (Op::NoopCold, TARGET_NOOP),
    ] {
        let (Some(mz), Some(octo)) = (
            get(op, Tool::Mailzone),
            get(op.octodns_counterpart(), Tool::Octodns),
        ) else {
            continue;
        };
        let speedup = octo.measure.wall.as_secs_f64() / mz.measure.wall.as_secs_f64();
        // No client can finish before the server has done its own work for the requests:
        // octoDNS's wall divided by that is the most any client could gain here.
        let ceiling = octo.measure.wall.as_secs_f64() / mz.measure.server_cpu.as_secs_f64();
        lines.push(format!(
            "{} ≥ {target:.0}× faster than octoDNS: {} vs {} = {speedup:.1}× → {}{}",
            op.label(),
            duration(mz.measure.wall),
            duration(octo.measure.wall),
            verdict(speedup >= target),
            if speedup < target && ceiling < target {
                format!(
                    " (pdns_server's own CPU for mailzone's requests was {}: no client can be \
                     more than {ceiling:.1}× faster than octoDNS on this server)",
                    duration(mz.measure.server_cpu)
                )
            } else {
                String::new()
            }
        ));
    }
    if let Some(warm) = get(Op::NoopWarm, Tool::Mailzone) {
        lines.push(format!(
            "(b) warm writes nothing: {} PATCH → {}",
            warm.measure.count("PATCH"),
            verdict(warm.measure.count("PATCH") == 0)
        ));
    }
    println!();
    println!("Targets (mailzone):");
    for line in lines {
        println!("- {line}");
    }
}

// ---------------------------------------------------------------------------------------
// The runs.

/// Everything the runs share.
struct Bench<'a> {
    binary: &'a Path,
    work: &'a Path,
    examples: &'a Path,
    new_rsa: &'a Path,
    zones: &'a [String],
    concurrency: Option<u32>,
}

fn start_powerdns(zones: &[String]) -> Result<PowerDns, String> {
    let specs: Vec<ZoneSpec> = zones.iter().map(|z| ZoneSpec::empty(z)).collect();
    PowerDns::start(&specs).map_err(|e| format!("starting pdns_server: {e}"))
}

/// The keys of `[dnsServer.primary]`: the server's API, and its DNS port, where serials
/// are read (`dnsAddress`) and propagation is confirmed.
fn powerdns_table(server: &PowerDns, concurrency: Option<u32>) -> String {
    let mut table = format!(
        "kind = \"powerdns\"\nurl = \"{}\"\nkey = \"{}\"\nttl = 300\n\
         propagationDelay = \"0s\"\nauthoritativeServers = [\"{dns}\"]\ndnsAddress = \"{dns}\"",
        server.api_url,
        server.api_key,
        dns = server.dns
    );
    if let Some(n) = concurrency {
        table.push_str(&format!("\nmaxConcurrentZones = {n}"));
    }
    table
}

/// mailzone's `summary.dnsMessages` from its JSON report, checking it covers every zone.
fn own_messages(out: &Path, zones: usize) -> Result<u64, String> {
    let text = std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", out.display()))?;
    let reported = json["zones"].as_array().map_or(0, Vec::len);
    if reported != zones {
        return Err(format!(
            "{}: {reported} zones reported of {zones}",
            out.display()
        ));
    }
    json["summary"]["dnsMessages"]
        .as_u64()
        .ok_or(format!("{}: no summary.dnsMessages", out.display()))
}

fn run_mailzone(bench: &Bench<'_>, rows: &mut Vec<Row>) -> Result<(ByZone, ByZone), String> {
    let Bench {
        binary,
        work,
        examples,
        new_rsa,
        zones,
        ..
    } = *bench;
    eprintln!("mailzone: starting pdns_server with {} zones", zones.len());
    let mut server = start_powerdns(zones)?;
    let config_a = work.join("mailzone-a.toml");
    let config_c = work.join("mailzone-c.toml");
    let table = powerdns_table(&server, bench.concurrency);
    let old_rsa = examples.join("keys/202611r.pem");
    for (path, selector, key) in [
        (&config_a, OLD_RSA_SELECTOR, old_rsa.as_path()),
        (&config_c, NEW_RSA_SELECTOR, new_rsa),
    ] {
        std::fs::write(
            path,
            mailzone_config(zones, &table, examples, selector, key),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let records_a = records_by_zone(binary, &config_a, &work.join("state-records"), zones)?;
    let records_c = records_by_zone(binary, &config_c, &work.join("state-records"), zones)?;
    let warm_state = work.join("state-warm");
    let dns = server.dns;
    let mut apply = |label: &str, config: &Path, state: &Path| -> Result<Row, String> {
        let args = apply_args(config, state, true);
        let m = measure(&mut server, work, label, binary, &args)?;
        let own = own_messages(&work.join(format!("{label}.out")), zones.len())?;
        Ok(Row {
            op: Op::Publish,
            tool: Tool::Mailzone,
            measure: m,
            runs: 1,
            own_messages: Some(own),
        })
    };

    eprintln!("mailzone (a): initial publish");
    let row = apply("mailzone-a", &config_a, &warm_state)?;
    expect_patches("mailzone (a)", &row.measure, zones, zones.len())?;
    verify_samples(dns, zones, &records_a, None)?;
    rows.push(row);

    let mut noop = |kind: &str, op: Op| -> Result<(), String> {
        eprintln!("mailzone (b): no-op, {kind} ({NOOP_RUNS} runs)");
        let mut runs = Vec::new();
        for run in 0..NOOP_RUNS {
            let state = match op {
                Op::NoopCold => work.join(format!("state-cold-{run}")),
                _ => warm_state.clone(),
            };
            let row = apply(&format!("mailzone-b-{kind}-{run}"), &config_a, &state)?;
            expect_patches(&format!("mailzone (b) {kind}"), &row.measure, zones, 0)?;
            runs.push(row);
        }
        runs.sort_by_key(|r| r.measure.wall);
        let mut median = runs.swap_remove(NOOP_RUNS / 2);
        median.op = op;
        median.runs = NOOP_RUNS;
        rows.push(median);
        Ok(())
    };
    noop("cold", Op::NoopCold)?;
    noop("warm", Op::NoopWarm)?;

    eprintln!("mailzone (c): the RSA DKIM key of every zone replaced");
    let mut row = apply("mailzone-c", &config_c, &warm_state)?;
    expect_patches("mailzone (c)", &row.measure, zones, zones.len())?;
    row.op = Op::Dkim;
    verify_samples(dns, zones, &records_c, Some(OLD_RSA_SELECTOR))?;
    rows.push(row);
    Ok((records_a, records_c))
}

fn run_octodns(
    bench: &Bench<'_>,
    venv: &Path,
    records_a: &ByZone,
    records_c: &ByZone,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let Bench { work, zones, .. } = *bench;
    eprintln!(
        "octoDNS: starting a fresh pdns_server with {} zones",
        zones.len()
    );
    let mut server = start_powerdns(zones)?;
    let dir = work.join("octodns");
    let zone_dir = dir.join("zones");
    std::fs::create_dir_all(&zone_dir).map_err(|e| e.to_string())?;
    write_zone_files(&zone_dir, zones, records_a)?;
    let config = write_octodns_config(&dir, &zone_dir, &server, zones)?;
    let sync = venv.join("bin/octodns-sync");
    let dns = server.dns;
    let mut run = |label: &str, op: Op| -> Result<Row, String> {
        let args = [
            "--config-file".as_ref(),
            config.as_os_str(),
            "--doit".as_ref(),
        ];
        let measure = measure(&mut server, work, label, &sync, &args)?;
        Ok(Row {
            op,
            tool: Tool::Octodns,
            measure,
            runs: 1,
            own_messages: None,
        })
    };
    eprintln!("octoDNS (a): initial publish");
    let row = run("octodns-a", Op::Publish)?;
    expect_patches("octoDNS (a)", &row.measure, zones, zones.len())?;
    verify_samples(dns, zones, records_a, None)?;
    rows.push(row);
    eprintln!("octoDNS (b): no-op");
    let row = run("octodns-b", Op::NoopOctodns)?;
    expect_patches("octoDNS (b)", &row.measure, zones, 0)?;
    rows.push(row);
    eprintln!("octoDNS (c): the RSA DKIM key of every zone replaced");
    write_zone_files(&zone_dir, zones, records_c)?;
    let row = run("octodns-c", Op::Dkim)?;
    expect_patches("octoDNS (c)", &row.measure, zones, zones.len())?;
    verify_samples(dns, zones, records_c, Some(OLD_RSA_SELECTOR))?;
    rows.push(row);
    Ok(())
}

/// `octodns.yaml`: the YAML zone files as the source, the PowerDNS API as the target.
fn write_octodns_config(
    dir: &Path,
    zone_dir: &Path,
    server: &PowerDns,
    zones: &[String],
) -> Result<std::path::PathBuf, String> {
    let port = server
        .api_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or(format!("the API URL {}", server.api_url))?;
    let provider = format!(
        "class: octodns_powerdns.PowerDnsProvider\nhost: 127.0.0.1\nport: {port}\napi_key: {}",
        serde_json::to_string(&server.api_key).expect("a string"),
    );
    write_octodns_yaml(dir, zone_dir, "pdns", &provider, zones)
}

fn run(args: &Args) -> Result<(), String> {
    let binary = mailzone_binary()?;
    let missing: Vec<&str> = POWERDNS_TOOLS
        .iter()
        .chain(&["pdns_control", "kdig"])
        .copied()
        .filter(|tool| which(tool).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} needed: apt-get install pdns-server pdns-backend-sqlite3 sqlite3 knot-dnsutils",
            missing.join(", ")
        ));
    }
    let work_dir = tempfile::Builder::new()
        .prefix("mailzone-powerdns-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    // POWERDNS_TABLE_KEEP=1 keeps the configs, outputs and logs for a look.
    let keep = std::env::var_os("POWERDNS_TABLE_KEEP").is_some();
    if keep {
        eprintln!("powerdns_table: keeping {}", work_dir.path().display());
    }
    let work = work_dir.path();
    let examples = examples_dir()
        .canonicalize()
        .map_err(|e| format!("examples/: {e}"))?;
    let new_rsa = work.join(format!("{NEW_RSA_SELECTOR}.pem"));
    openssl_rsa_key(&new_rsa)?;
    let zones: Vec<String> = (0..args.zones).map(zone_name).collect();
    let bench = Bench {
        binary: &binary,
        work,
        examples: &examples,
        new_rsa: &new_rsa,
        zones: &zones,
        concurrency: args.concurrency,
    };
    let result = measure_all(args, &bench);
    if keep {
        let _ = work_dir.keep();
    }
    result
}

fn measure_all(args: &Args, bench: &Bench<'_>) -> Result<(), String> {
    let load_before = load_average();
    let mut rows = Vec::new();
    let (records_a, records_c) = run_mailzone(bench, &mut rows)?;
    let mut octodns_note = String::from("octoDNS: skipped (--skip-octodns).");
    if args.octodns {
        match octodns_venv() {
            Ok((venv, versions)) => {
                run_octodns(bench, &venv, &records_a, &records_c, &mut rows)?;
                octodns_note = format!(
                    "octoDNS: {versions}; `octodns-sync --doit` with octodns-powerdns' \
                     PowerDnsProvider (default settings: zones one after another), its zone \
                     files holding the same 26 records plus the kit's apex NS and ns1 glue; a \
                     fresh pdns_server for each tool."
                );
            }
            Err(e) => octodns_note = format!("octoDNS: not measured ({e})."),
        }
    }
    rows.sort_by_key(|r| (r.op, r.tool));
    let pdns = which("pdns_server")
        .and_then(|p| Command::new(p).arg("--version").output().ok())
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stderr).into_owned()
                + &String::from_utf8_lossy(&o.stdout);
            text.lines()
                .find(|l| l.contains("PowerDNS Authoritative Server"))
                .and_then(|l| l.split("PowerDNS").nth(1))
                .map(|v| format!("PowerDNS{}", v.split(" (C)").next().unwrap_or(v)))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    println!(
        "{} ({}); {pdns} with the SQLite back end; mailzone with its defaults for kind \
         powerdns ({} zones at once, writes one at a time, no rate limit) and `dnsAddress` set \
         to the server's DNS port (serials read with SOA queries).",
        bench.binary.display(),
        Command::new(bench.binary)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default(),
        bench
            .concurrency
            .map_or("4 (the default)".to_owned(), |n| n.to_string())
    );
    println!(
        "Load average (1 min) before the runs {load_before}, after them {}.",
        load_average()
    );
    println!();
    print_table(&rows, bench.zones.len(), &octodns_note);
    print_targets(&rows);
    Ok(())
}
