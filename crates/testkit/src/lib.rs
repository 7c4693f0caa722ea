//! Real authoritative DNS servers for mailzone's integration tests and benchmarks.
//!
//! [`DnsServer::start`] runs a real Knot DNS (`knotd`) or BIND 9 (`named`) process serving
//! the given zones, with a TSIG key (hmac-sha256) allowed to update (RFC 2136) and transfer
//! them; [`DnsServer::start_secondary`] runs a BIND secondary fed by NOTIFY + IXFR. Why real
//! servers: the publishing code must be proven against what the servers actually accept and
//! answer (UPDATE prerequisites, TSIG errors, serial handling, journals, transfers), not
//! against a mock sharing its author's assumptions. The checks use independent clients
//! too: `kdig` and `knsupdate` from knot-dnsutils ([`DnsServer::query`],
//! [`DnsServer::axfr`], [`DnsServer::nsupdate`]).
//!
//! Everything stays on the machine: servers listen on 127.0.0.1 only (UDP and TCP on one
//! port, picked by [`free_port`]), each in its own temporary directory (config, zone files,
//! journals, log) removed on drop, with recursion off and no control channel. Nothing
//! contacts the network beyond loopback.
//!
//! Made for many tests in parallel, synchronous (plain `std::process`, no async runtime):
//! - a server process is killed when its [`DnsServer`] is dropped (also on panic), and by
//!   the kernel (`PR_SET_PDEATHSIG`) when the test process dies, however it dies; a server
//!   can be shared between tests in a `static OnceLock<DnsServer>`;
//! - ports never collide between threads or between test processes (see [`free_port`]);
//! - [`DnsServer::start`] returns once every zone answers its SOA over TCP (measured on a
//!   2-core machine: Knot ≈ 12 ms, BIND ≈ 26 ms; with 1,000 zones 0.25 s and 0.35 s), or
//!   with an error carrying the tail of the server's log (a config mistake is visible).
//!
//! Tests call [`require_tools`] (or [`ServerKind::available`]) first: it returns `false`
//! (skip) when the servers are not installed, and panics instead under
//! `MAILZONE_REQUIRE_TOOLS=1`, which `scripts/test` (the installer of knot, knot-dnsutils,
//! bind9, bind9-utils, bind9-dnsutils) sets.
//!
//! ```
//! use mailzone_testkit::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneSpec};
//!
//! if !ServerKind::Knot.available() {
//!     return Ok(()); // skipped: knotd, kdig or knsupdate missing
//! }
//! let key = TsigKey::generate("mailzone");
//! let zone = ZoneSpec::new("example.test", "@ 300 IN TXT \"v=spf1 mx -all\"");
//! let server = DnsServer::start(ServerKind::Knot, &[zone], &key, &ServerOptions::default())?;
//! server.nsupdate("example.test", &["update add www.example.test. 300 A 192.0.2.1"]);
//! assert_eq!(server.query("www.example.test", "A"), ["192.0.2.1"]);
//! assert_eq!(server.serial("example.test"), 2);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Differences between the servers that tests meet: an ACL refusal is REFUSED on BIND but
//! NOTAUTH on Knot (TSIG error BADKEY when signed); BIND refuses an UPDATE adding an MX
//! whose in-zone target has no address.

mod bind;
pub mod browser;
mod client;
pub mod dnssec;
mod faults;
mod knot;
mod ports;
mod postfix;
mod postgres;
mod powerdns;
mod process;
mod replay;
mod server;
mod tools;

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;

pub use client::{Answer, axfr_at, nsupdate_at, query_at};
pub use faults::{Fault, FaultProxy, Match, Rule};
pub use ports::free_port;
pub use postfix::{Listener, ListenerTls, POSTFIX_TOOLS, Postfix, postfix_usable};
pub use postgres::{POSTGRES_TOOLS, Postgres};
pub use powerdns::{ApiRequest, POWERDNS_TOOLS, PowerDns};
pub use process::CpuSample;
pub use replay::{ProviderReplay, ReplayRequest, ReplayResponse};
pub use server::DnsServer;
pub use tools::{missing, require_tool, require_tools, test_python, test_venv_program, tool_path};

