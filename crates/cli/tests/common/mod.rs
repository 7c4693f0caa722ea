//! Shared by the CLI's integration tests: the `mailzone` command run on a test directory
//! (`mailzone.toml` and `state/` in it), the DKIM stage helpers, the test venv's Python, and a
//! `mailzone serve` process; in [`ui`], the web UI over HTTP.
#![allow(dead_code)] // each test binary uses its own part

pub mod ui;

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailzone_testkit::poll_until;
use serde_json::Value;

/// The repository's `examples/` (certificates, DKIM keys).
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap()
}

/// `mailzone ARGS --config DIR/mailzone.toml --state-dir DIR/state`.
pub fn mailzone(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(args)
        .arg("--config")
        .arg(dir.join("mailzone.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .unwrap()
}

/// [`mailzone`] that must succeed; its stdout.
pub fn mailzone_ok(dir: &Path, args: &[&str]) -> String {
    let out = mailzone(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `mailzone dkim rotate --format json` as if at `at` (`--now` when `now`).
pub fn dkim_rotate(dir: &Path, at: i64, now: bool) -> Value {
    let at = at.to_string();
    let mut args = vec!["dkim", "rotate", "--format", "json", "--at", &at];
    if now {
        args.push("--now");
    }
    serde_json::from_str(&mailzone_ok(dir, &args)).unwrap()
}

/// (selector, stage) of every DKIM key, from `mailzone dkim list`, sorted.
pub fn dkim_stages(dir: &Path) -> Vec<(String, String)> {
    let keys: Vec<Value> =
        serde_json::from_str(&mailzone_ok(dir, &["dkim", "list", "--format", "json"])).unwrap();
    let mut out: Vec<(String, String)> = keys
        .iter()
        .map(|k| {
            (
                k["selector"].as_str().unwrap().to_string(),
                k["stage"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The test venv's Python with dkimpy, or `None` (skip the dkimpy part) without one; a
/// failure instead under `MAILZONE_REQUIRE_TOOLS=1`.
pub fn dkimpy_python() -> Option<PathBuf> {
    venv_python_with("dkim")
}

/// The test venv's Python (scripts/test builds it; `MAILZONE_TEST_PYTHON` names another)
/// if it can import `module`, or `None` (skip); a failure instead under
/// `MAILZONE_REQUIRE_TOOLS=1`.
pub fn venv_python_with(module: &str) -> Option<PathBuf> {
    mailzone_testkit::test_python(&[module])
}

/// Collects a child's stdout and stderr (both piped) into one string, line by line.
pub fn collect_output(child: &mut Child) -> Arc<Mutex<String>> {
    let output = Arc::new(Mutex::new(String::new()));
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                output.lock().unwrap().push_str(&(line + "\n"));
            }
        });
    }
    output
}

/// A test directory (`mailzone.toml`, `state/`) and the `mailzone` command run on it.
pub struct Run {
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn mailzone(&self, args: &[&str]) -> Output {
        mailzone(self.dir.path(), args)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        mailzone_ok(self.dir.path(), args)
    }

    pub fn rotate(&self, at: i64, now: bool) -> Value {
        dkim_rotate(self.dir.path(), at, now)
    }

    /// (selector, stage) of every key, by selector.
    pub fn stages(&self) -> Vec<(String, String)> {
        dkim_stages(self.dir.path())
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `mailzone serve` process, its output collected.
pub struct Service {
    pub child: Child,
    pub addr: SocketAddr,
    pub token: String,
    pub output: Arc<Mutex<String>>,
}

impl Service {
    /// Starts the service on `dir` (config `mailzone.toml`, state `state/`) and waits for
    /// it to listen. `token` is the admin token when this state directory had one already.
    pub fn start(dir: &Path, token: Option<&str>) -> Service {
        Service::start_with(dir, token, &[])
    }

    /// [`Service::start`] with more `serve` options (which replace the test defaults of a
    /// one-hour reconcile interval, a 1 s retry backoff and a 3 s lease).
    pub fn start_with(dir: &Path, token: Option<&str>, extra: &[&str]) -> Service {
        let port = free_port();
        let defaults = [
            ("--reconcile-interval", "1h"),
            ("--retry-backoff", "1s"),
            ("--lease", "3s"),
        ];
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(
                defaults
                    .iter()
                    .filter(|(flag, _)| !extra.contains(flag))
                    .flat_map(|(flag, value)| [*flag, *value]),
            )
            .arg("--config")
            .arg(dir.join("mailzone.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("MAILZONE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = collect_output(&mut child);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let listening = poll_until(Duration::from_secs(20), || {
            output.lock().unwrap().contains("mailzone: API on ")
        });
        assert!(listening, "serve did not start: {}", output.lock().unwrap());
        let token = match token {
            Some(t) => t.to_string(),
            None => {
                let out = output.lock().unwrap().clone();
                let start = out
                    .find("mzt_")
                    .expect("the admin token is printed at first start");
                out[start..].split_whitespace().next().unwrap().to_string()
            }
        };
        Service {
            child,
            addr,
            token,
            output,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = client()
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = client()
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn tasks(&self) -> Vec<Value> {
        let (status, tasks) = self.get("/api/v1/tasks");
        assert_eq!(status, 200, "{tasks}");
        tasks.as_array().unwrap().clone()
    }

    /// Waits until task `id` has `status`, returning it.
    pub fn wait_for_task(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let mut last = Value::Null;
        let reached = poll_until(timeout, || {
            last = self.get(&format!("/api/v1/tasks/{id}")).1;
            last["status"] == status
        });
        assert!(
            reached,
            "task {id} never became {status}: {last:#}\n{}",
            self.output()
        );
        last
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn terminate(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.output()
    }

    pub fn kill_9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    // No connection reuse: a server may close a connection after an error answer it gave
    // before reading the whole body (413), and a pooled client would send the next request
    // into it.
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}
