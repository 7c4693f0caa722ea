//! What the reconcile tables against one Knot share (`reconcile_table` at one size,
//! `scale_table` at several): measuring one run of a tool (wall time, peak RSS, its CPU and
//! knotd's, optionally what it sent from a tcpdump capture), the knotd of N empty zones,
//! mailzone's configs and its `apply` runs, and octoDNS's config and its three runs.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};

use crate::examples_dir;
use crate::mail_zones::{
    ByZone, NEW_RSA_SELECTOR, OLD_RSA_SELECTOR, mailzone_config, verify_samples,
};
use crate::measure::{
    load_average, machine_busy, mailzone_binary, openssl_rsa_key, ratio, run_measured, tail_of,
    wait_for_quiet, which,
};
use crate::octodns::write_zone_files;
use crate::pcap::{DnsCounts, count_client_messages};

/// How long after a tool exits knotd's CPU time is read again (trailing work).
const SETTLE: Duration = Duration::from_millis(200);
/// How long tcpdump is left running after a tool exits (libpcap's 1 s buffer timeout).
const CAPTURE_DRAIN: Duration = Duration::from_millis(1_500);

// ---------------------------------------------------------------------------------------
// Measuring one run of a tool.

/// What one run of a tool cost.
#[derive(Clone, Debug)]
pub struct Measure {
    pub wall: Duration,
    /// The tool's `ru_maxrss` (from `wait4`), KiB.
    pub peak_rss_kib: u64,
    /// The tool's own CPU time (user + system, with its children).
    pub cpu: Duration,
    /// knotd's CPU time (user + system) over the run.
    pub knot_cpu: Duration,
    /// CPU time the rest of the machine used meanwhile (the capture, the kernel's network
    /// work, and whatever else runs on the machine): how far from idle it was.
    pub others_cpu: Duration,
    /// What the tool sent, from the loopback capture.
    pub captured: Option<DnsCounts>,
}

