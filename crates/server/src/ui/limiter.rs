//! Failed sign-ins per client address: after [`MAX_FAILURES`] within [`WINDOW`], further
//! attempts from that address are refused until the oldest failure leaves the window
//! (OWASP Authentication Cheat Sheet, "Protect against automated attacks"). Kept in
//! memory: a restart forgets it, which costs an attacker a restart they cannot cause.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// Failed attempts allowed per address within [`WINDOW`].
pub const MAX_FAILURES: usize = 10;
/// The window failures are counted over, in seconds.
pub const WINDOW: i64 = 15 * 60;
/// Addresses remembered at most: past this, the address whose last failure is oldest goes.
const MAX_ADDRESSES: usize = 10_000;

/// The peer address of a connection, put in each request by the listener
/// (`into_make_service_with_connect_info`), over plain TCP and TLS alike.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The failures of each address within the window, oldest first.
#[derive(Default)]
pub struct SignInLimiter {
    failures: Mutex<HashMap<Option<IpAddr>, VecDeque<i64>>>,
}

impl SignInLimiter {
    /// `Some(seconds to wait)` when `addr` has used up its failures at `now`.
    pub fn refused(&self, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        let mut failures = self.lock();
        let times = failures.get_mut(&addr)?;
        forget_old(times, now);
        let oldest = *times.front()?;
        (times.len() >= MAX_FAILURES).then(|| (oldest + WINDOW - now).max(1))
    }

    /// Counts a failed attempt of `addr`.
    pub fn failed(&self, addr: Option<IpAddr>, now: i64) {
        let mut failures = self.lock();
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&addr) {
            let stalest = failures
                .iter()
                .min_by_key(|(_, times)| times.back().copied().unwrap_or(i64::MIN))
                .map(|(addr, _)| *addr);
            if let Some(stalest) = stalest {
                failures.remove(&stalest);
            }
        }
        let times = failures.entry(addr).or_default();
        forget_old(times, now);
        times.push_back(now);
    }

    /// Forgets the failures of `addr` after it signed in.
    pub fn succeeded(&self, addr: Option<IpAddr>) {
        self.lock().remove(&addr);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Option<IpAddr>, VecDeque<i64>>> {
        match self.failures.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn forget_old(times: &mut VecDeque<i64>, now: i64) {
    while times.front().is_some_and(|&t| t <= now - WINDOW) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_passes() {
        let limiter = SignInLimiter::default();
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        for i in 0..MAX_FAILURES as i64 {
            assert_eq!(limiter.refused(a, 1000 + i), None);
            limiter.failed(a, 1000 + i);
        }
        assert_eq!(limiter.refused(a, 1010), Some(WINDOW - 10));
        assert_eq!(
            limiter.refused(b, 1010),
            None,
            "other addresses are not affected"
        );
        assert_eq!(
            limiter.refused(a, 1000 + WINDOW),
            None,
            "the oldest failure left"
        );
        limiter.failed(a, 2000);
        limiter.succeeded(a);
        assert_eq!(limiter.refused(a, 2001), None);
    }
}
