//! The service manager's notification protocol (sd_notify(3), `Type=notify` units):
//! `READY=1` once the config is loaded and every listener is bound, `RELOADING=1` …
//! `READY=1` around a SIGHUP reload, `STOPPING=1` when a stop begins, and `WATCHDOG=1`
//! every half of `WATCHDOG_USEC` while the service runs.
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd) every function here does nothing. A
//! notification that cannot be sent is logged, never fatal: the service works the same.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Tells the service manager that start-up (or a reload) is complete; `status` is shown by
/// `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager that the config is being read again; [`ready`] follows.
/// `MONOTONIC_USEC` lets `Type=notify-reload` managers match the reload to its signal.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Tells the service manager that the service is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The watchdog interval the service manager asked for (`WATCHDOG_USEC`, for this process
/// when `WATCHDOG_PID` is set), if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|timeout| !timeout.is_zero())
}

/// Sends `WATCHDOG=1` every half of the watchdog timeout until `stop` turns true: a hung
/// runtime stops the pings and the service manager restarts the service. `None` when no
/// watchdog is asked for.
pub fn spawn_watchdog(mut stop: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
    let period = watchdog_interval()? / 2;
    tracing::info!(every = ?period, "systemd watchdog enabled");
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => send(&[NotifyState::Watchdog]),
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }))
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify the service manager ($NOTIFY_SOCKET): {e}");
    }
}
