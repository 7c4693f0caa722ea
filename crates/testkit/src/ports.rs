//! Free loopback ports for servers, safe when many tests (threads of one process, or the
//! separate processes of `cargo nextest`) pick ports at the same time.
//!
//! Both Knot and BIND bind their sockets with `SO_REUSEPORT`, so two servers of the same
//! user given the same port would *both* start and silently share the traffic: an
//! "address in use" error cannot be relied on. Hence:
//! - a port is taken at random below the kernel's ephemeral range (where client sockets of
//!   `kdig` and friends never land), and only if UDP and TCP binds both succeed;
//! - a process never hands out the same port twice;
//! - across processes, an exclusive `flock` on `$TMPDIR/mailzone-testkit-ports/<port>.lock`
//!   is held until the process exits, so a concurrent test process skips that port.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Ports handed out by this process, with the lock file of each (kept open: the lock lives
/// as long as the process).
struct Registry {
    handed_out: HashSet<u16>,
    locks: Vec<File>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            handed_out: HashSet::new(),
            locks: Vec::new(),
        })
    })
}

/// The range ports are drawn from: 20000 up to the start of the ephemeral range.
fn port_range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if ephemeral_low > 21000 {
        (20000, ephemeral_low - 1)
    } else {
        // An unusual ephemeral range: stay above it instead.
        (61000, 65000)
    }
}

fn random_u64() -> u64 {
    // Each RandomState is seeded differently (random per thread, then incremented).
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn lock_dir() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join("mailzone-testkit-ports");
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).ok()?;
        // Shared by every user running tests on this machine.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    }
    Some(dir)
}

/// An exclusive lock on the port's lock file, or `None` when another process holds it.
/// When the lock file cannot be created at all, the port is not locked (`Some(None)`).
fn try_lock(port: u16) -> Option<Option<File>> {
    let Some(dir) = lock_dir() else {
        return Some(None);
    };
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{port}.lock")))
    {
        Ok(file) => file,
        Err(_) => return Some(None),
    };
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 { Some(Some(file)) } else { None }
}

fn bindable(port: u16) -> bool {
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port));
    tcp.is_ok() && udp.is_ok()
}

/// A free 127.0.0.1 port, for both UDP and TCP, that no other caller of this function
/// (in this process or in another test process) has been given.
///
/// # Panics
/// When no free port is found after many attempts.
pub fn free_port() -> u16 {
    let (low, high) = port_range();
    let span = u64::from(high - low) + 1;
    let mut registry = registry()
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    for _ in 0..2000 {
        let port = low + (random_u64() % span) as u16;
        if registry.handed_out.contains(&port) {
            continue;
        }
        let Some(lock) = try_lock(port) else {
            continue;
        };
        if !bindable(port) {
            continue;
        }
        registry.handed_out.insert(port);
        registry.locks.extend(lock);
        return port;
    }
    panic!("no free loopback port found in {low}..={high}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|port| bindable(*port)));
    }
}
