//! mailzone publishing into one Knot at 1,000, 10,000 and 100,000 zones (the scale
//! benchmark), beside octoDNS at 1,000: prints one markdown table of wall time, CPU
//! (mailzone's and knotd's), DNS messages, UPDATEs and peak RSS for each size, operation
//! and tool, and whether mailzone meets its scale targets.
//!
//! ```sh
//! cargo build --release -p mailzone
//! cargo run --release -p mailzone-bench --bin scale_table -- \
//!     [--sizes 1000,10000,100000] [--skip-octodns] [--runs N] [--noop-runs N] [--capture]
//! ```
//!
//! For each size N, `--runs` rounds (default 1), each on a fresh knotd (testkit) serving
//! N zones `z00000.bench.test` … that hold only the kit's SOA, NS and `ns1` glue at the
//! start, with the configs of `reconcile_table`:
//! - (a) initial publish into a fresh state directory;
//! - (b) a warm no-op (the state directory of (a)), `--noop-runs` runs (default 3);
//! - (c) the RSA DKIM key of every domain replaced by another one (new selector).
//!
//! Each row is the median (by wall time) of its runs over the rounds: a 1,000-zone run
//! lasts about a second and varies by a third from one to the next, so its rows want
//! `--runs 5` or more. The targets under the table give, beside each row's verdict, the
//! lowest, median and highest wall ÷ knotd CPU of its runs.
//!
//! (a) and (c) must send one UPDATE per zone and (b) none (mailzone's own `updatesSent`),
//! and the first, middle and last zones are checked with kdig after (a) and (c). octoDNS
//! runs (a), (b) and (c) at 1,000 zones only (it takes minutes there), on a fresh knotd.
//!
//! DNS messages are mailzone's own count (`summary.dnsMessages`); `--capture` also runs
//! tcpdump on `lo` (as `reconcile_table` does), which counts octoDNS's messages too but
//! takes CPU from the runs measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mailzone_bench::mail_zones::{
    ByZone, NEW_RSA_SELECTOR, OLD_RSA_SELECTOR, records_by_zone, sample_records_by_zone,
    verify_samples, zone_name,
};
use mailzone_bench::measure::{
    duration, load_average, mib, number_arg, print_markdown_table, table_main, which,
};
use mailzone_bench::octodns::octodns_venv;
use mailzone_bench::pcap::thousands;
use mailzone_bench::reconcile::{
    ApplyReport, KnotBench, Mailzone, Measure, Tool, expect_one_update_per_zone, median,
    old_rsa_key, print_environment, run_octodns, spread, start_knot, wall_per_knot_cpu,
    warn_disturbed, write_mailzone_config,
};
use mailzone_testkit::{DnsServer, TsigKey};

const DEFAULT_SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const MAX_ZONES: usize = 100_000;
/// octoDNS runs at this size only.
const OCTODNS_ZONES: usize = 1_000;
/// The scale targets: the largest size's warm no-op time and peak RSS, and each run's
/// wall time against knotd's CPU time.
const TARGET_NOOP_ZONES: usize = 100_000;
const TARGET_NOOP_WALL: Duration = Duration::from_secs(30);
const TARGET_NOOP_RSS_BYTES: u64 = 300_000_000;
const TARGET_CHANGE_FACTOR: f64 = 1.3;
const TARGET_NOOP_FACTOR: f64 = 3.0;

struct Args {
    sizes: Vec<usize>,
    octodns: bool,
    capture: bool,
    noop_runs: usize,
    /// Rounds of (a), (b) and (c) per size, each on a fresh knotd; the rows are medians.
    runs: usize,
}

fn main() -> ExitCode {
    table_main(
        "scale_table",
        "[--sizes 1000,10000,100000] [--skip-octodns] [--runs N] [--noop-runs N] [--capture]",
        parse_args,
        run,
    )
}

