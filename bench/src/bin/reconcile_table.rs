//! mailzone vs octoDNS publishing the same records into the same Knot (the reconcile
//! benchmark): prints one markdown table of wall time, DNS messages sent, peak RSS and
//! knotd's CPU time for each operation and tool, and whether mailzone meets its
//! targets.
//!
//! ```sh
//! cargo build --release -p mailzone
//! cargo run --release -p mailzone-bench --bin reconcile_table -- [--zones N]
//! ```
//!
//! Operations, each on N zones `z00000.bench.test` … (default 1,000) served by one knotd
//! (testkit) that holds only the kit's SOA, NS and `ns1` glue at the start:
//! - (a) initial publish;
//! - (b) a no-op reconcile: for mailzone cold (a fresh state directory: nothing
//!   remembered) and warm (the state directory of the earlier runs); octoDNS keeps no
//!   state, so its cold and warm are the same run;
//! - (c) the RSA DKIM key of every domain replaced by another one (new selector).
//!
//! mailzone is the real release binary (`target/release/mailzone apply --format json
//! --quiet`), octoDNS is `octodns-sync --doit` from octoDNS + octodns-bind's
//! `Rfc2136Provider` in the venv `bench/.venv-octodns` (made on first use). Both get a
//! fresh knotd. See bench/README.md for what each column means.
//!
//! Options: `--zones N`, `--skip-octodns`, `--no-capture` (no tcpdump: octoDNS's DNS
//! messages are then "n/a").

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailzone_bench::examples_dir;
use mailzone_bench::mail_zones::{
    ByZone, MAIL_HOST, NEW_RSA_SELECTOR, OLD_RSA_SELECTOR, mailzone_config, records_by_zone,
    verify_samples, zone_name,
};
use mailzone_bench::measure::{
    duration, load_average, machine_busy, mailzone_binary, mib, number_arg, openssl_rsa_key,
    print_markdown_table, ratio, run_measured, table_main, tail_of, wait_for_quiet, which,
};
use mailzone_bench::octodns::{octodns_venv, write_zone_files};
use mailzone_bench::pcap::{DnsCounts, count_client_messages, thousands};
use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

const DEFAULT_ZONES: usize = 1_000;
/// mailzone's no-op runs are repeated this many times (median reported).
const NOOP_RUNS: usize = 3;
/// How long after a tool exits knotd's CPU time is read again (trailing work).
const SETTLE: Duration = Duration::from_millis(200);
/// How long tcpdump is left running after a tool exits (libpcap's 1 s buffer timeout).
const CAPTURE_DRAIN: Duration = Duration::from_millis(1_500);
/// The reconcile targets.
const TARGET_CPU_FACTOR: f64 = 1.5;
const TARGET_WARM: Duration = Duration::from_millis(250);
const TARGET_COLD: Duration = Duration::from_millis(1_500);
const TARGET_RSS_BYTES: u64 = 50_000_000;

struct Args {
    zones: usize,
    octodns: bool,
    capture: bool,
}

fn main() -> ExitCode {
    table_main(
        "reconcile_table",
        "[--zones N] [--skip-octodns] [--no-capture]",
        parse_args,
        run,
    )
}

