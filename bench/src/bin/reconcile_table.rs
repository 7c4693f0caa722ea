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

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use mailzone_bench::mail_zones::{
    ByZone, MAIL_HOST, NEW_RSA_SELECTOR, OLD_RSA_SELECTOR, records_by_zone, verify_samples,
    zone_name,
};
use mailzone_bench::measure::{
    duration, load_average, mib, number_arg, print_markdown_table, ratio, table_main, which,
};
use mailzone_bench::octodns::octodns_venv;
use mailzone_bench::pcap::thousands;
use mailzone_bench::reconcile::{
    KnotBench, Mailzone, Tool, expect_one_update_per_zone, median, old_rsa_key, print_environment,
    run_octodns, start_knot, warn_disturbed, write_mailzone_config,
};
use mailzone_testkit::TsigKey;

const DEFAULT_ZONES: usize = 1_000;
/// mailzone's no-op runs are repeated this many times (median reported).
const NOOP_RUNS: usize = 3;
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

type Row = mailzone_bench::reconcile::Row<Op>;

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
                r.tool_name(),
                duration(m.wall),
                messages,
                r.updates().map(thousands).unwrap_or_else(|| "n/a".into()),
                mib(m.peak_rss_kib),
                duration(m.cpu),
                duration(m.knot_cpu),
                duration(m.others_cpu),
                r.wall_per_knot_cpu(),
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
        "tool CPU: the tool's user + system time; knotd CPU: knotd's over the run (its \
         threads' schedstat in /proc, to the nanosecond); others' CPU: the rest of the \
         machine meanwhile (tcpdump, the kernel's loopback work, any other process), 2 \
         cores in all."
    );
    warn_disturbed(rows, |r| format!("{} {}", short(r.op), r.tool.name()));
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
        println!("- {} — {}: {what}", r.op.label(), r.tool.name());
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
// mailzone.

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
    let old_rsa = old_rsa_key(examples);
    write_mailzone_config(
        &config_a,
        zones,
        &server,
        examples,
        OLD_RSA_SELECTOR,
        &old_rsa,
    )?;
    write_mailzone_config(
        &config_c,
        zones,
        &server,
        examples,
        NEW_RSA_SELECTOR,
        new_rsa,
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
    rows.push(Row::mailzone(Op::Publish, m, &report, 1));

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
    rows.push(Row::mailzone(Op::NoopCold, m, &report, NOOP_RUNS));
    let (m, report) = median(warm);
    rows.push(Row::mailzone(Op::NoopWarm, m, &report, NOOP_RUNS));

    eprintln!("mailzone (c): the RSA DKIM key of every zone replaced");
    let (m, report) = mz.apply("mailzone-c", &config_c, &state)?;
    expect_one_update_per_zone("(c)", &report, zones.len())?;
    verify_samples(server.addr, zones, &records_c, Some(OLD_RSA_SELECTOR))?;
    rows.push(Row::mailzone(Op::Dkim, m, &report, 1));
    drop(server);

    // `--format json` holds the whole report in memory before printing it: (a) once more
    // with the text output a person would see, on another fresh knotd.
    eprintln!("mailzone (a) with text output: starting a fresh knotd");
    let server = start_knot(zones, key)?;
    write_mailzone_config(
        &config_a,
        zones,
        &server,
        examples,
        OLD_RSA_SELECTOR,
        &old_rsa,
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

fn octodns_rows(
    bench: &Bench<'_>,
    venv: &Path,
    records_a: &ByZone,
    records_c: &ByZone,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let runs = run_octodns(
        venv,
        bench.tcpdump,
        bench.work,
        bench.zones,
        bench.key,
        records_a,
        records_c,
    )?;
    rows.extend(runs.into_rows(Op::Publish, Op::NoopOctodns, Op::Dkim));
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn run(args: &Args) -> Result<(), String> {
    let setup = KnotBench::new("mailzone-reconcile-bench-")?;
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
    // RECONCILE_TABLE_KEEP=1 keeps the configs, outputs, logs and captures for a look.
    let kept =
        std::env::var_os("RECONCILE_TABLE_KEEP").map(|_| setup.work_dir.path().to_path_buf());
    if let Some(path) = &kept {
        eprintln!("reconcile_table: keeping {}", path.display());
    }
    let zones: Vec<String> = (0..args.zones).map(zone_name).collect();
    let bench = Bench {
        binary: &setup.binary,
        tcpdump: tcpdump.as_deref(),
        work: setup.work_dir.path(),
        examples: &setup.examples,
        new_rsa: &setup.new_rsa,
        zones: &zones,
        key: &setup.key,
    };
    let result = measure_all(args, &bench);
    if kept.is_some() {
        let _ = setup.work_dir.keep();
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
                octodns_rows(bench, &venv, &records_a, &records_c, &mut rows)?;
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