fn parse_args(raw: Vec<String>) -> Result<Args, String> {
    let mut args = Args {
        sizes: DEFAULT_SIZES.to_vec(),
        octodns: true,
        capture: false,
        noop_runs: 3,
        runs: 1,
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sizes" => {
                let list = it
                    .next()
                    .ok_or("--sizes needs a value: 1000,10000,100000")?;
                args.sizes = list
                    .split(',')
                    .map(|n| match n.trim().replace('_', "").parse::<usize>() {
                        Ok(n) if (1..=MAX_ZONES).contains(&n) => Ok(n),
                        _ => Err(format!(
                            "--sizes: `{n}` is not a number of zones from 1 to {MAX_ZONES}"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--skip-octodns" => args.octodns = false,
            "--capture" => args.capture = true,
            "--noop-runs" => args.noop_runs = number_arg("--noop-runs", &mut it, 1..=20)?,
            "--runs" => args.runs = number_arg("--runs", &mut it, 1..=20)?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------
// The rows.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Op {
    Publish,
    NoopWarm,
    Dkim,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Publish => "(a) initial publish",
            Op::NoopWarm => "(b) no-op, warm",
            Op::Dkim => "(c) DKIM key changed in every zone",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Op::Publish => "(a)",
            Op::NoopWarm => "(b) warm",
            Op::Dkim => "(c)",
        }
    }
}

/// An operation at a size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct At {
    zones: usize,
    op: Op,
}

type Row = mailzone_bench::reconcile::Row<At>;

/// Each mailzone row's runs, as their wall ÷ knotd CPU: the row shows one run (the median
/// by wall), whose ratio can lie anywhere in their spread, since wall and knotd's CPU
/// swing together with the machine.
type RunRatios = BTreeMap<(usize, Op), Vec<f64>>;

/// Adds `row`, saying it on stderr at once (the table comes at the end).
fn push(rows: &mut Vec<Row>, row: Row) {
    let m = &row.measure;
    eprintln!(
        "  {} zones {} {}: wall {}, CPU {}, knotd CPU {} ({}), peak RSS {}",
        thousands(row.op.zones as u64),
        row.op.op.short(),
        row.tool_name(),
        duration(m.wall),
        duration(m.cpu),
        duration(m.knot_cpu),
        row.wall_per_knot_cpu(),
        mib(m.peak_rss_kib)
    );
    rows.push(row);
}

// ---------------------------------------------------------------------------------------
// One size.

/// Everything the sizes share.
struct Bench<'a> {
    binary: &'a Path,
    tcpdump: Option<&'a Path>,
    /// The temporary directory: one subdirectory per size (removed after it unless kept).
    work: &'a Path,
    /// `examples/`, absolute.
    examples: &'a Path,
    /// The RSA key of (c), made with openssl.
    new_rsa: &'a Path,
    key: &'a TsigKey,
    /// The octoDNS venv and its versions, when octoDNS runs.
    octodns: Option<&'a Path>,
    /// SCALE_TABLE_KEEP: the sizes' files are kept too.
    keep: bool,
}

/// What one round of mailzone's runs measured at a size: (a), each run of (b), (c).
struct Round {
    publish: Measured,
    warm: Vec<Measured>,
    dkim: Measured,
}

type Measured = (Measure, ApplyReport);

/// The zones of a size and where its files go.
struct Size<'a> {
    n: usize,
    zones: &'a [String],
    work: &'a Path,
    /// Whether every zone's records are kept (octoDNS is handed them), not only those of
    /// the zones checked with kdig.
    all_records: bool,
}

/// The records the zones must hold after (a) and after (c).
struct Expected {
    a: ByZone,
    c: ByZone,
}

impl Size<'_> {
    /// The records of the configs of (a) and (c), from `mailzone records`: this also warms
    /// the page cache for the binary, the configs and the keys.
    fn expected(
        &self,
        binary: &Path,
        config_a: &Path,
        config_c: &Path,
    ) -> Result<Expected, String> {
        let state = self.work.join("state-records");
        let records = |config: &Path| {
            if self.all_records {
                records_by_zone(binary, config, &state, self.zones)
            } else {
                sample_records_by_zone(binary, config, &state, self.zones)
            }
        };
        Ok(Expected {
            a: records(config_a)?,
            c: records(config_c)?,
        })
    }
}

