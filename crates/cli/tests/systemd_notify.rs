//! `mailzone serve` under the service manager's notification protocol (sd_notify(3)), as
//! systemd runs a `Type=notify` unit: the test plays systemd's part with a Unix datagram
//! socket in `$NOTIFY_SOCKET` and a `$WATCHDOG_USEC`, and reads what the real binary sends:
//! READY=1 only once the port answers (never when it cannot listen), WATCHDOG=1 at half the
//! timeout, RELOADING=1 then READY=1 on SIGHUP (a broken config too), STOPPING=1 on SIGTERM.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, collect_output, free_port};

/// A watchdog timeout of 600 ms: pings are due every 300 ms.
const WATCHDOG_USEC: u64 = 600_000;

const CONFIG: &str = r#"
[server]
hostname = "mail.example.test"
ipv4 = ["192.0.2.10"]

[domain."example.test"]
"#;

/// The service manager's end: a datagram socket in a test directory.
struct Manager {
    socket: UnixDatagram,
    dir: tempfile::TempDir,
}

impl Manager {
    fn new() -> Manager {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mailzone.toml"), CONFIG).unwrap();
        let socket = UnixDatagram::bind(dir.path().join("notify.sock")).unwrap();
        Manager { socket, dir }
    }

    /// `mailzone serve` on `addr`, told where to notify and how often to ping; configured
    /// through the environment, like `packaging/systemd/mailzone.service` does.
    fn serve(&self, addr: SocketAddr) -> Child {
        Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .arg("serve")
            .env("MAILZONE_LISTEN", addr.to_string())
            .env("MAILZONE_CONFIG", self.dir.path().join("mailzone.toml"))
            .env("MAILZONE_STATE_DIR", self.dir.path().join("state"))
            .env("NOTIFY_SOCKET", self.dir.path().join("notify.sock"))
            .env("WATCHDOG_USEC", WATCHDOG_USEC.to_string())
            .env_remove("WATCHDOG_PID")
            .env("MAILZONE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The next datagram, or `None` after `timeout`.
    fn receive(&self, timeout: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }

    /// Datagrams until one has the line `wanted`; that one and the `WATCHDOG=1` pings seen
    /// before it. Fails after `timeout`.
    fn receive_until(&self, wanted: &str, timeout: Duration) -> (String, usize) {
        let deadline = Instant::now() + timeout;
        let mut pings = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self
                .receive(left.max(Duration::from_millis(1)))
                .unwrap_or_else(|| panic!("no {wanted} within {timeout:?}"));
            if has_line(&message, wanted) {
                return (message, pings);
            }
            if has_line(&message, "WATCHDOG=1") {
                pings += 1;
            }
        }
    }
}

fn has_line(message: &str, line: &str) -> bool {
    message.lines().any(|l| l == line)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ready_after_listening_then_watchdog_reload_and_stopping() {
    let manager = Manager::new();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = manager.serve(addr);
    let output = collect_output(&mut child);

    let ready = manager
        .receive(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no READY=1: {}", output.lock().unwrap()));
    // The first message is READY=1 and, the moment it arrives, the port already answers:
    // one connection attempt, no retry.
    assert!(has_line(&ready, "READY=1"), "{ready:?}");
    assert!(
        ready.contains(&format!("STATUS=API on http://{addr}")),
        "{ready:?}"
    );
    TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .expect("READY=1 came before the port was bound");
    let health = client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // Pings every half of WATCHDOG_USEC: about 6 in 1.8 s; a busy loop would send hundreds.
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1800) {
        if let Some(message) = manager.receive(Duration::from_millis(100)) {
            assert_eq!(message.trim_end(), "WATCHDOG=1", "only pings meanwhile");
            pings += 1;
        }
    }
    assert!((4..=9).contains(&pings), "{pings} WATCHDOG=1 in 1.8 s");

    // SIGHUP: RELOADING=1 (with the monotonic time of the reload), then READY=1 again.
    signal(&child, "HUP");
    let (reloading, _) = manager.receive_until("RELOADING=1", Duration::from_secs(10));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    manager.receive_until("READY=1", Duration::from_secs(10));

    // A broken config on reload: the running one is kept, and systemd hears READY=1 again
    // (without it the unit would stay "reloading").
    std::fs::write(manager.dir.path().join("mailzone.toml"), "[server\n").unwrap();
    signal(&child, "HUP");
    manager.receive_until("RELOADING=1", Duration::from_secs(10));
    manager.receive_until("READY=1", Duration::from_secs(10));
    // The log line and the notification travel different ways (stderr through a reader
    // thread, a datagram): the line may come a moment after READY=1.
    let logged = mailzone_testkit::poll_until(Duration::from_secs(5), || {
        output.lock().unwrap().contains("config not reloaded")
    });
    assert!(logged, "{}", output.lock().unwrap());
    let health = client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // SIGTERM: STOPPING=1, then a clean exit.
    signal(&child, "TERM");
    manager.receive_until("STOPPING=1", Duration::from_secs(10));
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {}", output.lock().unwrap());
}

#[test]
fn no_ready_when_the_port_is_taken() {
    let manager = Manager::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut child = manager.serve(taken.local_addr().unwrap());
    let output = collect_output(&mut child);
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        output.lock().unwrap().contains("cannot listen on"),
        "{}",
        output.lock().unwrap()
    );
    // Everything the process ever sent is queued on the socket by now.
    let sent = manager.receive(Duration::from_millis(200));
    assert!(sent.is_none(), "sent {sent:?} although it never listened");
}

#[test]
fn no_notification_socket_changes_nothing() {
    // Outside systemd (no NOTIFY_SOCKET) serve starts as before: the shared helper's start.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mailzone.toml"), CONFIG).unwrap();
    let service = common::Service::start(Path::new(dir.path()), None);
    let out = service.terminate();
    assert!(!out.contains("notify"), "{out}");
}