fn parse_args(raw: Vec<String>) -> Result<Args, String> {
    let mut args = Args {
        zones: DEFAULT_ZONES,
        octodns: true,
        capture: true,
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--zones" => args.zones = number_arg("--zones", &mut it, 1..=100_000)?,
            "--skip-octodns" => args.octodns = false,
            "--no-capture" => args.capture = false,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------
// Measuring one run of a tool.

/// What one run of a tool cost.
#[derive(Clone, Debug)]
struct Measure {
    wall: Duration,
    /// The tool's `ru_maxrss` (from `wait4`), KiB.
    peak_rss_kib: u64,
    /// The tool's own CPU time (user + system, with its children).
    cpu: Duration,
    /// knotd's CPU time (user + system) over the run.
    knot_cpu: Duration,
    /// CPU time the rest of the machine used meanwhile (the capture, the kernel's network
    /// work, and whatever else runs on the machine): how far from idle it was.
    others_cpu: Duration,
    /// What the tool sent, from the loopback capture.
    captured: Option<DnsCounts>,
}

/// tcpdump on `lo`, writing what is sent to the server's port into a pcap file.
struct Capture {
    child: std::process::Child,
    file: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Capture {
    fn start(tcpdump: &Path, port: u16, file: &Path) -> Result<Capture, String> {
        let mut child = Command::new(tcpdump)
            .args([
                "-i", "lo", "-n", "-s", "0", "-U", "-B", "65536", "-Z", "root", "-w",
            ])
            .arg(file)
            .arg(format!("dst host 127.0.0.1 and dst port {port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", tcpdump.display()))?;
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("tcpdump did not start listening on lo within 10 s".into());
                }
            }
        }
        Ok(Capture {
            child,
            file: file.to_path_buf(),
            stderr: rx,
        })
    }

    /// Stops tcpdump (SIGINT: it flushes the file) and counts what the client sent.
    fn finish(mut self, port: u16) -> Result<DnsCounts, String> {
        // libpcap hands packets over a block at a time, or after its 1 s timeout: wait for
        // that rather than capture in immediate mode (a wake-up per packet, CPU taken from
        // the tool being measured on a 2-core machine).
        std::thread::sleep(CAPTURE_DRAIN);
        // SAFETY: plain kill(2) on our own child's pid, which is not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let _ = self.child.wait();
        let (mut captured, mut received, mut dropped) = (None, None, None);
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            let number = || {
                line.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            };
            if line.contains("packets captured") || line.contains("packet captured") {
                captured = number();
            } else if line.contains("received by filter") {
                received = number();
            } else if line.contains("dropped by kernel") {
                dropped = number();
            }
        }
        // On `lo` the kernel counts each packet twice (sent and received) where tcpdump
        // keeps one: fewer than half captured means packets were lost.
        match (captured, received, dropped) {
            (Some(captured), Some(received), Some(0)) if captured * 2 >= received => {}
            _ => {
                return Err(format!(
                    "tcpdump lost packets (captured {captured:?}, received by filter {received:?}, \
                     dropped {dropped:?}): the message counts would be wrong"
                ));
            }
        }
        let bytes = std::fs::read(&self.file).map_err(|e| format!("the capture: {e}"))?;
        count_client_messages(&bytes, port)
    }
}

/// Runs `program args` (stdout and stderr into files) and measures it: wall time, peak
/// RSS, its CPU time, knotd's CPU time and, with `tcpdump`, what it sent to the server.
fn measure(
    server: &DnsServer,
    tcpdump: Option<&Path>,
    program: &Path,
    args: &[&std::ffi::OsStr],
    out: &Path,
    err: &Path,
) -> Result<Measure, String> {
    let port = server.addr.port();
    let capture = match tcpdump {
        Some(tcpdump) => Some(Capture::start(tcpdump, port, &out.with_extension("pcap"))?),
        None => None,
    };
    wait_for_quiet();
    let cpu_before = server.cpu_time();
    let machine_before = machine_busy();
    let child = run_measured(program, args, out, err);
    std::thread::sleep(SETTLE);
    let knot_cpu = server.cpu_time().saturating_sub(cpu_before);
    let machine = machine_busy().saturating_sub(machine_before);
    let captured = match capture {
        Some(capture) => Some(capture.finish(port)?),
        None => None,
    };
    let child = child?;
    if !libc::WIFEXITED(child.status) || libc::WEXITSTATUS(child.status) != 0 {
        let tail = |p: &Path| tail_of(p, 30);
        return Err(format!(
            "{} failed (wait status {}); stderr:\n{}\nstdout:\n{}",
            program.display(),
            child.status,
            tail(err),
            tail(out)
        ));
    }
    if !server.is_running() {
        return Err(format!(
            "knotd died during the run; log:\n{}",
            server.log_tail(30)
        ));
    }
    Ok(Measure {
        wall: child.wall,
        peak_rss_kib: child.peak_rss_kib,
        cpu: child.cpu,
        knot_cpu,
        others_cpu: machine.saturating_sub(child.cpu + knot_cpu),
        captured,
    })
}

// ---------------------------------------------------------------------------------------
// The table.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Publish,
    PublishText,
    NoopCold,
    NoopWarm,
    NoopOctodns,
    Dkim,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Publish => "(a) initial publish",
            Op::PublishText => "(a) initial publish, text output",
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
            Op::PublishText => Op::Publish,
            other => other,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Mailzone,
    Octodns,
}