/// A TSIG key (RFC 8945) shared by the servers and the clients of a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigKey {
    /// The key name, a domain name (`mailzone`, `update-key.`).
    pub name: String,
    /// `hmac-sha256` (also understood by both servers: hmac-sha384, hmac-sha512).
    pub algorithm: String,
    /// The secret, base64.
    pub secret_base64: String,
}

impl TsigKey {
    /// A key named `name`, hmac-sha256, with a random 32-byte secret.
    pub fn generate(name: &str) -> TsigKey {
        let mut secret = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut secret))
            .expect("mailzone-testkit: cannot read /dev/urandom");
        TsigKey::new(
            name,
            &base64::engine::general_purpose::STANDARD.encode(secret),
        )
    }

    /// A key named `name`, hmac-sha256, with the given base64 secret.
    pub fn new(name: &str, secret_base64: &str) -> TsigKey {
        TsigKey {
            name: name.to_owned(),
            algorithm: "hmac-sha256".to_owned(),
            secret_base64: secret_base64.to_owned(),
        }
    }

    /// The key as `kdig -y` / `knsupdate -y` take it: `hmac-sha256:name:secret`.
    pub fn kdig_spec(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret_base64)
    }
}

/// A zone to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSpec {
    /// The zone name, e.g. `example.test` (a trailing dot is allowed).
    pub name: String,
    /// Extra zone-file lines, written after the SOA, NS and `ns1` glue the kit writes
    /// itself (see [`zone_file_text`]); names relative to the zone (`$ORIGIN` is the zone)
    /// or absolute, `$TTL` 3600.
    pub records: String,
}

impl ZoneSpec {
    /// A zone with extra zone-file lines.
    pub fn new(name: &str, records: &str) -> ZoneSpec {
        ZoneSpec {
            name: name.to_owned(),
            records: records.to_owned(),
        }
    }

    /// A zone with only the SOA, NS and `ns1` A records.
    pub fn empty(name: &str) -> ZoneSpec {
        ZoneSpec::new(name, "")
    }
}

/// Which server program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// Knot DNS 3.x, `knotd`.
    Knot,
    /// BIND 9, `named`.
    Bind,
}

impl ServerKind {
    /// Both kinds, for tests run against each.
    pub const ALL: [ServerKind; 2] = [ServerKind::Knot, ServerKind::Bind];

    /// The server's executable name.
    pub fn binary(self) -> &'static str {
        match self {
            ServerKind::Knot => "knotd",
            ServerKind::Bind => "named",
        }
    }

    /// Every tool a [`DnsServer`] of this kind uses: the server and the kdig/knsupdate
    /// clients.
    pub fn tools(self) -> [&'static str; 3] {
        [self.binary(), "kdig", "knsupdate"]
    }

    /// [`require_tools`] for [`ServerKind::tools`]: `false` means "skip the test".
    pub fn available(self) -> bool {
        require_tools(&self.tools())
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerKind::Knot => "Knot",
            ServerKind::Bind => "BIND",
        })
    }
}