/// One round at a size: a fresh knotd, (a) into a fresh state directory, then `noop_runs`
/// runs of (b) and one of (c) on its state. The first round finds the records expected
/// (`expected` is `None` until then).
fn mailzone_round(
    bench: &Bench<'_>,
    size: &Size<'_>,
    expected: &mut Option<Expected>,
    round: usize,
    noop_runs: usize,
) -> Result<Round, String> {
    let (n, zones, work) = (size.n, size.zones, size.work);
    eprintln!(
        "{} zones, round {}: starting knotd",
        thousands(n as u64),
        round + 1
    );
    let started = Instant::now();
    let server = start_knot(zones, bench.key)?;
    eprintln!("  knotd serves them after {}", duration(started.elapsed()));
    let (config_a, config_c) = write_configs(bench, work, zones, &server)?;
    if expected.is_none() {
        *expected = Some(size.expected(bench.binary, &config_a, &config_c)?);
    }
    let expected = expected.as_ref().expect("found above");
    let mz = Mailzone {
        binary: bench.binary,
        server: &server,
        tcpdump: bench.tcpdump,
        work,
        zones: n,
    };
    let state = work.join(format!("state-warm-{round}"));

    eprintln!("  mailzone (a): initial publish");
    let publish = mz.apply(&format!("mailzone-a-{round}"), &config_a, &state)?;
    expect_one_update_per_zone("(a)", &publish.1, n)?;
    verify_samples(server.addr, zones, &expected.a, None)?;
    say(n, Op::Publish, &publish.0);

    eprintln!("  mailzone (b): no-op, warm ({noop_runs} runs)");
    let mut warm = Vec::new();
    for run in 0..noop_runs {
        let (m, report) = mz.apply(&format!("mailzone-b-warm-{round}-{run}"), &config_a, &state)?;
        let captured = m.captured.as_ref().map(|c| c.updates).unwrap_or(0);
        if report.updates != 0 || captured != 0 {
            return Err(format!(
                "mailzone (b) warm: a no-op run sent UPDATEs (updatesSent {}, captured {captured})",
                report.updates
            ));
        }
        say(n, Op::NoopWarm, &m);
        warm.push((m, report));
    }

    eprintln!("  mailzone (c): the RSA DKIM key of every zone replaced");
    let dkim = mz.apply(&format!("mailzone-c-{round}"), &config_c, &state)?;
    expect_one_update_per_zone("(c)", &dkim.1, n)?;
    verify_samples(server.addr, zones, &expected.c, Some(OLD_RSA_SELECTOR))?;
    say(n, Op::Dkim, &dkim.0);
    Ok(Round {
        publish,
        warm,
        dkim,
    })
}

/// Says a run's figures on stderr at once (a round's rows come after all its runs).
fn say(n: usize, op: Op, m: &Measure) {
    eprintln!(
        "    {} zones {}: wall {}, CPU {}, knotd CPU {}, peak RSS {}",
        thousands(n as u64),
        op.short(),
        duration(m.wall),
        duration(m.cpu),
        duration(m.knot_cpu),
        mib(m.peak_rss_kib)
    );
}

/// The configs of (a) and (c) for `server`'s zones, written into `work`.
fn write_configs(
    bench: &Bench<'_>,
    work: &Path,
    zones: &[String],
    server: &DnsServer,
) -> Result<(PathBuf, PathBuf), String> {
    let config_a = work.join("mailzone-a.toml");
    let config_c = work.join("mailzone-c.toml");
    write_mailzone_config(
        &config_a,
        zones,
        server,
        bench.examples,
        OLD_RSA_SELECTOR,
        &old_rsa_key(bench.examples),
    )?;
    write_mailzone_config(
        &config_c,
        zones,
        server,
        bench.examples,
        NEW_RSA_SELECTOR,
        bench.new_rsa,
    )?;
    Ok((config_a, config_c))
}

