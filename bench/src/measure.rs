//! Measuring one run of a tool for the benchmark tables: wall time, peak RSS and CPU time
//! of a child process (through a small helper, see [`spawn_measured`]), how busy the rest of
//! the machine was meanwhile, and the formatting the tables share.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// How long [`wait_for_quiet`] waits at most for an idle machine.
const QUIET_WAIT: Duration = Duration::from_secs(60);

/// The command-line flag of the helper mode: `PROGRAM --spawn-measured REPORT -- TOOL ARGS…`.
pub const SPAWN_MEASURED: &str = "--spawn-measured";

/// The `main` of a benchmark table program: the helper mode when started as one, else
/// the usage line for `--help` (exit 0), else `parse` then `run`, a usage line on bad
/// arguments (exit 2) and the error on failure (exit 1), each prefixed with the program's
/// `name`.
pub fn table_main<A>(
    name: &str,
    usage: &str,
    parse: impl FnOnce(Vec<String>) -> Result<A, String>,
    run: impl FnOnce(&A) -> Result<(), String>,
) -> ExitCode {
    if let Some(code) = helper_mode() {
        return code;
    }
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("usage: {name} {usage}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(raw) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{name}: {message}");
            eprintln!("usage: {name} {usage}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The number after `flag` (taken from `rest`), within `range`.
pub fn number_arg<T>(
    flag: &str,
    rest: &mut impl Iterator<Item = String>,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let text = rest.next().ok_or(format!("{flag} needs a number"))?;
    text.parse()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or(format!(
            "{flag} {text}: a number from {} to {}",
            range.start(),
            range.end()
        ))
}

/// The last `lines` lines of the file at `path` (empty when unreadable).
pub fn tail_of(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The helper mode, when this process was started as one: call first thing in `main`.
pub fn helper_mode() -> Option<ExitCode> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    match raw.as_slice() {
        [flag, report, dash, program, rest @ ..] if flag == SPAWN_MEASURED && dash == "--" => {
            Some(spawn_measured(Path::new(report), program, rest))
        }
        _ => None,
    }
}

/// How a measured run ended, as the helper process reports it.
pub struct ChildReport {
    pub wall: Duration,
    /// `ru_maxrss`, KiB.
    pub peak_rss_kib: u64,
    /// User + system time of the tool (with its children).
    pub cpu: Duration,
    /// The wait status (`wait4`).
    pub status: libc::c_int,
}

/// The helper mode (`<bench program> --spawn-measured REPORT -- PROGRAM ARGS…`): runs the
/// program with this process's stdio, waits for it with `wait4` and writes
/// `wall_ns maxrss_kib cpu_us status` to REPORT.
///
/// Why a helper: `ru_maxrss` is the high-water mark of the child's address space, and a
/// child spawned by `posix_spawn` (vfork) or `fork` starts in its parent's address space,
/// so its `ru_maxrss` is at least the parent's peak RSS at that moment (Linux keeps the
/// maximum across `exec`). This program holds the records of every zone (tens of MiB);
/// the helper, freshly started, holds about 2 MiB, so the figure is the tool's own.
fn spawn_measured(report: &Path, program: &str, args: &[String]) -> ExitCode {
    let start = Instant::now();
    let child = match Command::new(program).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("measuring helper: {program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not reaped yet (std only reaps in `wait`, never
    // called on `child`); both pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    drop(child);
    if reaped != pid {
        eprintln!(
            "measuring helper: wait4: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    let cpu = micros(usage.ru_utime) + micros(usage.ru_stime);
    let line = format!("{} {} {cpu} {status}\n", wall.as_nanos(), usage.ru_maxrss);
    match std::fs::write(report, line) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("measuring helper: {}: {e}", report.display());
            ExitCode::FAILURE
        }
    }
}

/// Runs `program args` through the helper; stdout and stderr go to `out` and `err`.
pub fn run_measured(
    program: &Path,
    args: &[&std::ffi::OsStr],
    out: &Path,
    err: &Path,
) -> Result<ChildReport, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let report = out.with_extension("rusage");
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let status = Command::new(exe)
        .arg(SPAWN_MEASURED)
        .arg(&report)
        .arg("--")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file(out)?)
        .stderr(file(err)?)
        .status()
        .map_err(|e| format!("the measuring helper: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the measuring helper failed: {}",
            std::fs::read_to_string(err).unwrap_or_default()
        ));
    }
    let text =
        std::fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?;
    let fields: Vec<i128> = text
        .split_whitespace()
        .map(|f| f.parse().map_err(|_| format!("bad helper report {text:?}")))
        .collect::<Result<_, _>>()?;
    let [wall, rss, cpu, status] = fields[..] else {
        return Err(format!("bad helper report {text:?}"));
    };
    Ok(ChildReport {
        wall: Duration::from_nanos(wall as u64),
        peak_rss_kib: rss as u64,
        cpu: Duration::from_micros(cpu as u64),
        status: status as libc::c_int,
    })
}

/// Waits (up to [`QUIET_WAIT`]) until the machine has been nearly idle for half a second
/// (under 10 % of its cores busy), so that a run does not start in the middle of someone
/// else's build. The others' CPU column shows what happened during the run anyway.
pub fn wait_for_quiet() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let window = Duration::from_millis(500);
    let deadline = Instant::now() + QUIET_WAIT;
    let mut said = false;
    while Instant::now() < deadline {
        let before = machine_busy();
        std::thread::sleep(window);
        if machine_busy().saturating_sub(before) < (window * cores) / 10 {
            return;
        }
        if !said {
            eprintln!("  (waiting for the machine to be idle)");
            said = true;
        }
    }
}

/// The CPU time the whole machine has spent busy (all cores, from `/proc/stat`: user,
/// nice, system, irq, softirq, steal), in clock ticks of 10 ms.
pub fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .enumerate()
        .filter(|(i, _)| matches!(i, 0 | 1 | 2 | 5 | 6 | 7))
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else {
        format!("{:.0} ms", secs * 1e3)
    }
}

pub fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "–".into();
    }
    let r = a.as_secs_f64() / b.as_secs_f64();
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `MAILZONE_BIN`, else `target/release/mailzone` of this workspace.
pub fn mailzone_binary() -> Result<PathBuf, String> {
    let path = match std::env::var_os("MAILZONE_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/mailzone"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: build it first with `cargo build --release -p mailzone` \
             (or point MAILZONE_BIN at a mailzone binary)",
            path.display()
        ))
    }
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// Runs `command`; `Err` with its stderr when it fails.
pub fn run_quiet(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Prints a markdown table: the first `text_columns` columns left-aligned, the others
/// (numbers) right-aligned with a `---:` rule.
pub fn print_markdown_table(header: &[&str], rows: &[Vec<String>], text_columns: usize) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = " ".repeat(w - c.chars().count());
                if i >= text_columns {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i >= text_columns {
                format!("{}:", "-".repeat(w + 1))
            } else {
                "-".repeat(w + 2)
            }
        })
        .collect();
    println!("|{}|", rule.join("|"));
    for row in rows {
        line(row);
    }
}

/// Makes an RSA-2048 private key (PKCS#8 PEM) at `path` with openssl.
pub fn openssl_rsa_key(path: &Path) -> Result<(), String> {
    let openssl = which("openssl").ok_or("openssl is needed to make the new DKIM key")?;
    run_quiet(
        Command::new(openssl)
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(path),
    )
}
