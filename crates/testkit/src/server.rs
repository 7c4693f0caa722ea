//! [`DnsServer`]: one running authoritative server process and its temporary directory.

use std::fs::OpenOptions;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{
    Answer, ServerKind, ServerOptions, TsigKey, ZoneSpec, bind, client, free_port, knot, process,
    zone_file_name, zone_file_text,
};

/// How long a start may take: this plus [`PER_ZONE_START`] for each zone.
const START_TIMEOUT: Duration = Duration::from_secs(5);
const PER_ZONE_START: Duration = Duration::from_millis(10);
/// Attempts with a new port when the port turns out to be taken.
const PORT_ATTEMPTS: usize = 3;
/// Set to keep the temporary directories of dropped servers (their path is printed).
const KEEP_ENV: &str = "MAILZONE_TESTKIT_KEEP";

/// Log lines of a primary meaning that a zone file failed to load (Knot, BIND).
const ZONE_LOAD_FAILED: &[&str] = &[
    "zone event 'load' failed",
    "failed to load zone",
    "not loaded due to errors",
];
/// BIND's start-up banner, left out of the log tails in errors.
const LOG_NOISE: &[&str] = &[
    "built with",
    "compiled with",
    "linked to",
    "----------",
    "BIND 9 is maintained",
    "Inc. (ISC)",
    "corporation.  Support",
    "available at https://www.isc.org",
    "algorithms:",
    "TKEY mode",
    "GeoIP",
    "trust anchors",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Primary,
    Secondary,
}

/// What a primary's configuration is written from: its temporary directory, its address,
/// its zones, the TSIG key it accepts, and the options it was started with.
pub(crate) struct PrimarySetup<'a> {
    pub dir: &'a Path,
    pub addr: SocketAddr,
    pub zones: &'a [ZoneSpec],
    pub key: &'a TsigKey,
    pub options: &'a ServerOptions,
}

/// One running authoritative server process (Knot or BIND) on `127.0.0.1:<port>`.
///
/// Stopped (SIGKILL) when dropped; its temporary directory is removed then, unless
/// `MAILZONE_TESTKIT_KEEP=1` is set (the path is printed on stderr). `Send + Sync`: it can
/// be shared between tests in a `static OnceLock<DnsServer>`.
#[derive(Debug)]
pub struct DnsServer {
    /// Which program runs.
    pub kind: ServerKind,
    /// Where it listens, UDP and TCP.
    pub addr: SocketAddr,
    /// The TSIG key allowed to update and transfer (as configured by the options).
    pub key: TsigKey,
    /// The zones served, as given (without a trailing dot).
    pub zones: Vec<String>,
    role: Role,
    dir: Option<TempDir>,
    config: PathBuf,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

impl DnsServer {
    /// A mailzone config table `[dnsServer.<name>]` that publishes to this server over TCP
    /// with its TSIG key inline, followed by `settings` (more keys of the table, one per
    /// line, e.g. the propagation timings).
    pub fn dns_server_table(&self, name: &str, settings: &str) -> String {
        format!(
            "[dnsServer.{name}]\nkind = \"rfc2136\"\nhost = \"{host}\"\nport = {port}\nprotocol = \"tcp\"\nkeyName = \"{key_name}\"\nkey = \"{secret}\"\n{settings}",
            host = self.addr.ip(),
            port = self.addr.port(),
            key_name = self.key.name,
            secret = self.key.secret_base64,
        )
    }