struct Row {
    op: Op,
    tool: Tool,
    measure: Measure,
    /// Runs of which `measure` is the median (by wall time).
    runs: usize,
    /// mailzone's own count (`summary.dnsMessages`).
    own_messages: Option<u64>,
    /// mailzone's `updatesSent` summed over the zones.
    own_updates: Option<u64>,
}

impl Row {
    fn updates(&self) -> Option<u64> {
        self.measure
            .captured
            .as_ref()
            .map(|c| c.updates)
            .or(self.own_updates)
    }
}

fn print_table(rows: &[Row], zones: usize, octodns_note: &str) {
    let header = [
        "operation",
        "tool",
        "wall time",
        "DNS messages sent",
        "UPDATEs",
        "peak RSS",
        "tool CPU",
        "knotd CPU",
        "others' CPU",
        "wall ÷ knotd CPU",
        "mailzone ÷ octoDNS (wall)",
    ];
    let find = |op: Op, tool: Tool| rows.iter().find(|r| r.op == op && r.tool == tool);
    let cells: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            let m = &r.measure;
            let messages = match (&m.captured, r.own_messages) {
                (Some(c), Some(own)) if c.messages != own => {
                    format!("{} (own count {})", thousands(c.messages), thousands(own))
                }
                (Some(c), _) => thousands(c.messages),
                (None, Some(own)) => thousands(own),
                (None, None) => "n/a".into(),
            };
            let vs_octodns = match r.tool {
                Tool::Octodns => "–".into(),
                Tool::Mailzone => find(r.op.octodns_counterpart(), Tool::Octodns)
                    .map(|o| ratio(m.wall, o.measure.wall))
                    .unwrap_or_else(|| "n/a".into()),
            };
            [
                r.op.label().into(),
                match r.tool {
                    Tool::Mailzone if r.runs > 1 => format!("mailzone (median of {})", r.runs),
                    Tool::Mailzone => "mailzone".into(),
                    Tool::Octodns => "octoDNS".into(),
                },
                duration(m.wall),
                messages,
                r.updates().map(thousands).unwrap_or_else(|| "n/a".into()),
                mib(m.peak_rss_kib),
                duration(m.cpu),
                duration(m.knot_cpu),
                duration(m.others_cpu),
                if m.knot_cpu.is_zero() {
                    "– (knotd < 1 tick)".into()
                } else {
                    ratio(m.wall, m.knot_cpu)
                },
                vs_octodns,
            ]
        })
        .collect();
    let cells: Vec<Vec<String>> = cells.into_iter().map(Vec::from).collect();
    print_markdown_table(&header, &cells, 2);
    println!();
    println!(
        "{} zones `z00000.bench.test` …, each receiving the same 26 records from both tools \
         (MX, SPF, 2 DKIM, DMARC, TLS-RPT, 2 MTA-STS, 11 SRV, 3 autoconfig, 2 autodiscover, \
         2 CAA): the mail host {MAIL_HOST} is outside every zone, so `address` and `tlsa` \
         (listed in publishRecords with the 11 other types) give none. {octodns_note}",
        thousands(zones as u64)
    );
    println!();
    println!(
        "tool CPU: the tool's user + system time; knotd CPU: knotd's over the run (from \
         /proc, 10 ms ticks); others' CPU: the rest of the machine meanwhile (tcpdump, the \
         kernel's loopback work, any other process), 2 cores in all."
    );
    let disturbed: Vec<String> = rows
        .iter()
        .filter(|r| r.measure.others_cpu > r.measure.wall.mul_f64(0.2))
        .map(|r| {
            format!(
                "{} {}",
                short(r.op),
                match r.tool {
                    Tool::Mailzone => "mailzone",
                    Tool::Octodns => "octoDNS",
                }
            )
        })
        .collect();
    if !disturbed.is_empty() {
        println!(
            "Warning: other work took more than 20 % of a core during {}: their wall times are \
             inflated; run again on an idle machine.",
            disturbed.join(", ")
        );
    }
    println!();
    println!("What was sent (from the capture, client → knotd):");
    for r in rows {
        let what = r
            .measure
            .captured
            .as_ref()
            .map(|c| {
                format!(
                    "{}; {} over TCP in {} connections, {} over UDP",
                    c.breakdown(),
                    thousands(c.tcp_messages),
                    thousands(c.tcp_connections),
                    thousands(c.udp_messages)
                )
            })
            .unwrap_or_else(|| "not captured".into());
        println!(
            "- {} — {}: {what}",
            r.op.label(),
            match r.tool {
                Tool::Mailzone => "mailzone",
                Tool::Octodns => "octoDNS",
            }
        );
    }
    if cfg!(debug_assertions) {
        println!();
        println!("warning: this is a debug build of reconcile_table; run it with --release.");
    }
}

