use super::*;
use crate::error::{FailureClass, ZoneFailure};
use mailzone_dns::{Cause, DnsError, Rcode};

#[test]
fn backoff_doubles_and_is_capped() {
    let p = TaskPolicy {
        first_backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(300),
        ..TaskPolicy::default()
    };
    let secs: Vec<u64> = (1..=6).map(|a| p.backoff(a).as_secs()).collect();
    assert_eq!(secs, [30, 60, 120, 240, 300, 300]);
    assert_eq!(p.backoff(100).as_secs(), 300, "no overflow");
}

fn zone_failure(zone: &str, dns_server: &str, error: EngineError) -> ZoneFailure {
    ZoneFailure {
        zone: Name::host(zone).unwrap(),
        dns_server: dns_server.into(),
        error,
    }
}

fn dns(zone: &str, error: DnsError) -> EngineError {
    EngineError::Dns {
        zone: zone.to_string(),
        error,
    }
}

fn server() -> std::net::SocketAddr {
    "127.0.0.1:5300".parse().unwrap()
}

/// No answer: what a stopped server gives.
fn no_answer() -> DnsError {
    DnsError::Transient {
        server: server(),
        message: "connection refused by 127.0.0.1:5300: is the server running?".into(),
        cause: Cause::Unreachable,
    }
}

fn refused() -> DnsError {
    DnsError::Permanent {
        server: server(),
        message: "the server 127.0.0.1:5300 refused the update for zone x. (REFUSED)".into(),
        cause: Cause::Rcode(Rcode::Refused),
    }
}

#[test]
fn several_zones_failing_transiently_are_retried() {
    let policy = TaskPolicy::default();
    let both = EngineError::Zones(vec![
        zone_failure(
            "customer.test",
            "customer",
            dns("customer.test", no_answer()),
        ),
        zone_failure(
            "dkim.provider.test",
            "provider",
            dns("dkim.provider.test", no_answer()),
        ),
    ]);
    assert_eq!(both.class(), FailureClass::Unreachable);
    let TaskEnd::Retry { due_at, reason } = task_end(&policy, 1, Err(both), 1000) else {
        panic!("not retried");
    };
    assert_eq!(due_at, 1030);
    assert!(
            reason.starts_with("2 zones failed: zone customer.test. (dnsServer customer): connection refused by 127.0.0.1:5300"),
            "{reason}"
        );
    assert!(
        reason.contains("; zone dkim.provider.test. (dnsServer provider): connection refused"),
        "{reason}"
    );
    assert!(
        reason.ends_with("(attempt 1 of 8; next in 30s)"),
        "{reason}"
    );
}

#[test]
fn a_transient_zone_beside_a_permanent_one_is_retried_then_given_up() {
    let policy = TaskPolicy::default();
    let mixed = || {
        EngineError::Zones(vec![
            zone_failure("a.test", "one", dns("a.test", refused())),
            zone_failure("b.test", "two", dns("b.test", no_answer())),
        ])
    };
    assert!(mixed().is_transient());
    assert!(matches!(
        task_end(&policy, 1, Err(mixed()), 0),
        TaskEnd::Retry { .. }
    ));
    let TaskEnd::Failed { reason } = task_end(&policy, 8, Err(mixed()), 0) else {
        panic!("retried after the last attempt");
    };
    assert!(
        reason.contains("REFUSED") && reason.ends_with("(gave up after 8 attempts)"),
        "{reason}"
    );
}

#[test]
fn only_permanent_failures_fail_at_once() {
    let policy = TaskPolicy::default();
    let auth = DnsError::Permanent {
        server: server(),
        message: "the server 127.0.0.1:5300 rejected the TSIG key `k` (BADSIG)".into(),
        cause: Cause::Tsig,
    };
    let permanent = EngineError::Zones(vec![
        zone_failure("a.test", "one", dns("a.test", refused())),
        zone_failure("b.test", "two", dns("b.test", auth)),
    ]);
    assert_eq!(
        permanent.class(),
        FailureClass::Refused,
        "the first one's class"
    );
    let TaskEnd::Failed { reason } = task_end(&policy, 1, Err(permanent), 0) else {
        panic!("a permanent failure was retried");
    };
    assert!(
        reason.contains("zone a.test. (dnsServer one): the server"),
        "{reason}"
    );
    assert!(
        reason.contains("zone b.test. (dnsServer two): the server"),
        "{reason}"
    );
    // One zone: its own message, naming the zone and the DNS server.
    let one = EngineError::Zones(vec![zone_failure(
        "a.test",
        "one",
        dns("a.test", refused()),
    )]);
    assert_eq!(
        one.to_string(),
        "zone a.test. (dnsServer one): the server 127.0.0.1:5300 refused the update for zone x. (REFUSED)"
    );
}

#[test]
fn an_unresolvable_dns_server_is_retried() {
    let policy = TaskPolicy::default();
    let e = EngineError::Unreachable {
        file: "/etc/mailzone/mailzone.toml".into(),
        dns_server: "provider".into(),
        host: "nonexistent.invalid".into(),
        reason: "failed to lookup address information".into(),
    };
    assert_eq!(e.class(), FailureClass::Unreachable);
    let TaskEnd::Retry { reason, .. } = task_end(&policy, 2, Err(e), 0) else {
        panic!("not retried");
    };
    assert!(
            reason.starts_with("/etc/mailzone/mailzone.toml: dnsServer.provider.host: cannot resolve nonexistent.invalid: "),
            "{reason}"
        );
}