/// mailzone's rows at `n` zones (the medians of `--runs` rounds), then octoDNS's at
/// [`OCTODNS_ZONES`].
fn run_size(
    bench: &Bench<'_>,
    n: usize,
    args: &Args,
    rows: &mut Vec<Row>,
    ratios: &mut RunRatios,
) -> Result<(), String> {
    let work = &bench.work.join(format!("zones-{n}"));
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let zones: Vec<String> = (0..n).map(zone_name).collect();
    let octodns = bench.octodns.filter(|_| n == OCTODNS_ZONES);
    let at = |op| At { zones: n, op };
    let size = Size {
        n,
        zones: &zones,
        work,
        all_records: octodns.is_some(),
    };

    let mut expected = None;
    let (mut publish, mut warm, mut dkim) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.runs {
        let r = mailzone_round(bench, &size, &mut expected, round, args.noop_runs)?;
        publish.push(r.publish);
        warm.extend(r.warm);
        dkim.push(r.dkim);
        // A round's state directory holds a few hundred MB at 100,000 zones.
        if !bench.keep {
            let _ = std::fs::remove_dir_all(work.join(format!("state-warm-{round}")));
        }
    }
    for (op, runs) in [
        (Op::Publish, publish),
        (Op::NoopWarm, warm),
        (Op::Dkim, dkim),
    ] {
        let count = runs.len();
        ratios.insert(
            (n, op),
            runs.iter()
                .filter_map(|(m, _)| wall_per_knot_cpu(m))
                .collect(),
        );
        let (m, report) = median(runs);
        push(rows, Row::mailzone(at(op), m, &report, count));
    }

    if let (Some(venv), Some(expected)) = (octodns, &expected) {
        let runs = run_octodns(
            venv,
            bench.tcpdump,
            work,
            &zones,
            bench.key,
            &expected.a,
            &expected.c,
        )?;
        for row in runs.into_rows(at(Op::Publish), at(Op::NoopWarm), at(Op::Dkim)) {
            push(rows, row);
        }
    }
    // The configs, state and outputs of 100,000 zones take hundreds of MB.
    if !bench.keep {
        let _ = std::fs::remove_dir_all(work);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn run(args: &Args) -> Result<(), String> {
    let setup = KnotBench::new("mailzone-scale-bench-")?;
    let tcpdump = if args.capture {
        Some(which("tcpdump").ok_or("--capture needs tcpdump (apt-get install -y tcpdump)")?)
    } else {
        None
    };
    // SCALE_TABLE_KEEP=1 keeps the work directory with every size's configs, state
    // directories and outputs (hundreds of MB at 100,000 zones).
    let kept = std::env::var_os("SCALE_TABLE_KEEP").is_some();
    if kept {
        eprintln!("scale_table: keeping {}", setup.work_dir.path().display());
    }

    let mut octodns_note = String::from("octoDNS: skipped (--skip-octodns).");
    let mut venv = None;
    if !args.sizes.contains(&OCTODNS_ZONES) {
        octodns_note = format!(
            "octoDNS: not run (it runs at {} zones only).",
            thousands(OCTODNS_ZONES as u64)
        );
    } else if args.octodns {
        match octodns_venv() {
            Ok((path, versions)) => {
                venv = Some(path);
                octodns_note = format!(
                    "octoDNS at {} zones only: {versions}, `octodns-sync --doit` with \
                     octodns-bind's Rfc2136Provider (default settings: zones one after \
                     another), on a fresh knotd; its DNS messages and UPDATEs are counted only \
                     with --capture.",
                    thousands(OCTODNS_ZONES as u64)
                );
            }
            Err(e) => octodns_note = format!("octoDNS: not measured ({e})."),
        }
    }
    let bench = Bench {
        binary: &setup.binary,
        tcpdump: tcpdump.as_deref(),
        work: setup.work_dir.path(),
        examples: &setup.examples,
        new_rsa: &setup.new_rsa,
        key: &setup.key,
        octodns: venv.as_deref(),
        keep: kept,
    };

    let load_before = load_average();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut commits = BTreeMap::new();
    let mut ratios = RunRatios::new();
    for &n in &args.sizes {
        match commit_latency(bench.work) {
            Ok(latency) => {
                commits.insert(n, latency);
            }
            Err(e) => eprintln!("scale_table: the disk's commit time not measured: {e}"),
        }
        // A size that fails does not lose the others' rows.
        if let Err(e) = run_size(&bench, n, args, &mut rows, &mut ratios) {
            eprintln!("scale_table: {} zones failed: {e}", thousands(n as u64));
            failures.push(format!("{} zones: {e}", thousands(n as u64)));
        }
    }
    print_environment(&setup.binary, &load_before);
    print_table(&rows, &octodns_note, tcpdump.is_some());
    print_targets(&rows, &args.sizes, &commits, &ratios);
    if kept {
        let _ = setup.work_dir.keep();
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failures.join("; ")))
    }
}

