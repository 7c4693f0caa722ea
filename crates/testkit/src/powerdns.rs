//! A throwaway PowerDNS Authoritative server with the SQLite back end and its HTTP API, on
//! free loopback ports in a temporary directory. Killed by PID when dropped.
//!
//! What matters (PowerDNS 4.7):
//! - the database is created from the schema Debian's `pdns-backend-sqlite3` ships;
//! - zones are loaded with `pdnsutil load-zone` before the server starts, then given
//!   `SOA-EDIT-API DEFAULT`, as zones created through the API have: without it a change
//!   through the API leaves the serial where it was;
//! - `api=yes` needs `webserver=yes`; `webserver-allow-from` must admit loopback;
//! - zones holding only the kit's SOA, NS and glue are written straight into the database in
//!   one transaction (the rows `pdnsutil load-zone` writes: names without the trailing dot,
//!   the MX preference inside `content`): 1,000 zones load in well under a second instead of
//!   45 s of `pdnsutil` runs;
//! - `webserver-loglevel=normal` with `loglevel=6` logs one line per API request
//!   (`"PATCH /api/v1/… HTTP/1.1" 204 …`): [`PowerDns::api_requests`] counts what clients
//!   sent without trusting the client's own count.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{ZoneSpec, free_port, poll_until, process, tool_path, zone_file_name, zone_file_text};

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
        let (bare, with_records): (Vec<&ZoneSpec>, Vec<&ZoneSpec>) =
            zones.iter().partition(|z| z.records.trim().is_empty());
        if !bare.is_empty() {
            run(
                Command::new(tool("sqlite3")?)
                    .arg(&database)
                    .stdin(sql_file(dir.path(), &bare)?),
                "sqlite3 < zones",
            )?;
        }
        let pdnsutil = tool("pdnsutil")?;
        let config_dir = format!("--config-dir={}", dir.path().display());
        for zone in with_records {
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
        let mut command = Command::new(tool("pdns_server")?);
        command
            .arg(&config_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = process::spawn(command)?;
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

    /// The server's CPU time so far (user + system, all threads, 10 ms ticks); zero once
    /// stopped. Take the difference around an operation to see what it cost the server.
    pub fn cpu_time(&self) -> Duration {
        process::cpu_time(self.child.id())
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Every API request the server has logged so far, oldest first. The web server writes
    /// its line after answering, so wait a moment after the client's last answer.
    pub fn api_requests(&self) -> io::Result<Vec<ApiRequest>> {
        let log = std::fs::read_to_string(self.dir.path().join("pdns.log"))?;
        Ok(log.lines().filter_map(ApiRequest::parse).collect())
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
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

/// One request as the PowerDNS web server logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// `/api/v1/servers/localhost/zones/example.test.`
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The client's address and port (one per connection).
    pub peer: String,
}

impl ApiRequest {
    /// Reads `… [webserver] <uuid> 127.0.0.1:46634 "GET /path HTTP/1.1" 200 1154`.
    fn parse(line: &str) -> Option<ApiRequest> {
        let (_, rest) = line.split_once("[webserver] ")?;
        let mut words = rest.splitn(3, ' ');
        let (_uuid, peer, rest) = (words.next()?, words.next()?, words.next()?);
        let (request, after) = rest.strip_prefix('"')?.split_once('"')?;
        let mut request = request.split(' ');
        let (method, path) = (request.next()?, request.next()?);
        // A connection closed without a request (a readiness probe) is logged as `"" 400`.
        if method.is_empty() {
            return None;
        }
        let status = after.split_whitespace().next()?.parse().ok()?;
        Some(ApiRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            peer: peer.to_owned(),
        })
    }
}

/// The SQL that creates `zones` with the kit's SOA, NS and `ns1` glue (as
/// [`crate::zone_file_text`] writes them) and `SOA-EDIT-API DEFAULT`, in one transaction,
/// written to a file in `dir` and opened for reading.
fn sql_file(dir: &Path, zones: &[&ZoneSpec]) -> io::Result<std::fs::File> {
    use std::fmt::Write as _;
    let mut sql = String::from("BEGIN;\n");
    for (i, zone) in zones.iter().enumerate() {
        let id = i + 1;
        let name = zone.name.trim_end_matches('.').to_ascii_lowercase();
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(io::Error::other(format!("zone name {name:?} not loadable")));
        }
        let _ = write!(
            sql,
            "INSERT INTO domains (id, name, type) VALUES ({id}, '{name}', 'NATIVE');\n\
             INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) VALUES \
             ({id}, '{name}', 'SOA', 'ns1.{name} hostmaster.{name} 1 3600 600 604800 300', 3600, 0, 0, 1), \
             ({id}, '{name}', 'NS', 'ns1.{name}', 3600, 0, 0, 1), \
             ({id}, 'ns1.{name}', 'A', '127.0.0.1', 3600, 0, 0, 1);\n\
             INSERT INTO domainmetadata (domain_id, kind, content) VALUES ({id}, 'SOA-EDIT-API', 'DEFAULT');\n"
        );
    }
    sql.push_str("COMMIT;\n");
    let path = dir.join("zones.sql");
    std::fs::write(&path, sql)?;
    std::fs::File::open(path)
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
         webserver-loglevel=normal\n\
         guardian=no\n\
         daemon=no\n\
         disable-syslog=yes\n\
         security-poll-suffix=\n\
         loglevel=6\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_web_server_request_line() {
        let line = "Dec 05 13:10:29 [webserver] 25e70f7e-945d-4629-9bf5-2b3363d2bf0a \
                    127.0.0.1:46648 \"PATCH /api/v1/servers/localhost/zones/z1.test. HTTP/1.1\" 204 368";
        assert_eq!(
            ApiRequest::parse(line),
            Some(ApiRequest {
                method: "PATCH".into(),
                path: "/api/v1/servers/localhost/zones/z1.test.".into(),
                status: 204,
                peer: "127.0.0.1:46648".into(),
            })
        );
        assert_eq!(
            ApiRequest::parse(
                "Dec 05 13:10:28 [webserver] Listening for HTTP requests on 127.0.0.1:18081"
            ),
            None
        );
        let probe = "Dec 05 13:10:29 [webserver] 8f1e 127.0.0.1:46650 \"\" 400 92";
        assert_eq!(ApiRequest::parse(probe), None);
    }
}
