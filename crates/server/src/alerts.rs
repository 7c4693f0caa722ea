//! The scheduled check of `mailzone serve`: every check interval, every domain is checked
//! like `mailzone check` does; the findings go to the metrics, and each notification
//! channel of `[notify]` is told about a domain whose findings changed since it was last
//! told (compared by code, owner name and severity, in any order).
//!
//! What each channel was told is kept in the store, so a restart does not alert again.
//! A domain's first check only records it, unless it has errors or warnings. A change is
//! claimed in the store before it is sent (instances sharing a database send it once) and
//! given back when the delivery fails, so the next check sends it again.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mailzone_check::CheckOptions;
use mailzone_engine::check::DEFAULT_CONCURRENCY;
use mailzone_engine::{CheckRequest, clock};
use mailzone_records::config::DEFAULT_CHECK_INTERVAL;
use mailzone_store::Store;
use tokio::sync::watch;

use crate::notify::{self, Channel, Counts, Notification, Reported};
use crate::state::AppState;

/// The scheduled check's settings given on the command line; each overrides its config key.
#[derive(Debug, Clone, Default)]
pub struct CheckFlags {
    /// `--check-interval` (over `serve.checkInterval`).
    pub interval: Option<Duration>,
    /// `--check-nameserver` (over `serve.checkNameservers`).
    pub nameservers: Vec<SocketAddr>,
}

/// What a channel should do with a domain's findings.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The same findings as last told: nothing.
    Unchanged,
    /// A first check with no error or warning: remembered, not sent.
    Baseline,
    /// Send this change.
    Announce {
        first_check: bool,
        appeared: Vec<Reported>,
        disappeared: Vec<Reported>,
    },
}

/// Compares what a channel was told (`None`: never) with the findings now.
pub fn decide(previous: Option<&[Reported]>, current: &[Reported]) -> Decision {
    let Some(previous) = previous else {
        return if current.iter().any(Reported::needs_action) {
            Decision::Announce {
                first_check: true,
                appeared: unique(current.iter()),
                disappeared: Vec::new(),
            }
        } else {
            Decision::Baseline
        };
    };
    let before: BTreeSet<_> = previous.iter().map(Reported::identity).collect();
    let now: BTreeSet<_> = current.iter().map(Reported::identity).collect();
    let appeared = unique(current.iter().filter(|f| !before.contains(&f.identity())));
    let disappeared = unique(previous.iter().filter(|f| !now.contains(&f.identity())));
    if appeared.is_empty() && disappeared.is_empty() {
        Decision::Unchanged
    } else {
        Decision::Announce {
            first_check: false,
            appeared,
            disappeared,
        }
    }
}

/// The findings in their order, each identity once.
fn unique<'a>(findings: impl Iterator<Item = &'a Reported>) -> Vec<Reported> {
    let mut seen = BTreeSet::new();
    findings
        .filter(|f| seen.insert(f.identity()))
        .cloned()
        .collect()
}

/// The interval in force: the flag, else `serve.checkInterval`, else six hours.
pub fn interval(flags: &CheckFlags, state: &AppState) -> Duration {
    flags
        .interval
        .or(state.loaded().config.serve.check_interval)
        .unwrap_or(DEFAULT_CHECK_INTERVAL)
}

