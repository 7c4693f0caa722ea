//! Named crash points, for the crash tests: with `MAILZONE_CRASH_AT=<step>` in its
//! environment, the process kills itself with SIGKILL the first time it reaches that step,
//! exactly as `kill -9` would at that instant (no destructor, no flush, no rollback). The
//! tests then run mailzone again and check that nothing was lost or left half-done.
//!
//! The steps: `ledger-intent` (a zone's additions are in the ledger, the UPDATE not sent),
//! `update-sent` (the server applied the UPDATE, the ledger does not know yet),
//! `propagation` (before the change is confirmed served), `dkim-promotion` (the old keys
//! are `Retiring`, the new ones not yet `Active`), `acme-challenge` (the DNS-01 challenge
//! records are served, the CA not told yet), `rrset-written` (a provider that writes RRset
//! by RRset has written one and not the next). The variable is read once, at the first
//! point a process reaches (every zone passes three; the environment's lock and scan
//! each time showed in a 1,000-zone profile).

/// The environment variable naming the step to crash at.
pub const CRASH_AT: &str = "MAILZONE_CRASH_AT";

/// The step `MAILZONE_CRASH_AT` names, read once per process.
fn crash_at() -> Option<&'static std::ffi::OsStr> {
    static AT: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    AT.get_or_init(|| std::env::var_os(CRASH_AT)).as_deref()
}

/// Kills the process with SIGKILL when `MAILZONE_CRASH_AT` names `step`.
pub fn point(step: &str) {
    if crash_at().is_some_and(|at| at == step) {
        tracing::warn!(step, "{CRASH_AT}: killing the process here");
        // SAFETY: kill(2) on our own pid has no memory-safety precondition.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
