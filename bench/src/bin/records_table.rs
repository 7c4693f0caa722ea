//! Prints one table of what planning and rendering cost: for 1,000 and 10,000 domains, the
//! wall time of plan + zone rendering, the records and bytes produced, the DNS messages
//! sent and the peak RSS; then the real CLI end to end on a 10,000-domain config.
//!
//! `cargo run --release -p mailzone-bench --bin records_table` (build the CLI first with
//! `cargo build --release` for the last row).
//!
//! Each N runs in a child process of this program (`records_table --child N`), so that the
//! peak RSS (VmHWM) is that of one N alone.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use mailzone_bench::{Fixture, config_text, examples_dir};

const SIZES: [usize; 2] = [1_000, 10_000];
/// The library rows report the median of this many runs (after one untimed warm-up run).
const RUNS: usize = 3;
const CLI_DOMAINS: usize = 10_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, n] if flag == "--child" => match n.parse() {
            Ok(n) => child(n),
            Err(_) => usage(),
        },
        [] => parent(),
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: records_table   (prints the table; takes no arguments)");
    ExitCode::from(2)
}

/// One N: set up, run plan + render RUNS times, print `N nanos records bytes vmhwm_kib`.
fn child(n: usize) -> ExitCode {
    let fixture = Fixture::new(n);
    let _ = fixture.plan_render_zone();
    let mut times = Vec::with_capacity(RUNS);
    let mut totals = Default::default();
    for _ in 0..RUNS {
        let start = Instant::now();
        totals = std::hint::black_box(fixture.plan_render_zone());
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[RUNS / 2];
    let peak = vm_hwm_kib().unwrap_or(0);
    println!(
        "{n} {} {} {} {peak}",
        median.as_nanos(),
        totals.records,
        totals.bytes
    );
    ExitCode::SUCCESS
}

/// The peak resident set size of this process so far, from `/proc/self/status`.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Row {
    what: String,
    n: usize,
    wall: Option<Duration>,
    records: Option<usize>,
    bytes: Option<usize>,
    peak_kib: Option<u64>,
    note: String,
}

fn parent() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("records_table: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    for n in SIZES {
        match run_child(&exe, n) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("records_table: the run for {n} domains failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    rows.push(cli_row(&exe));
    print_table(&rows);
    ExitCode::SUCCESS
}

fn run_child(exe: &Path, n: usize) -> Result<Row, String> {
    let output = Command::new(exe)
        .args(["--child", &n.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("child exited with {}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<u128> = text
        .split_whitespace()
        .map(|f| f.parse().map_err(|_| format!("bad child output: {text:?}")))
        .collect::<Result<_, _>>()?;
    let [_, nanos, records, bytes, peak] = fields[..] else {
        return Err(format!("bad child output: {text:?}"));
    };
    Ok(Row {
        what: "library: plan + render zone".into(),
        n,
        wall: Some(Duration::from_nanos(nanos as u64)),
        records: Some(records as usize),
        bytes: Some(bytes as usize),
        peak_kib: Some(peak as u64),
        note: format!("median of {RUNS} runs; RSS includes setup"),
    })
}

/// The `mailzone` binary of a release build: `MAILZONE_BIN`, else `target/release/mailzone`
/// next to (or beside the profile directory of) this program.
fn cli_binary(exe: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MAILZONE_BIN") {
        return Some(PathBuf::from(path));
    }
    let dir = exe.parent()?;
    let candidates = [
        dir.join("../release/mailzone"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/mailzone"),
    ];
    candidates.into_iter().find(|p| p.is_file())
}

fn cli_row(exe: &Path) -> Row {
    let mut row = Row {
        what: "CLI: mailzone records > /dev/null".into(),
        n: CLI_DOMAINS,
        wall: None,
        records: None,
        bytes: None,
        peak_kib: None,
        note: String::new(),
    };
    let Some(binary) = cli_binary(exe) else {
        row.note = "no target/release/mailzone: build with cargo build --release first".into();
        return row;
    };
    match run_cli(&binary) {
        Ok((wall, peak)) => {
            row.wall = Some(wall);
            row.peak_kib = Some(peak);
            row.note = "whole process: reads config + 20,000 key files, plans, renders".into();
        }
        Err(e) => row.note = format!("failed: {e}"),
    }
    row
}

/// Runs the CLI on a generated config with manual DKIM keys (the example's key files, by
/// absolute path) and returns its wall time and peak RSS (from `wait4`).
fn run_cli(binary: &Path) -> Result<(Duration, u64), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let examples = examples_dir()
        .canonicalize()
        .map_err(|e| format!("examples/: {e}"))?;
    let keys = examples.join("keys");
    let certificate = examples.join("certs/mail.example.org.pem");
    let text = config_text(
        CLI_DOMAINS,
        &keys.to_string_lossy(),
        &certificate.to_string_lossy(),
    );
    let config = dir.path().join("mailzone.toml");
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let state = dir.path().join("state");

    let start = Instant::now();
    let child = Command::new(binary)
        .arg("records")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in; an all-zero value is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std only reaps in `wait`, which is
    // never called on `child`); both pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    drop(child);
    if reaped != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!(
            "{} records exited with status {status}",
            binary.display()
        ));
    }
    // ru_maxrss is in KiB on Linux.
    Ok((wall, usage.ru_maxrss as u64))
}

fn print_table(rows: &[Row]) {
    let header = [
        "run",
        "domains",
        "wall time",
        "per domain",
        "records",
        "zone bytes",
        "DNS messages sent",
        "peak RSS",
        "note",
    ];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.what.clone(),
                thousands(r.n as u128),
                r.wall.map(duration).unwrap_or_else(|| "–".into()),
                r.wall
                    .map(|w| duration(w / r.n as u32))
                    .unwrap_or_else(|| "–".into()),
                r.records
                    .map(|v| thousands(v as u128))
                    .unwrap_or_else(|| "–".into()),
                r.bytes
                    .map(|v| thousands(v as u128))
                    .unwrap_or_else(|| "–".into()),
                "0 (offline)".into(),
                r.peak_kib
                    .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                    .unwrap_or_else(|| "–".into()),
                r.note.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w - c.chars().count();
                // Numbers right-aligned, text left-aligned.
                if (1..=7).contains(&i) {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(&header.map(String::from));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", rule.join("-|-"));
    for row in &cells {
        line(row);
    }
    println!();
    println!(
        "DNS messages sent: always 0 — planning and rendering are offline, `records` sends no query."
    );
    if cfg!(debug_assertions) {
        println!("warning: this is a debug build of records_table; run it with --release.");
    }
}

fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}

fn thousands(v: u128) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