fn print_table(rows: &[Row], octodns_note: &str, captured: bool) {
    let header = [
        "zones",
        "operation",
        "tool",
        "wall",
        "tool CPU",
        "knotd CPU",
        "wall ÷ knotd CPU",
        "DNS messages",
        "UPDATEs",
        "peak RSS",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let m = &r.measure;
            vec![
                thousands(r.op.zones as u64),
                // octoDNS keeps no state: its no-op is the same run cold or warm.
                if r.tool == Tool::Octodns && r.op.op == Op::NoopWarm {
                    "(b) no-op (no state: cold = warm)".into()
                } else {
                    r.op.op.label().into()
                },
                r.tool_name(),
                duration(m.wall),
                duration(m.cpu),
                duration(m.knot_cpu),
                r.wall_per_knot_cpu(),
                r.messages().map(thousands).unwrap_or_else(|| "n/a".into()),
                r.updates().map(thousands).unwrap_or_else(|| "n/a".into()),
                mib(m.peak_rss_kib),
            ]
        })
        .collect();
    print_markdown_table(&header, &cells, 3);
    println!();
    println!(
        "Zones `z00000.bench.test` …, each receiving 26 records (MX, SPF, 2 DKIM, DMARC, \
         TLS-RPT, 2 MTA-STS, 11 SRV, 3 autoconfig, 2 autodiscover, 2 CAA); one fresh knotd \
         per size. {octodns_note}"
    );
    println!();
    println!(
        "tool CPU: the tool's user + system time; knotd CPU: knotd's over the run (its \
         threads' schedstat in /proc, to the nanosecond); DNS messages: {}; UPDATEs: \
         mailzone's `updatesSent` summed over the zones{}.",
        if captured {
            "what the tool sent to knotd, from a tcpdump capture on lo"
        } else {
            "mailzone's own count (`summary.dnsMessages`), n/a for octoDNS without --capture"
        },
        if captured { ", or the capture's" } else { "" }
    );
    warn_disturbed(rows, |r| {
        format!(
            "{} zones {} {}",
            thousands(r.op.zones as u64),
            r.op.op.short(),
            r.tool_name()
        )
    });
    if cfg!(debug_assertions) {
        println!();
        println!("warning: this is a debug build of scale_table; run it with --release.");
    }
}

/// Commits timed by [`commit_latency`].
const COMMIT_SAMPLES: usize = 200;

/// Pages written per commit by [`commit_latency`]: Knot's journal wrote about six per
/// UPDATE in a `perf trace` of a 1,000-zone publish.
const COMMIT_PAGES: u64 = 6;

