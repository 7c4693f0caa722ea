//! A throwaway PowerDNS Authoritative server with the SQLite back end and its HTTP API, on
//! free loopback ports in a temporary directory. Killed by PID when dropped.
//!
//! What matters (PowerDNS 4.7):
//! - the database is created from the schema Debian's `pdns-backend-sqlite3` ships;
//! - zones are loaded with `pdnsutil load-zone` before the server starts, then given
//!   `SOA-EDIT-API DEFAULT`, as zones created through the API have: without it a change
//!   through the API leaves the serial where it was;
//! - `api=yes` needs `webserver=yes`; `webserver-allow-from` must admit loopback.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{ZoneSpec, free_port, poll_until, tool_path, zone_file_name, zone_file_text};

/// The programs needed, for `require_tools`.
pub const POWERDNS_TOOLS: &[&str] = &["pdns_server", "pdnsutil", "sqlite3"];

/// Where Debian's `pdns-backend-sqlite3` puts the schema.
const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

/// A running PowerDNS.
pub struct PowerDns {
    /// DNS, UDP and TCP.
    pub dns: SocketAddr,
    /// The API's base URL, `http://127.0.0.1:PORT`.
    pub api_url: String,
    /// The `X-API-Key`.
    pub api_key: String,
    /// The zones served, without a trailing dot.
    pub zones: Vec<String>,
    child: Child,
    dir: tempfile::TempDir,
}

impl PowerDns {
    /// Starts PowerDNS serving `zones` (each as [`crate::zone_file_text`]); ready when both
    /// the DNS and the API ports answer.
    pub fn start(zones: &[ZoneSpec]) -> io::Result<PowerDns> {
        let tool = |name: &str| {
            tool_path(name).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{name} is not installed"))
            })
        };
        let dir = tempfile::Builder::new().prefix("mailzone-pdns").tempdir()?;
        let database = dir.path().join("pdns.sqlite3");
        let schema = std::fs::File::open(SCHEMA)?;
        run(
            Command::new(tool("sqlite3")?).arg(&database).stdin(schema),
            "sqlite3 < schema",
        )?;
        let dns_port = free_port();
        let api_port = free_port();
        let api_key = crate::TsigKey::generate("pdns-api").secret_base64;
        write_config(dir.path(), &database, dns_port, api_port, &api_key)?;
        let pdnsutil = tool("pdnsutil")?;
        let config_dir = format!("--config-dir={}", dir.path().display());
        for zone in zones {
            let name = zone.name.trim_end_matches('.');
            let file = dir.path().join(zone_file_name(name));
            std::fs::write(&file, zone_file_text(zone))?;
            let file = file.display().to_string();
            run(
                Command::new(&pdnsutil).args([config_dir.as_str(), "load-zone", name, &file]),
                "pdnsutil load-zone",
            )?;
            run(
                Command::new(&pdnsutil).args([
                    config_dir.as_str(),
                    "set-meta",
                    name,
                    "SOA-EDIT-API",
                    "DEFAULT",
                ]),
                "pdnsutil set-meta",
            )?;
        }
        let log = std::fs::File::create(dir.path().join("pdns.log"))?;
        let child = Command::new(tool("pdns_server")?)
            .arg(&config_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = PowerDns {
            dns: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), dns_port),
            api_url: format!("http://127.0.0.1:{api_port}"),
            api_key,
            zones: zones
                .iter()
                .map(|z| z.name.trim_end_matches('.').to_string())
                .collect(),
            child,
            dir,
        };
        let api = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), api_port);
        let ready = poll_until(Duration::from_secs(10), || {
            TcpStream::connect(api).is_ok() && TcpStream::connect(server.dns).is_ok()
        });
        if !ready || server.child.try_wait()?.is_some() {
            let log =
                std::fs::read_to_string(server.dir.path().join("pdns.log")).unwrap_or_default();
            let _ = server.child.kill();
            return Err(io::Error::other(format!(
                "PowerDNS did not start; its log:\n{log}"
            )));
        }
        Ok(server)
    }

    /// A mailzone config table `[dnsServer.<name>]` of kind `powerdns` for this server,
    /// followed by `settings` (more keys, one per line).
    pub fn dns_server_table(&self, name: &str, settings: &str) -> String {
        format!(
            "[dnsServer.{name}]\nkind = \"powerdns\"\nurl = \"{}\"\nkey = \"{}\"\n{settings}",
            self.api_url, self.api_key
        )
    }

    /// The server's directory (its config, database and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `pdnsutil` on this server's database (e.g. `["list-zone", "example.test"]`).
    pub fn pdnsutil(&self, args: &[&str]) -> io::Result<String> {
        let pdnsutil = tool_path("pdnsutil")
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "pdnsutil"))?;
        let output = Command::new(pdnsutil)
            .arg(format!("--config-dir={}", self.dir.path().display()))
            .args(args)
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "pdnsutil {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Stops the server (SIGKILL); the API and DNS ports refuse connections after.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PowerDns {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_config(
    dir: &Path,
    database: &Path,
    dns_port: u16,
    api_port: u16,
    api_key: &str,
) -> io::Result<()> {
    let config = format!(
        "launch=gsqlite3\n\
         gsqlite3-database={database}\n\
         local-address=127.0.0.1\n\
         local-port={dns_port}\n\
         socket-dir={dir}\n\
         api=yes\n\
         api-key={api_key}\n\
         webserver=yes\n\
         webserver-address=127.0.0.1\n\
         webserver-port={api_port}\n\
         webserver-allow-from=127.0.0.0/8\n\
         guardian=no\n\
         daemon=no\n\
         disable-syslog=yes\n\
         security-poll-suffix=\n\
         loglevel=4\n",
        database = database.display(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("pdns.conf"), config)
}

fn run(command: &mut Command, what: &str) -> io::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