/// Checks every domain every interval (the first time one interval after the start, when
/// the start's publications are done) until `stop`.
pub async fn schedule(state: AppState, flags: CheckFlags, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = interval(&flags, &state);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        tokio::select! {
            () = run(&state) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// One scheduled check: every domain, the metrics, then each channel per domain.
pub async fn run(state: &AppState) {
    let loaded = state.loaded();
    let request = CheckRequest {
        domains: Vec::new(),
        nameservers: state.check_nameservers(&loaded),
        state_dir: state.state_dir.clone(),
        options: CheckOptions {
            live_tls: loaded.config.serve.check_connect,
            ..CheckOptions::default()
        },
        concurrency: DEFAULT_CONCURRENCY,
        store: Some(state.store.clone()),
    };
    let checked_at = clock::unix_now();
    let report = match mailzone_engine::check(&loaded, &request).await {
        Ok(report) => report,
        Err(e) => {
            tracing::error!("scheduled check failed: {e}");
            return;
        }
    };
    state.metrics.record_check(&report, checked_at);
    state.record_checks(&report, checked_at);
    state.forget_unconfigured_checks(&state.loaded());
    tracing::info!(
        domains = report.domains.len(),
        errors = report.count(mailzone_check::Severity::Error),
        warnings = report.count(mailzone_check::Severity::Warning),
        "scheduled check done"
    );
    if loaded.config.notify.is_empty() {
        return;
    }
    let channels = match notify::channels(&loaded.path, &loaded.config.notify) {
        Ok(channels) => channels,
        Err(e) => {
            tracing::error!("no notification sent, retried at the next check: {e}");
            return;
        }
    };
    for domain in &report.domains {
        let findings: Vec<Reported> = domain.findings.iter().map(Reported::from_finding).collect();
        for channel in &channels {
            let announced = announce(
                &state.store,
                channel,
                domain.domain.as_str(),
                &findings,
                checked_at,
            )
            .await;
            if let Err(e) = announced {
                state.metrics.notify_failures[metric_index(channel)]
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    domain = domain.domain.as_str(),
                    channel = channel.name(),
                    "notification not sent, retried at the next check: {e}"
                );
            }
        }
    }
}

fn metric_index(channel: &Channel) -> usize {
    match channel {
        Channel::Webhook(_) => 0,
        Channel::Smtp(_) => 1,
    }
}

/// Tells `channel` about `domain`'s findings if they changed since it was last told.
async fn announce(
    store: &Store,
    channel: &Channel,
    domain: &str,
    findings: &[Reported],
    checked_at: i64,
) -> Result<(), String> {
    let stored = store
        .announced_findings(domain, channel.name())
        .await
        .map_err(|e| e.to_string())?;
    let previous_json = stored.map(|s| s.findings);
    let previous: Option<Vec<Reported>> = match &previous_json {
        None => None,
        Some(json) => Some(serde_json::from_str(json).map_err(|e| {
            format!("what was last announced for {domain} is unreadable in the store: {e}")
        })?),
    };
    let current_json = serde_json::to_string(findings).expect("findings serialize");
    // What the channel was told moves from `expected` to `new`, unless another instance
    // moved it first (then false).
    let swap = async |expected: Option<&str>, new: Option<&str>| {
        store
            .swap_announced_findings(domain, channel.name(), expected, new, checked_at)
            .await
            .map_err(|e| e.to_string())
    };
    let decision = decide(previous.as_deref(), findings);
    if matches!(decision, Decision::Unchanged) {
        return Ok(());
    }
    // A baseline is only recorded; a change is claimed first, so that another instance
    // that saw the same change finds it claimed.
    let claimed = swap(previous_json.as_deref(), Some(&current_json)).await?;
    let Decision::Announce {
        first_check,
        appeared,
        disappeared,
    } = decision
    else {
        return Ok(());
    };
    if !claimed {
        return Ok(());
    }
    let notification = Notification {
        domain: domain.to_string(),
        checked_at: clock::rfc3339(checked_at),
        first_check,
        appeared,
        disappeared,
        counts: Counts::of(findings),
    };
    match channel.deliver(&notification).await {
        Ok(()) => {
            tracing::info!(
                domain,
                channel = channel.name(),
                appeared = notification.appeared.len(),
                disappeared = notification.disappeared.len(),
                "findings changed; notified"
            );
            Ok(())
        }
        Err(e) => {
            // Given back: the next check finds the change again and sends it.
            swap(Some(&current_json), previous_json.as_deref()).await?;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &str, severity: &str, name: &str, message: &str) -> Reported {
        Reported {
            code: code.into(),
            severity: severity.into(),
            purpose: None,
            name: name.into(),
            message: message.into(),
            seen: None,
            expected: None,
            fix: None,
        }
    }

    #[test]
    fn a_quiet_first_check_is_a_baseline_a_bad_one_is_announced_whole() {
        let info = finding("dnssec-unsigned", "info", "example.org.", "unsigned");
        assert_eq!(decide(None, &[]), Decision::Baseline);
        assert_eq!(
            decide(None, std::slice::from_ref(&info)),
            Decision::Baseline
        );
        let error = finding("record-missing", "error", "_dmarc.example.org.", "m");
        assert_eq!(
            decide(None, &[error.clone(), info.clone()]),
            Decision::Announce {
                first_check: true,
                appeared: vec![error, info],
                disappeared: vec![],
            }
        );
    }

    #[test]
    fn order_and_wording_do_not_count_code_name_and_severity_do() {
        let a = finding(
            "record-missing",
            "error",
            "_dmarc.example.org.",
            "one wording",
        );
        let b = finding("spf-lookups", "warning", "example.org.", "seven lookups");
        let reworded = finding("record-missing", "error", "_dmarc.example.org.", "another");
        assert_eq!(
            decide(Some(&[a.clone(), b.clone()]), &[b.clone(), reworded]),
            Decision::Unchanged
        );
        let graver = finding("spf-lookups", "error", "example.org.", "eleven lookups");
        assert_eq!(
            decide(Some(&[a.clone(), b.clone()]), &[a.clone(), graver.clone()]),
            Decision::Announce {
                first_check: false,
                appeared: vec![graver],
                disappeared: vec![b.clone()],
            }
        );
        assert_eq!(
            decide(Some(&[a.clone(), b.clone()]), &[]),
            Decision::Announce {
                first_check: false,
                appeared: vec![],
                disappeared: vec![a.clone(), b],
            }
        );
        // A finding reported twice is announced once.
        assert_eq!(
            decide(Some(&[]), &[a.clone(), a.clone()]),
            Decision::Announce {
                first_check: false,
                appeared: vec![a],
                disappeared: vec![],
            }
        );
    }
}