fn print_targets(rows: &[Row], zones: usize) {
    let get = |op: Op| rows.iter().find(|r| r.op == op && r.tool == Tool::Mailzone);
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    let mut lines = Vec::new();
    for op in [Op::Publish, Op::PublishText, Op::Dkim] {
        if let Some(r) = get(op) {
            let m = &r.measure;
            let limit = m.knot_cpu.mul_f64(TARGET_CPU_FACTOR);
            lines.push(format!(
                "{} within 1.5× knotd's CPU: {} vs 1.5 × {} = {} ({}) → {}",
                short(op),
                duration(m.wall),
                duration(m.knot_cpu),
                duration(limit),
                ratio(m.wall, m.knot_cpu),
                verdict(m.wall <= limit)
            ));
        }
    }
    let updates = |op: Op| get(op).and_then(Row::updates);
    if let (Some(a), Some(c), Some(cold), Some(warm)) = (
        updates(Op::Publish),
        updates(Op::Dkim),
        updates(Op::NoopCold),
        updates(Op::NoopWarm),
    ) {
        let n = zones as u64;
        lines.push(format!(
            "one UPDATE per changed zone, none for unchanged ones: (a) {} and (c) {} UPDATEs for {} changed zones, (b) cold {cold} and warm {warm} → {}",
            thousands(a),
            thousands(c),
            thousands(n),
            verdict(a == n && c == n && cold == 0 && warm == 0)
        ));
    }
    if let Some(r) = get(Op::NoopWarm) {
        lines.push(format!(
            "(b) warm under {} for {} zones: {} → {}",
            duration(TARGET_WARM),
            thousands(zones as u64),
            duration(r.measure.wall),
            verdict(r.measure.wall < TARGET_WARM)
        ));
    }
    if let Some(r) = get(Op::NoopCold) {
        lines.push(format!(
            "(b) cold under {} for {} zones: {} → {}",
            duration(TARGET_COLD),
            thousands(zones as u64),
            duration(r.measure.wall),
            verdict(r.measure.wall < TARGET_COLD)
        ));
    }
    let peak = |skip: Op| {
        rows.iter()
            .filter(|r| r.tool == Tool::Mailzone && r.op != skip)
            .max_by_key(|r| r.measure.peak_rss_kib)
    };
    for (skip, what) in [
        (Op::PublishText, "every run with --format json"),
        (
            Op::Publish,
            "(a) with text output, the others with --format json",
        ),
    ] {
        if let Some(peak) = peak(skip) {
            let bytes = peak.measure.peak_rss_kib * 1024;
            lines.push(format!(
                "peak RSS under 50 MB ({what}): {} ({:.1} MB) in {} → {}",
                mib(peak.measure.peak_rss_kib),
                bytes as f64 / 1e6,
                short(peak.op),
                verdict(bytes < TARGET_RSS_BYTES)
            ));
        }
    }
    println!();
    println!("Reconcile targets (mailzone):");
    for l in lines {
        println!("- {l}");
    }
}

fn short(op: Op) -> &'static str {
    match op {
        Op::Publish => "(a)",
        Op::PublishText => "(a) with text output",
        Op::NoopCold => "(b) cold",
        Op::NoopWarm => "(b) warm",
        Op::NoopOctodns => "(b)",
        Op::Dkim => "(c)",
    }
}

// ---------------------------------------------------------------------------------------
// The setup: binaries, knotd, configs, records.