/// tcpdump on `lo`, writing what is sent to the server's port into a pcap file.
pub struct Capture {
    child: std::process::Child,
    file: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Capture {
    pub fn start(tcpdump: &Path, port: u16, file: &Path) -> Result<Capture, String> {
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
    pub fn finish(mut self, port: u16) -> Result<DnsCounts, String> {
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
pub fn measure(
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
    let cpu_before = server.cpu_sample();
    let machine_before = machine_busy();
    let child = run_measured(program, args, out, err);
    std::thread::sleep(SETTLE);
    let knot_cpu = server.cpu_sample().since(&cpu_before);
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
// knotd and the mailzone configs.

/// The keys of the `[dnsServer.primary]` table for the knotd of the benchmark.
pub fn rfc2136_table(server: &DnsServer) -> String {
    let port = server.addr.port();
    format!(
        "kind = \"rfc2136\"\nhost = \"127.0.0.1\"\nport = {port}\nprotocol = \"tcp\"\n\
         keyName = \"{}\"\nkey = \"{}\"\nalgorithm = \"hmac-sha256\"\nttl = 300\n\
         propagationDelay = \"0s\"\nauthoritativeServers = [\"127.0.0.1:{port}\"]",
        server.key.name, server.key.secret_base64
    )
}

pub fn start_knot(zones: &[String], key: &TsigKey) -> Result<DnsServer, String> {
    let specs: Vec<ZoneSpec> = zones.iter().map(|z| ZoneSpec::empty(z)).collect();
    DnsServer::start(ServerKind::Knot, &specs, key, &ServerOptions::default())
        .map_err(|e| format!("starting knotd: {e}"))
}

/// Writes the mailzone config of `zones` managed through `server` (with the RSA key
/// `rsa_selector` from `rsa_file`) to `path`.
pub fn write_mailzone_config(
    path: &Path,
    zones: &[String],
    server: &DnsServer,
    examples: &Path,
    rsa_selector: &str,
    rsa_file: &Path,
) -> Result<(), String> {
    let text = mailzone_config(
        zones,
        &rfc2136_table(server),
        examples,
        rsa_selector,
        rsa_file,
    );
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What a table against Knot starts from.
pub struct KnotBench {
    /// The mailzone release binary.
    pub binary: PathBuf,
    /// The temporary directory: configs, state directories, outputs, captures.
    pub work_dir: tempfile::TempDir,
    /// `examples/`, absolute.
    pub examples: PathBuf,
    /// The RSA key of (c) (selector [`NEW_RSA_SELECTOR`]), made with openssl.
    pub new_rsa: PathBuf,
    /// The TSIG key of every knotd.
    pub key: TsigKey,
}

impl KnotBench {
    /// Finds the mailzone binary and knotd, and makes the work directory (`prefix`…) and
    /// the keys.
    pub fn new(prefix: &str) -> Result<KnotBench, String> {
        let binary = mailzone_binary()?;
        if !ServerKind::Knot.available() {
            return Err(
                "knotd, kdig and knsupdate are needed: apt-get install knot knot-dnsutils".into(),
            );
        }
        let work_dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| e.to_string())?;
        let examples = examples_dir()
            .canonicalize()
            .map_err(|e| format!("examples/: {e}"))?;
        let new_rsa = work_dir.path().join(format!("{NEW_RSA_SELECTOR}.pem"));
        openssl_rsa_key(&new_rsa)?;
        Ok(KnotBench {
            binary,
            work_dir,
            examples,
            new_rsa,
            key: TsigKey::generate("mailzone"),
        })
    }
}

/// The RSA key of the first configs (selector [`OLD_RSA_SELECTOR`]) in `examples/`.
pub fn old_rsa_key(examples: &Path) -> PathBuf {
    examples.join(format!("keys/{OLD_RSA_SELECTOR}.pem"))
}

// ---------------------------------------------------------------------------------------
// mailzone.

pub struct Mailzone<'a> {
    pub binary: &'a Path,
    pub server: &'a DnsServer,
    pub tcpdump: Option<&'a Path>,
    pub work: &'a Path,
    pub zones: usize,
}

/// What `mailzone apply --format json` said.
pub struct ApplyReport {
    pub messages: u64,
    pub updates: u64,
    /// Zones with exactly one UPDATE, and with more than one.
    pub zones_one_update: usize,
    pub zones_more_updates: usize,
    pub zones: usize,
}

/// `mailzone apply --quiet [--format json] --config CONFIG --state-dir STATE`.
pub fn apply_args<'a>(config: &'a Path, state: &'a Path, json: bool) -> Vec<&'a OsStr> {
    let mut args: Vec<&OsStr> = vec!["apply".as_ref(), "--quiet".as_ref()];
    if json {
        args.extend::<[&OsStr; 2]>(["--format".as_ref(), "json".as_ref()]);
    }
    args.extend([
        "--config".as_ref(),
        config.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
    ]);
    args
}

impl Mailzone<'_> {
    pub fn apply(
        &self,
        label: &str,
        config: &Path,
        state: &Path,
    ) -> Result<(Measure, ApplyReport), String> {
        let (m, text) = self.run(label, "json", &apply_args(config, state, true))?;
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
    pub fn apply_text(
        &self,
        label: &str,
        config: &Path,
        state: &Path,
    ) -> Result<(Measure, u64), String> {
        let (m, text) = self.run(label, "txt", &apply_args(config, state, false))?;
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

    /// Measures mailzone with `args` (stdout into `<label>.<extension>` in the work
    /// directory); returns what it printed.
    fn run(
        &self,
        label: &str,
        extension: &str,
        args: &[&OsStr],
    ) -> Result<(Measure, String), String> {
        let out = self.work.join(format!("{label}.{extension}"));
        let err = self.work.join(format!("{label}.stderr"));
        let m = measure(self.server, self.tcpdump, self.binary, args, &out, &err)
            .map_err(|e| format!("mailzone {label}: {e}"))?;
        let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
        Ok((m, text))
    }
}

pub fn expect_one_update_per_zone(
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

/// The run of median wall time (the later of the two middle ones for an even count).
pub fn median(mut runs: Vec<(Measure, ApplyReport)>) -> (Measure, ApplyReport) {
    runs.sort_by_key(|(m, _)| m.wall);
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// What a row shows for wall ÷ knotd CPU when knotd's CPU time did not grow.
const NO_KNOT_CPU: &str = "– (knotd < 1 tick)";

/// A run's wall time over knotd's CPU time, if knotd used any.
pub fn wall_per_knot_cpu(m: &Measure) -> Option<f64> {
    (!m.knot_cpu.is_zero()).then(|| m.wall.as_secs_f64() / m.knot_cpu.as_secs_f64())
}

/// ` [N runs: lowest–median–highest×]` of several runs' ratios, nothing for one run.
pub fn spread(ratios: &[f64]) -> String {
    if ratios.len() < 2 {
        return String::new();
    }
    let mut sorted = ratios.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    };
    format!(
        " [{} runs: {:.3}–{:.3}–{:.3}×]",
        sorted.len(),
        sorted[0],
        median,
        sorted[sorted.len() - 1]
    )
}

// ---------------------------------------------------------------------------------------
// The rows of a table.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tool {
    Mailzone,
    Octodns,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Mailzone => "mailzone",
            Tool::Octodns => "octoDNS",
        }
    }
}

/// What the operation `op` (each table has its own kind) cost `tool`.
pub struct Row<Op> {
    pub op: Op,
    pub tool: Tool,
    pub measure: Measure,
    /// Runs of which `measure` is the median (by wall time).
    pub runs: usize,
    /// mailzone's own count (`summary.dnsMessages`).
    pub own_messages: Option<u64>,
    /// mailzone's `updatesSent` summed over the zones.
    pub own_updates: Option<u64>,
}

impl<Op> Row<Op> {
    /// mailzone's row from `apply --format json`: `measure` is the median of `runs`.
    pub fn mailzone(op: Op, measure: Measure, report: &ApplyReport, runs: usize) -> Row<Op> {
        Row {
            op,
            tool: Tool::Mailzone,
            measure,
            runs,
            own_messages: Some(report.messages),
            own_updates: Some(report.updates),
        }
    }

    /// octoDNS's row: what it sent is known from a capture only.
    pub fn octodns(op: Op, measure: Measure) -> Row<Op> {
        Row {
            op,
            tool: Tool::Octodns,
            measure,
            runs: 1,
            own_messages: None,
            own_updates: None,
        }
    }

    /// The capture's count when there is one, else mailzone's own.
    fn count(&self, captured: fn(&DnsCounts) -> u64, own: Option<u64>) -> Option<u64> {
        self.measure.captured.as_ref().map(captured).or(own)
    }

    pub fn messages(&self) -> Option<u64> {
        self.count(|c| c.messages, self.own_messages)
    }

    pub fn updates(&self) -> Option<u64> {
        self.count(|c| c.updates, self.own_updates)
    }

    /// The tool's wall time over knotd's CPU time (`–` when knotd used less than a tick).
    pub fn wall_per_knot_cpu(&self) -> String {
        if self.measure.knot_cpu.is_zero() {
            NO_KNOT_CPU.into()
        } else {
            ratio(self.measure.wall, self.measure.knot_cpu)
        }
    }

    /// [`Row::wall_per_knot_cpu`] with three decimals, for a target's verdict: two would
    /// show a ratio of 1.3007 as 1.30× beside "NOT MET". The same figure as a run's in
    /// [`spread`].
    pub fn exact_wall_per_knot_cpu(&self) -> String {
        wall_per_knot_cpu(&self.measure).map_or_else(|| NO_KNOT_CPU.into(), |r| format!("{r:.3}×"))
    }

    /// `mailzone (median of 3)`, `mailzone`, `octoDNS`.
    pub fn tool_name(&self) -> String {
        match self.tool {
            Tool::Mailzone if self.runs > 1 => format!("mailzone (median of {})", self.runs),
            tool => tool.name().into(),
        }
    }
}

/// The warning under a table naming (by `label`) the rows during which other work took
/// more than 20 % of a core: their wall times are not to be trusted.
pub fn warn_disturbed<Op>(rows: &[Row<Op>], label: impl Fn(&Row<Op>) -> String) {
    let disturbed: Vec<String> = rows
        .iter()
        .filter(|r| r.measure.others_cpu > r.measure.wall.mul_f64(0.2))
        .map(label)
        .collect();
    if !disturbed.is_empty() {
        println!(
            "Warning: other work took more than 20 % of a core during {}: their wall times are \
             inflated; run again on an idle machine.",
            disturbed.join(", ")
        );
    }
}

// ---------------------------------------------------------------------------------------
// octoDNS.

/// Writes the octoDNS config (`octodns.yaml`) and one zone file per zone into `dir`.
pub fn write_octodns_config(
    dir: &Path,
    server: &DnsServer,
    zones: &[String],
    records: &ByZone,
) -> Result<PathBuf, String> {
    let zone_dir = dir.join("zones");
    std::fs::create_dir_all(&zone_dir).map_err(|e| e.to_string())?;
    write_zone_files(&zone_dir, zones, records)?;
    let provider = format!(
        "class: octodns_bind.Rfc2136Provider\nhost: 127.0.0.1\nkey_algorithm: hmac-sha256\n\
         key_name: {}\nkey_secret: {}\nport: {}",
        server.key.name,
        serde_json::to_string(&server.key.secret_base64).expect("a string"),
        server.addr.port(),
    );
    crate::octodns::write_octodns_yaml(dir, &zone_dir, "knot", &provider, zones)
}

/// octoDNS's three runs on a fresh knotd of `zones`.
pub struct OctodnsRuns {
    pub publish: Measure,
    pub noop: Measure,
    pub dkim: Measure,
}

impl OctodnsRuns {
    /// The rows of (a), (b) and (c), as the operations `publish`, `noop` and `dkim`.
    pub fn into_rows<Op>(self, publish: Op, noop: Op, dkim: Op) -> [Row<Op>; 3] {
        [
            Row::octodns(publish, self.publish),
            Row::octodns(noop, self.noop),
            Row::octodns(dkim, self.dkim),
        ]
    }
}

/// octoDNS (the venv `venv`) on a fresh knotd of `zones`: (a) publishes `records_a`
/// (checked on the sample zones), (b) runs again with nothing to change, (c) publishes
/// `records_c` (the RSA DKIM key replaced; checked likewise). With `tcpdump`, the UPDATEs
/// captured are checked too: one per zone for (a) and (c), none for (b).
#[allow(clippy::too_many_arguments)]
pub fn run_octodns(
    venv: &Path,
    tcpdump: Option<&Path>,
    work: &Path,
    zones: &[String],
    key: &TsigKey,
    records_a: &ByZone,
    records_c: &ByZone,
) -> Result<OctodnsRuns, String> {
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
    let n = zones.len() as u64;

    eprintln!("octoDNS (a): initial publish");
    let publish = run("octodns-a")?;
    check_updates("(a)", &publish, n)?;
    verify_samples(server.addr, zones, records_a, None)?;

    eprintln!("octoDNS (b): no-op");
    let noop = run("octodns-b")?;
    check_updates("(b)", &noop, 0)?;

    eprintln!("octoDNS (c): the RSA DKIM key of every zone replaced");
    write_zone_files(&dir.join("zones"), zones, records_c)?;
    let dkim = run("octodns-c")?;
    check_updates("(c)", &dkim, n)?;
    verify_samples(server.addr, zones, records_c, Some(OLD_RSA_SELECTOR))?;
    Ok(OctodnsRuns {
        publish,
        noop,
        dkim,
    })
}

// ---------------------------------------------------------------------------------------

/// The environment lines the tables start with: the binary and its version, knotd's
/// version, the cores, and the load average before and after the runs.
pub fn print_environment(binary: &Path, load_before: &str) {
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
        "{} ({}), {knotd}, {cores} cores; mailzone runs with its defaults (32 zones in flight, all of them at once at the DNS server: its maxConcurrentZones), protocol tcp.",
        binary.display(),
        version(binary, "--version"),
    );
    println!(
        "Load average (1 min) before the runs {load_before}, after them {}.",
        load_average(),
    );
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_names_the_lowest_the_median_and_the_highest_run() {
        assert_eq!(spread(&[1.4, 1.2, 1.3]), " [3 runs: 1.200–1.300–1.400×]");
        // An even count's median is the mean of the middle two.
        assert_eq!(
            spread(&[1.5, 1.1, 1.2, 1.4]),
            " [4 runs: 1.100–1.300–1.500×]"
        );
        // One run is the row itself: nothing to add.
        assert_eq!(spread(&[1.25]), "");
        assert_eq!(spread(&[]), "");
    }

    #[test]
    fn a_run_without_knotd_cpu_has_no_ratio() {
        let run = |wall_ms, knot_ms| Measure {
            wall: Duration::from_millis(wall_ms),
            peak_rss_kib: 0,
            cpu: Duration::ZERO,
            knot_cpu: Duration::from_millis(knot_ms),
            others_cpu: Duration::ZERO,
            captured: None,
        };
        assert_eq!(wall_per_knot_cpu(&run(650, 500)), Some(1.3));
        assert_eq!(wall_per_knot_cpu(&run(50, 0)), None);
    }
}