/// How a primary is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Zone transfers (AXFR/IXFR) signed with the key are allowed (default `true`).
    /// `false`: BIND answers REFUSED, Knot NOTAUTH (BADKEY). Cannot be combined with a
    /// non-empty [`ServerOptions::notify`] (the secondaries transfer with the same key).
    pub allow_transfer: bool,
    /// UPDATEs signed with the key are allowed (default `true`). `false`: BIND answers
    /// REFUSED, Knot NOTAUTH.
    pub allow_update: bool,
    /// Secondaries to NOTIFY (signed with the key) after every change; transfers with the
    /// key are allowed to them.
    pub notify: Vec<SocketAddr>,
    /// Listen on this port instead of one from [`free_port`] (no retry then).
    pub port: Option<u16>,
    /// Knot only: listen on this loopback address instead of 127.0.0.1 (Knot binds any
    /// address of 127.0.0.0/8; BIND listens only on addresses of an interface), so that
    /// a primary and a secondary can share a port as a zone's name servers share 53.
    pub ip: std::net::Ipv4Addr,
    /// Knot only (default `false`): sign every zone with Knot's automatic DNSSEC signing
    /// (RFC 4033–4035; policy: ECDSA P-256 SHA-256 (algorithm 13) KSK + ZSK, NSEC, RRSIG
    /// validity 14 days). [`DnsServer::start`] then returns once every zone serves its
    /// DNSKEY; [`DnsServer::ds_records`] gives the DS of each zone's KSK, to use as a trust
    /// anchor or to publish in a parent zone. BIND refuses this option (`InvalidInput`).
    pub dnssec: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            allow_transfer: true,
            allow_update: true,
            notify: Vec::new(),
            port: None,
            ip: std::net::Ipv4Addr::LOCALHOST,
            dnssec: false,
        }
    }
}

/// The zone file the kit writes for `zone` (before any update):
///
/// ```text
/// $ORIGIN example.test.
/// $TTL 3600
/// @ 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 300
/// @ 3600 IN NS ns1.example.test.
/// ns1 3600 IN A 127.0.0.1
/// <records>
/// ```
pub fn zone_file_text(zone: &ZoneSpec) -> String {
    let origin = format!("{}.", zone.name.trim_end_matches('.'));
    let mut text = format!(
        "$ORIGIN {origin}\n$TTL 3600\n\
         @ 3600 IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 604800 300\n\
         @ 3600 IN NS ns1.{origin}\n\
         ns1 3600 IN A 127.0.0.1\n"
    );
    text.push_str(&zone.records);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The zone file's name in the server's directory.
pub(crate) fn zone_file_name(zone: &str) -> String {
    format!("{}.zone", zone.trim_end_matches('.').to_ascii_lowercase())
}

/// `[domain."<name>"]` tables for the load and scale tests: automatic Ed25519 DKIM keys, and
/// MX, SPF, DKIM, DMARC, TLS-RPT and CAA published through the DNS server `primary`.
pub fn automatic_domain_tables(names: impl IntoIterator<Item = String>) -> String {
    let mut text = String::new();
    for name in names {
        text.push_str(&format!(
            "\n[domain.\"{name}\"]\ndkimManagement = {{ automatic = {{ algorithms = [\"ed25519-sha256\"] }} }}\ndnsManagement = {{ automatic = {{ dnsServer = \"primary\", publishRecords = [\"mx\", \"spf\", \"dkim\", \"dmarc\", \"tlsRpt\", \"caa\"] }} }}\n"
        ));
    }
    text
}

/// A number from the environment variable `name` (a test's size, a soak's length), else
/// `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Calls `condition` every 20 ms until it returns `true` (→ `true`) or `timeout` passes
/// (→ `false`). For waiting on secondaries and other asynchronous effects.
pub fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_random_32_bytes() {
        let a = TsigKey::generate("mailzone");
        let b = TsigKey::generate("mailzone");
        assert_ne!(a.secret_base64, b.secret_base64);
        let secret = base64::engine::general_purpose::STANDARD
            .decode(&a.secret_base64)
            .expect("base64");
        assert_eq!(secret.len(), 32);
        assert_eq!(a.algorithm, "hmac-sha256");
        assert!(a.kdig_spec().starts_with("hmac-sha256:mailzone:"));
    }

    #[test]
    fn zone_file_starts_with_soa_ns_and_glue() {
        let text = zone_file_text(&ZoneSpec::new("example.test.", "www 300 IN A 192.0.2.1"));
        assert_eq!(
            text,
            "$ORIGIN example.test.\n$TTL 3600\n\
             @ 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 300\n\
             @ 3600 IN NS ns1.example.test.\n\
             ns1 3600 IN A 127.0.0.1\n\
             www 300 IN A 192.0.2.1\n"
        );
    }
}