/// The keys of the `[dnsServer.primary]` table for the knotd of the benchmark.
fn rfc2136_table(server: &DnsServer) -> String {
    let port = server.addr.port();
    format!(
        "kind = \"rfc2136\"\nhost = \"127.0.0.1\"\nport = {port}\nprotocol = \"tcp\"\n\
         keyName = \"{}\"\nkey = \"{}\"\nalgorithm = \"hmac-sha256\"\nttl = 300\n\
         propagationDelay = \"0s\"\nauthoritativeServers = [\"127.0.0.1:{port}\"]",
        server.key.name, server.key.secret_base64
    )
}

fn start_knot(zones: &[String], key: &TsigKey) -> Result<DnsServer, String> {
    let specs: Vec<ZoneSpec> = zones.iter().map(|z| ZoneSpec::empty(z)).collect();
    DnsServer::start(ServerKind::Knot, &specs, key, &ServerOptions::default())
        .map_err(|e| format!("starting knotd: {e}"))
}

// ---------------------------------------------------------------------------------------
// mailzone.

struct Mailzone<'a> {
    binary: &'a Path,
    server: &'a DnsServer,
    tcpdump: Option<&'a Path>,
    work: &'a Path,
    zones: usize,
}

/// What `mailzone apply --format json` said.
struct ApplyReport {
    messages: u64,
    updates: u64,
    /// Zones with exactly one UPDATE, and with more than one.
    zones_one_update: usize,
    zones_more_updates: usize,
    zones: usize,
}

impl Mailzone<'_> {
    fn apply(
        &self,
        label: &str,
        config: &Path,
        state: &Path,
    ) -> Result<(Measure, ApplyReport), String> {
        let out = self.work.join(format!("{label}.json"));
        let err = self.work.join(format!("{label}.stderr"));
        let args = [
            "apply".as_ref(),
            "--quiet".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ];
        let m = measure(self.server, self.tcpdump, self.binary, &args, &out, &err)
            .map_err(|e| format!("mailzone {label}: {e}"))?;
        let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("mailzone {label} output: {e}"))?;
        let zones = json["zones"]
            .as_array()
            .ok_or(format!("mailzone {label} output: no zones"))?;
        let sent: Vec<u64> = zones
            .iter()
            .map(|z| z["updatesSent"].as_u64().unwrap_or(0))
            .collect();
        let report = ApplyReport {
            messages: json["summary"]["dnsMessages"]
                .as_u64()
                .ok_or(format!("mailzone {label} output: no summary.dnsMessages"))?,
            updates: sent.iter().sum(),
            zones_one_update: sent.iter().filter(|&&s| s == 1).count(),
            zones_more_updates: sent.iter().filter(|&&s| s > 1).count(),
            zones: zones.len(),
        };
        if report.zones != self.zones {
            return Err(format!(
                "mailzone {label}: reported {} zones of {}",
                report.zones, self.zones
            ));
        }
        Ok((m, report))
    }

    /// `apply --quiet` with the default text output (what a person runs): its summary line
    /// ends in "N DNS messages"; UPDATEs come from the capture.
    fn apply_text(
        &self,
        label: &str,
        config: &Path,
        state: &Path,
    ) -> Result<(Measure, u64), String> {
        let out = self.work.join(format!("{label}.txt"));
        let err = self.work.join(format!("{label}.stderr"));
        let args = [
            "apply".as_ref(),
            "--quiet".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ];
        let m = measure(self.server, self.tcpdump, self.binary, &args, &out, &err)
            .map_err(|e| format!("mailzone {label}: {e}"))?;
        let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
        let messages = text
            .lines()
            .last()
            .and_then(|line| line.strip_suffix(" DNS messages"))
            .and_then(|rest| rest.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .ok_or(format!(
                "mailzone {label}: no \"N DNS messages\" summary line"
            ))?;
        Ok((m, messages))
    }

    fn row(op: Op, m: Measure, report: &ApplyReport, runs: usize) -> Row {
        Row {
            op,
            tool: Tool::Mailzone,
            measure: m,
            runs,
            own_messages: Some(report.messages),
            own_updates: Some(report.updates),
        }
    }
}

fn expect_one_update_per_zone(
    label: &str,
    report: &ApplyReport,
    zones: usize,
) -> Result<(), String> {
    if report.zones_one_update != zones || report.zones_more_updates != 0 {
        return Err(format!(
            "mailzone {label}: {} zones were updated with one UPDATE and {} with more, of {zones}",
            report.zones_one_update, report.zones_more_updates
        ));
    }
    Ok(())
}