    /// Starts a primary of `kind` serving `zones` (each written as [`crate::zone_file_text`])
    /// with `key`, and returns once every zone answers its SOA over TCP. On a port
    /// conflict it retries with another port (up to 3 times, unless `options.port` is
    /// set). The error of a failed start carries the tail of the server's log.
    pub fn start(
        kind: ServerKind,
        zones: &[ZoneSpec],
        key: &TsigKey,
        options: &ServerOptions,
    ) -> io::Result<DnsServer> {
        if !options.allow_transfer && !options.notify.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "allow_transfer = false with secondaries to notify: they transfer with the same key",
            ));
        }
        if zones.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a primary needs at least one zone",
            ));
        }
        if options.dnssec && kind != ServerKind::Knot {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ServerOptions::dnssec (automatic signing) is implemented for Knot only",
            ));
        }
        let names = zones
            .iter()
            .map(|zone| zone.name.trim_end_matches('.').to_owned())
            .collect();
        let server = Self::launch(
            kind,
            Role::Primary,
            names,
            key,
            (options.ip, options.port),
            |dir, addr| {
                for zone in zones {
                    std::fs::write(dir.join(zone_file_name(&zone.name)), zone_file_text(zone))?;
                }
                let primary = PrimarySetup {
                    dir,
                    addr,
                    zones,
                    key,
                    options,
                };
                match kind {
                    ServerKind::Knot => knot::write_config(&primary),
                    ServerKind::Bind => bind::write_primary_config(&primary),
                }
            },
        )?;
        if options.dnssec {
            server.wait_signed(START_TIMEOUT)?;
        }
        Ok(server)
    }

    /// Waits until every zone serves a DNSKEY RRset (signing done).
    fn wait_signed(&self, timeout: Duration) -> io::Result<()> {
        for zone in &self.zones {
            let signed = crate::poll_until(timeout, || {
                self.try_query(zone, "DNSKEY")
                    .is_ok_and(|answer| answer.rcode == "NOERROR" && !answer.rdata.is_empty())
            });
            if !signed {
                return Err(self.stop_failed(
                    io::ErrorKind::TimedOut,
                    &format!(" did not sign {zone} within {timeout:?}"),
                    || self.log_tail(40),
                ));
            }
        }
        Ok(())
    }

    /// The DS records (RFC 4034 §5) of `zone`'s KSK, SHA-256 digest, in zone-file form
    /// (`example.test. DS 35583 13 2 313f…`), as `keymgr <zone> ds` prints them: what a
    /// parent zone publishes, and a trust anchor for validating the zone. Knot servers
    /// started with [`ServerOptions::dnssec`] only.
    pub fn ds_records(&self, zone: &str) -> io::Result<Vec<String>> {
        if self.kind != ServerKind::Knot {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "DS records come from Knot's key store (keymgr): Knot only",
            ));
        }
        let output = Command::new(crate::tools::tool_or_err("keymgr")?)
            .arg("-c")
            .arg(&self.config)
            .arg(zone.trim_end_matches('.'))
            .arg("ds")
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        // keymgr prints one line per KSK and digest type (2 = SHA-256, 4 = SHA-384).
        let lines: Vec<String> = stdout
            .lines()
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.len() == 6 && fields[1] == "DS" && fields[4] == "2"
            })
            .map(str::to_owned)
            .collect();
        if !output.status.success() || lines.is_empty() {
            return Err(io::Error::other(format!(
                "keymgr {zone} ds: {}{}",
                stdout,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(lines)
    }

    /// Replaces what the server serves for `zone` with `zone_text`, verbatim (its own
    /// `$ORIGIN`, SOA and NS; e.g. a signed zone from [`DnsServer::axfr`] with one record
    /// altered, to serve a broken signature), and restarts the server. Updates made so far
    /// are dropped: its journal is removed (on Knot, the one journal of every zone). A server signing with
    /// [`ServerOptions::dnssec`] would sign the text again: serve altered signed data from
    /// a server started without it.
    pub fn replace_zone(&self, zone: &str, zone_text: &str) -> io::Result<()> {
        self.stop();
        std::fs::write(self.dir().join(zone_file_name(zone)), zone_text)?;
        // Knot keeps its journals in `<database.storage>/journal`, BIND next to the zone
        // file as `<file>.jnl`.
        let journal = self.dir().join("db").join("journal");
        if journal.exists() {
            std::fs::remove_dir_all(&journal)?;
        }
        let bind_journal = self.dir().join(format!("{}.jnl", zone_file_name(zone)));
        if bind_journal.exists() {
            std::fs::remove_file(&bind_journal)?;
        }
        self.restart()
    }

    /// A BIND secondary for `zones` on a free port, transferring from `primary_addr` with
    /// `key` (IXFR/AXFR on NOTIFY); returns once it serves every zone (first transfer
    /// done). For the primary to NOTIFY it, its port must be known before the primary
    /// starts: use [`DnsServer::start_secondary_on`] with a port from
    /// [`crate::free_port`] that is also in the primary's [`ServerOptions::notify`].
    pub fn start_secondary(
        primary_addr: SocketAddr,
        zones: &[&str],
        key: &TsigKey,
    ) -> io::Result<DnsServer> {
        Self::secondary(None, primary_addr, zones, key)
    }

    /// [`DnsServer::start_secondary`] on a given port.
    pub fn start_secondary_on(
        port: u16,
        primary_addr: SocketAddr,
        zones: &[&str],
        key: &TsigKey,
    ) -> io::Result<DnsServer> {
        Self::secondary(Some(port), primary_addr, zones, key)
    }

    fn secondary(
        port: Option<u16>,
        primary_addr: SocketAddr,
        zones: &[&str],
        key: &TsigKey,
    ) -> io::Result<DnsServer> {
        let names: Vec<String> = zones
            .iter()
            .map(|zone| zone.trim_end_matches('.').to_owned())
            .collect();
        if names.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a secondary needs at least one zone",
            ));
        }
        let config_names = names.clone();
        Self::launch(
            ServerKind::Bind,
            Role::Secondary,
            names,
            key,
            (Ipv4Addr::LOCALHOST, port),
            |dir, addr| bind::write_secondary_config(dir, addr, primary_addr, &config_names, key),
        )
    }

    fn launch(
        kind: ServerKind,
        role: Role,
        zones: Vec<String>,
        key: &TsigKey,
        (ip, fixed_port): (Ipv4Addr, Option<u16>),
        write: impl Fn(&Path, SocketAddr) -> io::Result<PathBuf>,
    ) -> io::Result<DnsServer> {
        let attempts = if fixed_port.is_some() {
            1
        } else {
            PORT_ATTEMPTS
        };
        let mut last_error = None;
        for _ in 0..attempts {
            let port = fixed_port.unwrap_or_else(free_port);
            let addr = SocketAddr::from((ip, port));
            let prefix = format!("mailzone-testkit-{}-", kind.binary());
            let dir = tempfile::Builder::new().prefix(&prefix).tempdir()?;
            let config = write(dir.path(), addr)?;
            let log = dir.path().join("server.log");
            let server = DnsServer {
                kind,
                addr,
                key: key.clone(),
                zones: zones.clone(),
                role,
                dir: Some(dir),
                config,
                log,
                child: Mutex::new(None),
            };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no attempt made")))
    }

    fn command(&self) -> io::Result<Command> {
        match self.kind {
            ServerKind::Knot => knot::command(&self.config),
            ServerKind::Bind => bind::command(&self.config),
        }
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Spawns the process (log appended to `server.log`) and waits until every zone
    /// answers its SOA, the process exits, or the deadline passes.
    fn spawn_and_wait(&self) -> io::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let log_len_before = log.metadata().map(|meta| meta.len()).unwrap_or(0);
        let mut command = self.command()?;
        command
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let started = Instant::now();
        *self.child() = Some(process::spawn(command)?);

        let deadline = started + START_TIMEOUT + PER_ZONE_START * self.zones.len() as u32;
        let mut pending: std::collections::VecDeque<&str> =
            self.zones.iter().map(String::as_str).collect();
        // How far the log has been searched for load failures: each pass reads only what
        // was appended since (Knot logs ≈ 3 lines per zone: 25 MB for 100,000 zones).
        let mut log_scanned = log_len_before;
        loop {
            let exited = {
                let mut child = self.child();
                match child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => {
                        child.take();
                        Some(status.to_string())
                    }
                    Some(Ok(None)) => None,
                    Some(Err(error)) => Some(error.to_string()),
                    None => Some("not running".to_owned()),
                }
            };
            if let Some(status) = exited {
                return Err(self.start_error(&status, log_len_before));
            }
            // Probe in order and stop at the first zone not served yet: a pass over every
            // pending zone while the server is still loading would make the wait quadratic
            // in the number of zones (one TCP query each).
            while let Some(zone) = pending.front() {
                if !process::serves_soa(self.addr, zone, Duration::from_secs(1)) {
                    break;
                }
                pending.pop_front();
            }
            if pending.is_empty() {
                return Ok(());
            }
            // A primary whose zone file does not load keeps running without the zone:
            // fail now rather than at the deadline.
            if self.role == Role::Primary {
                let log = self.new_log_lines(&mut log_scanned);
                if let Some(line) = log
                    .lines()
                    .find(|line| ZONE_LOAD_FAILED.iter().any(|p| line.contains(p)))
                {
                    return Err(self.stop_failed(
                        io::ErrorKind::InvalidData,
                        &format!(": a zone did not load ({line})"),
                        || self.log_since(log_len_before, 40),
                    ));
                }
            }
            if Instant::now() >= deadline {
                // The zones after the first pending one were not probed: say which one
                // and how many are left.
                let first = pending.front().copied().unwrap_or_default();
                return Err(self.stop_failed(
                    io::ErrorKind::TimedOut,
                    &format!(
                        " did not serve {first} within {:?} ({} zones after it not probed yet)",
                        deadline - started,
                        pending.len() - 1,
                    ),
                    || self.log_since(log_len_before, 40),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn start_error(&self, status: &str, log_from: u64) -> io::Error {
        let tail = self.log_since(log_from, 40);
        let lower = tail.to_ascii_lowercase();
        let in_use = lower.contains("address already in use")
            || lower.contains("address in use")
            || lower.contains("unable to listen on any configured interfaces");
        let kind = if in_use {
            io::ErrorKind::AddrInUse
        } else {
            io::ErrorKind::Other
        };
        io::Error::new(
            kind,
            format!(
                "{} on {} exited during start ({status}); config {}; log:\n{tail}",
                self.binary_name(),
                self.addr,
                self.config.display()
            ),
        )
    }

    /// Stops the server and says why: `what` follows "<binary> on <address>", then the
    /// log, read once the process is gone.
    fn stop_failed(
        &self,
        kind: io::ErrorKind,
        what: &str,
        log: impl FnOnce() -> String,
    ) -> io::Error {
        self.stop();
        let log = log();
        io::Error::new(
            kind,
            format!("{} on {}{what}; log:\n{log}", self.binary_name(), self.addr),
        )
    }

    fn binary_name(&self) -> String {
        match self.role {
            Role::Primary => format!("{} ({})", self.kind.binary(), self.kind),
            Role::Secondary => format!("{} (BIND secondary)", self.kind.binary()),
        }
    }

    /// The complete lines the log gained since byte `*from`; moves `*from` past them (a
    /// line still being written is read on the next call).
    fn new_log_lines(&self, from: &mut u64) -> String {
        use std::io::{Read as _, Seek as _};
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.log)
            && file.seek(io::SeekFrom::Start(*from)).is_ok()
        {
            let _ = file.read_to_end(&mut bytes);
        }
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        *from += complete as u64;
        String::from_utf8_lossy(&bytes[..complete]).into_owned()
    }

    /// The last `lines` lines of the log written since byte `from`, without BIND's
    /// start-up banner.
    fn log_since(&self, from: u64, lines: usize) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(from).unwrap_or(0).min(text.len());
        let text = String::from_utf8_lossy(&text[start..]);
        let kept: Vec<&str> = text
            .lines()
            .filter(|line| !LOG_NOISE.iter().any(|noise| line.contains(noise)))
            .collect();
        kept[kept.len().saturating_sub(lines)..].join("\n")
    }

    /// The last `lines` lines of the server's log (stdout and stderr, all starts).
    pub fn log_tail(&self, lines: usize) -> String {
        self.log_since(0, lines)
    }

    /// The server's temporary directory (config, zone files, journals, `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(TempDir::path)
            .expect("the directory lives as long as the server")
    }

    /// The configuration file (`knot.conf` or `named.conf`).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Kills the process (SIGKILL) and waits for it; does nothing when it is not running.
    /// Both servers have committed every answered UPDATE to their journal, so a
    /// [`DnsServer::restart`] serves the same data.
    pub fn stop(&self) {
        if let Some(mut child) = self.child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if running and starts it again on the same port with the same
    /// directory: zone files and journals are kept, so dynamic updates survive.
    pub fn restart(&self) -> io::Result<()> {
        self.stop();
        let mut attempt = 0;
        loop {
            match self.spawn_and_wait() {
                Err(error) if error.kind() == io::ErrorKind::AddrInUse && attempt < 3 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                result => return result,
            }
        }
    }

    /// Whether the process is alive.
    pub fn is_running(&self) -> bool {
        let mut child = self.child();
        match child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) => {
                child.take();
                false
            }
            _ => false,
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        if self.is_running() {
            self.child().as_ref().map(Child::id)
        } else {
            None
        }
    }

    /// The server's CPU time so far (user + system, all threads, from `/proc/<pid>/stat`,
    /// in clock ticks of `sysconf(_SC_CLK_TCK)`, normally 10 ms); zero when not running.
    /// Take the difference around an operation to measure what it cost the server.
    pub fn cpu_time(&self) -> Duration {
        self.pid().map(process::cpu_time).unwrap_or_default()
    }

    /// The server's CPU time at this instant, to the nanosecond where the kernel tells it:
    /// `later.since(&earlier)` is what an operation between the two cost the server.
    pub fn cpu_sample(&self) -> process::CpuSample {
        self.pid().map(process::CpuSample::of).unwrap_or_default()
    }

    /// Queries `name` `rtype` with kdig over TCP; `Err` when the server does not answer.
    pub fn try_query(&self, name: &str, rtype: &str) -> io::Result<Answer> {
        client::query_at(self.addr, name, rtype)
    }

    /// The RDATA of each answer record for `name` `rtype`, in presentation form as kdig
    /// prints it, sorted: `"v=spf1 mx -all"` (with the quotes) for TXT,
    /// `10 mail.example.test.` for MX. Empty for NXDOMAIN and NODATA.
    ///
    /// # Panics
    /// When the server does not answer or answers another response code (REFUSED for a
    /// zone it does not serve, SERVFAIL).
    pub fn query(&self, name: &str, rtype: &str) -> Vec<String> {
        let answer = self
            .try_query(name, rtype)
            .unwrap_or_else(|error| panic!("{} at {}: {error}", self.kind, self.addr));
        match answer.rcode.as_str() {
            "NOERROR" | "NXDOMAIN" => answer.rdata,
            other => panic!(
                "{} at {} answered {other} to {name} {rtype}",
                self.kind, self.addr
            ),
        }
    }

    /// The serial of `zone`'s SOA as served now.
    ///
    /// # Panics
    /// As [`DnsServer::query`], or when there is no SOA.
    pub fn serial(&self, zone: &str) -> u32 {
        let soa = self.query(zone, "SOA");
        soa.first()
            .and_then(|rdata| rdata.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or_else(|| panic!("{} at {}: no SOA for {zone}: {soa:?}", self.kind, self.addr))
    }

    /// Polls until `zone`'s serial is at least `serial` (→ `true`) or `timeout` passes.
    /// For secondaries; an unanswered query counts as "not yet".
    pub fn wait_for_serial(&self, zone: &str, serial: u32, timeout: Duration) -> bool {
        crate::poll_until(timeout, || {
            self.try_query(zone, "SOA").is_ok_and(|answer| {
                answer.rcode == "NOERROR"
                    && answer.rdata.first().is_some_and(|rdata| {
                        rdata
                            .split_whitespace()
                            .nth(2)
                            .and_then(|s| s.parse::<u32>().ok())
                            .is_some_and(|served| served.wrapping_sub(serial) < 1 << 31)
                    })
            })
        })
    }

    /// The whole zone by AXFR with the TSIG key: one line per record,
    /// `owner TTL class type rdata`, as [`crate::axfr_at`] describes. `Err` when the
    /// transfer is refused (REFUSED on BIND, NOTAUTH/BADKEY on Knot) or fails.
    pub fn try_axfr(&self, zone: &str) -> io::Result<Vec<String>> {
        client::axfr_at(self.addr, zone, &self.key)
    }

    /// [`DnsServer::try_axfr`], panicking with kdig's message on failure.
    pub fn axfr(&self, zone: &str) -> Vec<String> {
        self.try_axfr(zone)
            .unwrap_or_else(|error| panic!("{} at {}: {error}", self.kind, self.addr))
    }

    /// Applies an RFC 2136 update with `knsupdate` signed with the key, as someone else
    /// editing the zone would. `commands` are knsupdate lines such as
    /// `update add www.example.test. 300 A 192.0.2.1` (relative names are relative to the
    /// zone); `send` is appended.
    ///
    /// # Panics
    /// With knsupdate's output when the update is not applied.
    pub fn nsupdate(&self, zone: &str, commands: &[&str]) {
        if let Err(error) = self.try_nsupdate(zone, commands) {
            panic!("{} at {}: {error}", self.kind, self.addr);
        }
    }

    /// [`DnsServer::nsupdate`] returning the failure instead (e.g. to check that
    /// `allow_update: false` refuses updates).
    pub fn try_nsupdate(&self, zone: &str, commands: &[&str]) -> io::Result<String> {
        client::nsupdate_at(self.addr, zone, &self.key, commands)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
        let keep = std::env::var(KEEP_ENV).is_ok_and(|value| value == "1");
        if keep && let Some(dir) = self.dir.take() {
            let path = dir.keep();
            eprintln!(
                "mailzone-testkit: kept {} {} directory {}",
                self.kind,
                self.addr,
                path.display()
            );
        }
    }
}
