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

/// A process's CPU time at one instant, for [`CpuSample::since`]: each live thread's time
/// on a CPU in nanoseconds (`/proc/<pid>/task/<tid>/schedstat`, field 1), and the whole
/// process's user + system time in clock ticks (`/proc/<pid>/stat`, which also counts the
/// threads that have ended, but in 10 ms steps).
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    threads: std::collections::BTreeMap<u32, u64>,
    ticks_total: Duration,
}

impl CpuSample {
    pub(crate) fn of(pid: u32) -> CpuSample {
        CpuSample {
            threads: thread_run_times(pid),
            ticks_total: cpu_time(pid),
        }
    }

    /// The CPU time spent between `earlier` and this sample: to the nanosecond when every
    /// thread of `earlier` still runs (a server's pool of workers), else — a thread ended
    /// meanwhile and took its time with it — from the clock ticks.
    pub fn since(&self, earlier: &CpuSample) -> Duration {
        let all_still_running = !earlier.threads.is_empty()
            && earlier
                .threads
                .keys()
                .all(|tid| self.threads.contains_key(tid));
        if !all_still_running {
            return self.ticks_total.saturating_sub(earlier.ticks_total);
        }
        let nanos: u64 = self
            .threads
            .iter()
            .map(|(tid, now)| now.saturating_sub(earlier.threads.get(tid).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(nanos)
    }
}

/// Each live thread of `pid` and its time on a CPU so far, in nanoseconds; empty when the
/// kernel does not expose it (no `schedstat`) or the process is gone.
fn thread_run_times(pid: u32) -> std::collections::BTreeMap<u32, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Default::default();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
            Some((tid, nanos))
        })
        .collect()
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

    /// This thread's time on a CPU is read to the nanosecond and grows with work done.
    #[test]
    fn a_thread_run_time_is_read_to_the_nanosecond() {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let pid = std::process::id();
        let Some(&before) = thread_run_times(pid).get(&tid) else {
            eprintln!("no schedstat on this kernel: the ticks are used");
            return;
        };
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = thread_run_times(pid)[&tid];
        assert!(after - before > 1_000_000, "{before} -> {after}");
    }

    /// Between two samples: the growth of every thread, new ones counted from zero; once a
    /// thread of the first sample has ended, the clock ticks (which keep its time).
    #[test]
    fn a_cpu_sample_counts_what_was_spent_between_two_instants() {
        let sample = |threads: &[(u32, u64)], ticks_ms: u64| CpuSample {
            threads: threads.iter().copied().collect(),
            ticks_total: Duration::from_millis(ticks_ms),
        };
        let earlier = sample(&[(1, 100), (2, 200)], 10);
        let later = sample(&[(1, 150), (2, 260), (3, 40)], 10);
        assert_eq!(later.since(&earlier), Duration::from_nanos(50 + 60 + 40));
        let one_ended = sample(&[(1, 150), (3, 40)], 30);
        assert_eq!(one_ended.since(&earlier), Duration::from_millis(20));
        // No schedstat (or no process) at the first instant: the ticks.
        let unreadable = CpuSample::default();
        assert_eq!(later.since(&unreadable), Duration::from_millis(10));
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