fn median(mut runs: Vec<(Measure, ApplyReport)>) -> (Measure, ApplyReport) {
    runs.sort_by_key(|(m, _)| m.wall);
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// Everything the runs share.
struct Bench<'a> {
    /// The mailzone release binary.
    binary: &'a Path,
    tcpdump: Option<&'a Path>,
    /// The temporary directory: configs, state directories, outputs, captures.
    work: &'a Path,
    /// `examples/`, absolute.
    examples: &'a Path,
    /// The RSA key of (c), made with openssl.
    new_rsa: &'a Path,
    zones: &'a [String],
    key: &'a TsigKey,
}

/// mailzone's rows; returns the records of the configs of (a)/(b) and of (c).
fn run_mailzone(bench: &Bench<'_>, rows: &mut Vec<Row>) -> Result<(ByZone, ByZone), String> {
    let Bench {
        binary,
        tcpdump,
        work,
        examples,
        new_rsa,
        zones,
        key,
    } = *bench;
    eprintln!("mailzone: starting knotd with {} zones", zones.len());
    let server = start_knot(zones, key)?;
    let config_a = work.join("mailzone-a.toml");
    let config_c = work.join("mailzone-c.toml");
    let old_rsa = examples.join("keys/202611r.pem");
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(
        &config_a,
        mailzone_config(
            zones,
            &rfc2136_table(&server),
            examples,
            OLD_RSA_SELECTOR,
            &old_rsa,
        ),
    )?;
    write(
        &config_c,
        mailzone_config(
            zones,
            &rfc2136_table(&server),
            examples,
            NEW_RSA_SELECTOR,
            new_rsa,
        ),
    )?;
    // Also warms the page cache for the binary, the config and the key files.
    let records_a = records_by_zone(binary, &config_a, &work.join("state-records"), zones)?;
    let records_c = records_by_zone(binary, &config_c, &work.join("state-records"), zones)?;

    let mz = Mailzone {
        binary,
        server: &server,
        tcpdump,
        work,
        zones: zones.len(),
    };
    let state = work.join("state-warm");

    eprintln!("mailzone (a): initial publish");
    let (m, report) = mz.apply("mailzone-a", &config_a, &state)?;
    expect_one_update_per_zone("(a)", &report, zones.len())?;
    verify_samples(server.addr, zones, &records_a, None)?;
    rows.push(Mailzone::row(Op::Publish, m, &report, 1));

    eprintln!("mailzone (b): no-op, cold ({NOOP_RUNS} runs)");
    let mut cold = Vec::new();
    for run in 0..NOOP_RUNS {
        let fresh = work.join(format!("state-cold-{run}"));
        cold.push(mz.apply(&format!("mailzone-b-cold-{run}"), &config_a, &fresh)?);
    }
    eprintln!("mailzone (b): no-op, warm ({NOOP_RUNS} runs)");
    let mut warm = Vec::new();
    for run in 0..NOOP_RUNS {
        warm.push(mz.apply(&format!("mailzone-b-warm-{run}"), &config_a, &state)?);
    }
    for (label, runs) in [("cold", &cold), ("warm", &warm)] {
        for (m, report) in runs {
            let captured = m.captured.as_ref().map(|c| c.updates).unwrap_or(0);
            if report.updates != 0 || captured != 0 {
                return Err(format!(
                    "mailzone (b) {label}: a no-op run sent UPDATEs (updatesSent {}, captured {captured})",
                    report.updates
                ));
            }
        }
    }
    let (m, report) = median(cold);
    rows.push(Mailzone::row(Op::NoopCold, m, &report, NOOP_RUNS));
    let (m, report) = median(warm);
    rows.push(Mailzone::row(Op::NoopWarm, m, &report, NOOP_RUNS));

    eprintln!("mailzone (c): the RSA DKIM key of every zone replaced");
    let (m, report) = mz.apply("mailzone-c", &config_c, &state)?;
    expect_one_update_per_zone("(c)", &report, zones.len())?;
    verify_samples(server.addr, zones, &records_c, Some(OLD_RSA_SELECTOR))?;
    rows.push(Mailzone::row(Op::Dkim, m, &report, 1));
    drop(server);

    // `--format json` holds the whole report in memory before printing it: (a) once more
    // with the text output a person would see, on another fresh knotd.
    eprintln!("mailzone (a) with text output: starting a fresh knotd");
    let server = start_knot(zones, key)?;
    write(
        &config_a,
        mailzone_config(
            zones,
            &rfc2136_table(&server),
            examples,
            OLD_RSA_SELECTOR,
            &old_rsa,
        ),
    )?;
    let mz = Mailzone {
        binary,
        server: &server,
        tcpdump,
        work,
        zones: zones.len(),
    };
    eprintln!("mailzone (a) with text output: initial publish");
    let (m, messages) = mz.apply_text("mailzone-a-text", &config_a, &work.join("state-text"))?;
    if let Some(c) = &m.captured
        && c.updates != zones.len() as u64
    {
        return Err(format!(
            "mailzone (a) with text output: {} UPDATEs captured for {} zones",
            c.updates,
            zones.len()
        ));
    }
    verify_samples(server.addr, zones, &records_a, None)?;
    rows.push(Row {
        op: Op::PublishText,
        tool: Tool::Mailzone,
        measure: m,
        runs: 1,
        own_messages: Some(messages),
        own_updates: None,
    });
    Ok((records_a, records_c))
}

