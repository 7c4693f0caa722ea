//! A throwaway PostgreSQL cluster for the multi-instance store tests: `initdb` in a
//! temporary directory, `postgres` on a free loopback port (TCP only, trust authentication
//! for loopback, no fsync), one database `mailzone`. Killed by PID when dropped.
//!
//! PostgreSQL refuses to run as root; when the tests run as root, the cluster runs as the
//! `postgres` user that Debian's package creates (through `runuser`).

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, poll_until, tool_path};

/// A running cluster.
pub struct Postgres {
    /// `postgres://mailzone@127.0.0.1:PORT/mailzone`
    pub url: String,
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

/// The programs needed, for `require_tools`.
pub const POSTGRES_TOOLS: &[&str] = &["initdb", "postgres", "pg_isready", "createdb"];

impl Postgres {
    /// Starts a cluster and creates the database; ready when this returns.
    pub fn start() -> io::Result<Postgres> {
        let dir = tempfile::Builder::new().prefix("mailzone-pg").tempdir()?;
        let data = dir.path().join("data");
        let as_root = is_root();
        if as_root {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        }
        let tool = |name: &str| {
            tool_path(name).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{name} is not installed"))
            })
        };
        run(
            command(&tool("initdb")?, as_root)
                .arg("-D")
                .arg(&data)
                .args(["-U", "mailzone", "-A", "trust", "-E", "UTF8", "--no-sync"]),
            "initdb",
        )?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log"))?;
        if as_root {
            std::fs::set_permissions(
                dir.path().join("postgres.log"),
                std::fs::Permissions::from_mode(0o666),
            )?;
        }
        let child = command(&tool("postgres")?, as_root)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories=", "-c", "fsync=off"])
            .args(["-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let mut cluster = Postgres {
            url: format!("postgres://mailzone@127.0.0.1:{port}/mailzone"),
            port,
            child,
            dir,
        };
        let isready = tool("pg_isready")?;
        let ready = poll_until(Duration::from_secs(30), || {
            Command::new(&isready)
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success())
        });
        if !ready || cluster.child.try_wait()?.is_some() {
            return Err(io::Error::other(format!(
                "postgres did not start: {}",
                cluster.log()
            )));
        }
        run(
            Command::new(tool("createdb")?).args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "mailzone",
                "mailzone",
            ]),
            "createdb",
        )?;
        Ok(cluster)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `program`, run as the `postgres` user when we are root.
fn command(program: &PathBuf, as_root: bool) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) -> io::Result<()> {
    let out = command.output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}
