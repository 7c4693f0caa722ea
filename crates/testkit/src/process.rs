//! Spawning server processes that cannot outlive the test process, reading their CPU time,
//! and probing their readiness with a raw DNS query over TCP.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` so that the kernel kills it (SIGKILL) when the test process dies.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the
/// process. Tests run on short-lived threads and a server may be shared between tests (a
/// `static OnceLock<DnsServer>`), so every fork happens on one spawner thread that lives as
/// long as the process.
pub(crate) fn spawn(mut command: Command) -> io::Result<Child> {
    // SAFETY: getpid is async-signal-safe and always succeeds.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
    // functions (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent died before prctl took effect: do not start orphaned.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("mailzone-testkit-spawner".into())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("mailzone-testkit: cannot start the spawner thread");
        sender
    });
    let (reply, result) = mpsc::channel();
    spawner
        .send((command, reply))
        .map_err(|_| io::Error::other("mailzone-testkit: spawner thread is gone"))?;
    result
        .recv()
        .map_err(|_| io::Error::other("mailzone-testkit: spawner thread is gone"))?
}

/// User + system CPU time of a process (all its threads) from `/proc/<pid>/stat`.
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The command name (field 2) is in parentheses and may contain spaces: count fields
    // from the last ')'. Field 3 (state) is then index 0; utime (14) is 11, stime (15) 12.
    let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = ticks(11) + ticks(12);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux reports 100 ticks per second on every common configuration.
    let per_second = if per_second > 0 {
        per_second as u64
    } else {
        100
    };
    Duration::from_nanos(total.saturating_mul(1_000_000_000) / per_second)
}

/// Sends one SOA query for `zone` over TCP and returns whether the server answered it
/// authoritatively with NOERROR and a non-empty answer (the zone is loaded and served).
pub(crate) fn serves_soa(addr: SocketAddr, zone: &str, timeout: Duration) -> bool {
    probe(addr, zone, timeout).unwrap_or(false)
}

fn probe(addr: SocketAddr, zone: &str, timeout: Duration) -> io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let id: u16 = 0x4d5a;
    let query = soa_query(id, zone);
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(&query);
    stream.write_all(&framed)?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length)?;
    let mut response = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut response)?;
    if response.len() < 12 {
        return Ok(false);
    }
    let response_id = u16::from_be_bytes([response[0], response[1]]);
    let is_response = response[2] & 0x80 != 0;
    let authoritative = response[2] & 0x04 != 0;
    let rcode = response[3] & 0x0f;
    let answers = u16::from_be_bytes([response[6], response[7]]);
    Ok(response_id == id && is_response && authoritative && rcode == 0 && answers > 0)
}

/// A DNS query message (no recursion desired) for the SOA of `zone`.
fn soa_query(id: u16, zone: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(12 + zone.len() + 6);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[0, 0]); // flags: standard query, RD off
    message.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1, AN=NS=AR=0
    for label in zone
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let bytes = label.as_bytes();
        message.push(bytes.len().min(63) as u8);
        message.extend_from_slice(&bytes[..bytes.len().min(63)]);
    }
    message.push(0);
    message.extend_from_slice(&[0, 6, 0, 1]); // SOA, IN
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soa_query_encodes_the_name() {
        let message = soa_query(7, "example.test.");
        assert_eq!(&message[..2], &[0, 7]);
        assert_eq!(&message[12..], b"\x07example\x04test\x00\x00\x06\x00\x01");
    }

    #[test]
    fn cpu_time_of_this_process_is_readable() {
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time(std::process::id()) > Duration::ZERO);
        assert_eq!(cpu_time(u32::MAX), Duration::ZERO);
    }
}