// ---------------------------------------------------------------------------------------
// octoDNS.

/// Writes the octoDNS config (`octodns.yaml`) and one zone file per zone into `dir`.
fn write_octodns_config(
    dir: &Path,
    server: &DnsServer,
    zones: &[String],
    records: &ByZone,
) -> Result<PathBuf, String> {
    use std::fmt::Write as _;
    let zone_dir = dir.join("zones");
    std::fs::create_dir_all(&zone_dir).map_err(|e| e.to_string())?;
    write_zone_files(&zone_dir, zones, records)?;
    let mut config = format!(
        "---\nproviders:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    \
         default_ttl: 300\n    directory: {}\n    enforce_order: false\n    \
         escaped_semicolons: true\n  knot:\n    class: octodns_bind.Rfc2136Provider\n    \
         host: 127.0.0.1\n    key_algorithm: hmac-sha256\n    key_name: {}\n    \
         key_secret: {}\n    port: {}\nzones:\n",
        serde_json::to_string(&zone_dir.to_string_lossy()).expect("a string"),
        server.key.name,
        serde_json::to_string(&server.key.secret_base64).expect("a string"),
        server.addr.port(),
    );
    for zone in zones {
        let _ = writeln!(
            config,
            "  {zone}.:\n    sources:\n    - config\n    targets:\n    - knot"
        );
    }
    let path = dir.join("octodns.yaml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    Ok(path)
}

fn run_octodns(
    bench: &Bench<'_>,
    venv: &Path,
    records_a: &ByZone,
    records_c: &ByZone,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let Bench {
        tcpdump,
        work,
        zones,
        key,
        ..
    } = *bench;
    eprintln!("octoDNS: starting a fresh knotd with {} zones", zones.len());
    let server = start_knot(zones, key)?;
    let dir = work.join("octodns");
    let config = write_octodns_config(&dir, &server, zones, records_a)?;
    let sync = venv.join("bin/octodns-sync");
    let run = |label: &str| -> Result<Measure, String> {
        let args = [
            "--config-file".as_ref(),
            config.as_os_str(),
            "--doit".as_ref(),
        ];
        measure(
            &server,
            tcpdump,
            &sync,
            &args,
            &work.join(format!("{label}.stdout")),
            &work.join(format!("{label}.stderr")),
        )
        .map_err(|e| format!("octodns-sync {label}: {e}"))
    };
    let check_updates = |label: &str, m: &Measure, want: u64| -> Result<(), String> {
        match &m.captured {
            Some(c) if c.updates != want => Err(format!(
                "octoDNS {label}: {} UPDATEs captured, expected {want}",
                c.updates
            )),
            _ => Ok(()),
        }
    };
    let row = |op: Op, measure: Measure| Row {
        op,
        tool: Tool::Octodns,
        measure,
        runs: 1,
        own_messages: None,
        own_updates: None,
    };
    let n = zones.len() as u64;

    eprintln!("octoDNS (a): initial publish");
    let m = run("octodns-a")?;
    check_updates("(a)", &m, n)?;
    verify_samples(server.addr, zones, records_a, None)?;
    rows.push(row(Op::Publish, m));

    eprintln!("octoDNS (b): no-op");
    let m = run("octodns-b")?;
    check_updates("(b)", &m, 0)?;
    rows.push(row(Op::NoopOctodns, m));

    eprintln!("octoDNS (c): the RSA DKIM key of every zone replaced");
    write_zone_files(&dir.join("zones"), zones, records_c)?;
    let m = run("octodns-c")?;
    check_updates("(c)", &m, n)?;
    verify_samples(server.addr, zones, records_c, Some(OLD_RSA_SELECTOR))?;
    rows.push(row(Op::Dkim, m));
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn run(args: &Args) -> Result<(), String> {
    let binary = mailzone_binary()?;
    if !ServerKind::Knot.available() {
        return Err(
            "knotd, kdig and knsupdate are needed: apt-get install knot knot-dnsutils".into(),
        );
    }
    let tcpdump = if args.capture {
        let found = which("tcpdump");
        if found.is_none() {
            eprintln!(
                "reconcile_table: no tcpdump (apt-get install -y tcpdump): octoDNS's DNS messages will be n/a"
            );
        }
        found
    } else {
        None
    };
    let work_dir = tempfile::Builder::new()
        .prefix("mailzone-reconcile-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    // RECONCILE_TABLE_KEEP=1 keeps the configs, outputs, logs and captures for a look.
    let kept = std::env::var_os("RECONCILE_TABLE_KEEP").map(|_| work_dir.path().to_path_buf());
    if let Some(path) = &kept {
        eprintln!("reconcile_table: keeping {}", path.display());
    }
    let work = work_dir.path();
    let examples = examples_dir()
        .canonicalize()
        .map_err(|e| format!("examples/: {e}"))?;
    let new_rsa = work.join(format!("{NEW_RSA_SELECTOR}.pem"));
    openssl_rsa_key(&new_rsa)?;
    let zones: Vec<String> = (0..args.zones).map(zone_name).collect();
    let key = TsigKey::generate("mailzone");
    let bench = Bench {
        binary: &binary,
        tcpdump: tcpdump.as_deref(),
        work,
        examples: &examples,
        new_rsa: &new_rsa,
        zones: &zones,
        key: &key,
    };
    let result = measure_all(args, &bench);
    if kept.is_some() {
        let _ = work_dir.keep();
    }
    result
}

fn measure_all(args: &Args, bench: &Bench<'_>) -> Result<(), String> {
    let load_before = &load_average();
    let mut rows = Vec::new();
    let (records_a, records_c) = run_mailzone(bench, &mut rows)?;

    let mut octodns_note = String::from("octoDNS: skipped (--skip-octodns).");
    if args.octodns {
        match octodns_venv() {
            Ok((venv, versions)) => {
                run_octodns(bench, &venv, &records_a, &records_c, &mut rows)?;
                octodns_note = format!(
                    "octoDNS: {versions}, `octodns-sync --doit` with octodns-bind's Rfc2136Provider \
                     (default settings: zones one after another), its zone files holding the \
                     same 26 records plus the kit's apex NS and ns1 glue; a fresh knotd for each tool."
                );
            }
            Err(e) => octodns_note = format!("octoDNS: not measured ({e})."),
        }
    }
    rows.sort_by_key(|r| {
        let op = match r.op {
            Op::Publish => 0,
            Op::PublishText => 1,
            Op::NoopCold => 2,
            Op::NoopWarm => 3,
            Op::NoopOctodns => 4,
            Op::Dkim => 5,
        };
        (op, r.tool == Tool::Octodns)
    });
    print_environment(bench.binary, load_before);
    print_table(&rows, bench.zones.len(), &octodns_note);
    print_targets(&rows, bench.zones.len());
    Ok(())
}

fn print_environment(binary: &Path, load_before: &str) {
    let version = |program: &Path, arg: &str| {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let knotd = which("knotd")
        .map(|k| version(&k, "--version"))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "{} ({}), {knotd}, {cores} cores; mailzone runs with concurrency 16 (the CLI's default), protocol tcp.",
        binary.display(),
        version(binary, "--version"),
    );
    println!(
        "Load average (1 min) before the runs {load_before}, after them {}.",
        load_average(),
    );
    println!();
}