/// How long a commit like those of Knot's journal takes on the file system of the
/// temporary directories, where knotd keeps it: [`COMMIT_PAGES`] pages of 4 KiB written
/// at random places in a 64 MiB file, then `fdatasync`; the median of [`COMMIT_SAMPLES`].
/// Knot commits every UPDATE with one, one commit at a time (its journal is one LMDB
/// environment, one writer): time on knotd's wall that is mostly not its CPU, the
/// targets' yardstick. An estimate (LMDB's pages are not these), for reading the figures.
fn commit_latency(dir: &Path) -> Result<Duration, String> {
    use std::os::unix::fs::FileExt;
    const FILE_PAGES: u64 = 16_384;
    let path = dir.join("commit-latency");
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = std::fs::File::create(&path).map_err(failed)?;
    file.set_len(FILE_PAGES * 4096).map_err(failed)?;
    let page = [0x5a_u8; 4096];
    for n in 0..FILE_PAGES {
        file.write_all_at(&page, n * 4096).map_err(failed)?;
    }
    file.sync_all().map_err(failed)?;
    // A fixed sequence of places (a linear congruential generator): no randomness crate.
    let mut place = 1_u64;
    let mut times = Vec::with_capacity(COMMIT_SAMPLES);
    for _ in 0..COMMIT_SAMPLES {
        let start = Instant::now();
        for _ in 0..COMMIT_PAGES {
            place = place
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let at = (place >> 33) % FILE_PAGES * 4096;
            file.write_all_at(&page, at).map_err(failed)?;
        }
        file.sync_data().map_err(failed)?;
        times.push(start.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path).map_err(failed)?;
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// A commit's time, in milliseconds to the microsecond.
fn commit_time(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn print_targets(
    rows: &[Row],
    sizes: &[usize],
    commits: &BTreeMap<usize, Duration>,
    ratios: &RunRatios,
) {
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    let mailzone = |n: usize, op: Op| {
        rows.iter()
            .find(|r| r.op == At { zones: n, op } && r.tool == Tool::Mailzone)
    };
    let mut lines = Vec::new();
    match mailzone(TARGET_NOOP_ZONES, Op::NoopWarm) {
        Some(r) => {
            let m = &r.measure;
            lines.push(format!(
                "{} zones warm no-op under {}: {} → {}",
                thousands(TARGET_NOOP_ZONES as u64),
                duration(TARGET_NOOP_WALL),
                duration(m.wall),
                verdict(m.wall < TARGET_NOOP_WALL)
            ));
            let bytes = m.peak_rss_kib * 1024;
            lines.push(format!(
                "its peak RSS under {} MB: {} ({:.1} MB) → {}",
                TARGET_NOOP_RSS_BYTES / 1_000_000,
                mib(m.peak_rss_kib),
                bytes as f64 / 1e6,
                verdict(bytes < TARGET_NOOP_RSS_BYTES)
            ));
        }
        None => lines.push(format!(
            "{} zones warm no-op under {} with peak RSS under {} MB: not measured",
            thousands(TARGET_NOOP_ZONES as u64),
            duration(TARGET_NOOP_WALL),
            TARGET_NOOP_RSS_BYTES / 1_000_000,
        )),
    }
    for (ops, factor, what) in [
        (
            &[Op::Publish, Op::Dkim][..],
            TARGET_CHANGE_FACTOR,
            "publish and key change",
        ),
        (&[Op::NoopWarm][..], TARGET_NOOP_FACTOR, "warm no-op"),
    ] {
        let mut parts = Vec::new();
        let mut all = true;
        for &n in sizes {
            for &op in ops {
                let Some(r) = mailzone(n, op) else {
                    parts.push(format!(
                        "{} {}: not measured",
                        thousands(n as u64),
                        op.short()
                    ));
                    all = false;
                    continue;
                };
                let m = &r.measure;
                let ok = m.wall <= m.knot_cpu.mul_f64(factor);
                all &= ok;
                parts.push(format!(
                    "{} {} {} vs {} ({}) {}{}",
                    thousands(n as u64),
                    op.short(),
                    duration(m.wall),
                    duration(m.knot_cpu),
                    r.exact_wall_per_knot_cpu(),
                    verdict(ok),
                    ratios.get(&(n, op)).map_or(String::new(), |r| spread(r))
                ));
            }
        }
        lines.push(format!(
            "{what} wall within {factor}× knotd's CPU at every size: {} → {}",
            parts.join("; "),
            verdict(all)
        ));
    }
    println!();
    println!("Scale targets (mailzone):");
    for l in lines {
        println!("- {l}");
    }
    if !commits.is_empty() {
        let each: Vec<String> = commits
            .iter()
            .map(|(n, commit)| {
                let updates = *n as u64;
                format!(
                    "{} before {} zones ({} UPDATEs: {} of journal commits in a row)",
                    commit_time(*commit),
                    thousands(updates),
                    thousands(updates),
                    duration(commit.mul_f64(updates as f64))
                )
            })
            .collect();
        println!(
            "\nA commit like Knot's journal's ({COMMIT_PAGES} pages of 4 KiB written, then \
             fdatasync) in the temporary directories, where knotd keeps its journal, median of \
             {COMMIT_SAMPLES}: {}. knotd makes one per UPDATE, one at a time: time on its wall, \
             mostly not on its CPU.",
            each.join("; ")
        );
    }
}
