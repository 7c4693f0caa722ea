//! Engine errors: each names the file and config key, or the zone and server, a person has
//! to look at. None carries secret material (key bytes are never formatted into a message).
//!
//! Every error has a [`FailureClass`] saying what happened (the server could not be
//! reached, refused, rejected the key, …). Tasks retry the transient classes and fail on
//! the others; the API derives its HTTP status from the class.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mailzone_dns::{Cause, DnsError, Rcode};
use mailzone_records::Name;
use mailzone_records::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{file}: cannot read the config file: {reason}")]
    ReadConfig { file: PathBuf, reason: String },
    #[error("{file}: {error}")]
    Config { file: PathBuf, error: ConfigError },
    #[error("{file}: {key}: {reason} (file: {path})")]
    ReferencedFile {
        file: PathBuf,
        key: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("state database: {0}")]
    Store(#[from] mailzone_store::StoreError),
    #[error("{0}")]
    Plan(#[from] mailzone_records::PlanError),
    #[error("zone {zone}: {error}")]
    Dns {
        zone: String,
        error: mailzone_dns::DnsError,
    },
    #[error(
        "zone {zone}: the plan deletes {deletes} of {managed} managed records, more than the {limit_percent}% safety limit; review it with `mailzone plan` and run apply with --force if it is right"
    )]
    DeleteLimit {
        zone: String,
        deletes: usize,
        managed: usize,
        limit_percent: u32,
    },
    #[error(
        "zone {zone}: {server} did not serve the change within {timeout:?}: {reason}{}",
        if *others > 0 { format!(" ({others} more servers lag)") } else { String::new() }
    )]
    Propagation {
        zone: String,
        server: SocketAddr,
        timeout: Duration,
        reason: String,
        others: usize,
    },
    /// The servers to poll for propagation could not be found (the zone's NS set, asked
    /// because the DNS server lists no `authoritativeServers`).
    #[error(
        "zone {zone}: cannot confirm propagation: its name servers were not found ({reason}); list the servers to poll in authoritativeServers, or set it to [] to only wait propagationDelay"
    )]
    NameServers { zone: String, reason: String },
    /// An ACME step failed (RFC 8555): the CA's problem document or the transport error.
    #[error("ACME {directory}: {step}: {reason}")]
    Acme {
        directory: String,
        step: &'static str,
        reason: String,
        /// Whether trying again later can help (network, rate limits, DNS not yet seen).
        transient: bool,
    },
    /// The `onKeyChange` command failed; the key change it was told about stands.
    #[error("{0}")]
    OnKeyChange(String),
    /// A DNS server's host name does not resolve (now): transient, as a name that does not
    /// resolve now may resolve later (a resolver or a registration problem).
    #[error("{file}: dnsServer.{dns_server}.host: cannot resolve {host}: {reason}")]
    Unreachable {
        file: PathBuf,
        dns_server: String,
        host: String,
        reason: String,
    },
    /// The config names something that cannot be used (a TSIG secret that cannot be read
    /// or decoded); found while using it, so not a [`EngineError::Config`] of the file.
    #[error("{0}")]
    InvalidConfig(String),
    /// Zones of one run that failed (one or several), each with its DNS server and error;
    /// the zones not listed were reconciled.
    #[error("{}", zones_message(.0))]
    Zones(Vec<ZoneFailure>),
}

/// What happened, as tasks and the API act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// No answer from a DNS server (a timeout, a connection refused or reset), or its host
    /// name does not resolve. Transient.
    Unreachable,
    /// The server answered but could not do it now (SERVFAIL), a secondary has not served
    /// the change in time, a transient ACME step. Transient.
    Unavailable,
    /// The zone changed while it was updated, again after every re-plan (YXRRSET, NXRRSET,
    /// RFC 2136 §3.2). Transient: the next run reads it again.
    Conflict,
    /// The server refused: REFUSED, NOTAUTH, NOTZONE, or it does not serve the zone (no AA
    /// flag, no SOA at the apex). Permanent until its ACL or the config changes.
    Refused,
    /// TSIG (RFC 8945): the key was rejected (BADSIG, BADKEY, BADTIME), or an answer was
    /// unsigned or did not verify. Permanent until the key, algorithm or a clock is fixed.
    Auth,
    /// The server's answer makes no sense (FORMERR, NOTIMP, another RCODE, a malformed or
    /// mismatched message). Permanent.
    Protocol,
    /// The config, a file it names, or what was asked of it is wrong (a record outside its
    /// zone, an unreadable secret, a manual domain, the delete safety limit). Permanent.
    InvalidConfig,
    /// The state database failed. Permanent (as before: a person looks at it).
    Store,
    /// Anything else that a retry will not fix (an `onKeyChange` command, a permanent
    /// ACME step).
    Other,
}

impl FailureClass {
    /// Whether trying again later can help.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureClass::Unreachable | FailureClass::Unavailable | FailureClass::Conflict
        )
    }

    /// The class of a DNS error, from its cause: never from its message.
    pub fn of_dns(error: &DnsError) -> FailureClass {
        if error.is_conflict() {
            return FailureClass::Conflict;
        }
        match error.cause() {
            Cause::Unreachable => FailureClass::Unreachable,
            Cause::Rcode(Rcode::ServFail) => FailureClass::Unavailable,
            // A split update cut short by a prerequisite (YXRRSET, NXRRSET, NXDOMAIN, …):
            // the zone changed meanwhile.
            Cause::Rcode(_) if error.class() == mailzone_dns::ErrorClass::Transient => {
                FailureClass::Conflict
            }
            Cause::Rcode(Rcode::Refused | Rcode::NotAuth | Rcode::NotZone | Rcode::NxDomain)
            | Cause::NotServed => FailureClass::Refused,
            Cause::Rcode(_) | Cause::Malformed => FailureClass::Protocol,
            Cause::Tsig | Cause::Auth => FailureClass::Auth,
            Cause::Request => FailureClass::InvalidConfig,
            Cause::Http(_) if error.class() == mailzone_dns::ErrorClass::Transient => {
                FailureClass::Unavailable
            }
            Cause::Http(_) => FailureClass::Protocol,
        }
    }

    /// A short name for logs and messages (`unreachable`, `refused`, …).
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Unreachable => "unreachable",
            FailureClass::Unavailable => "unavailable",
            FailureClass::Conflict => "conflict",
            FailureClass::Refused => "refused",
            FailureClass::Auth => "auth",
            FailureClass::Protocol => "protocol",
            FailureClass::InvalidConfig => "invalid config",
            FailureClass::Store => "store",
            FailureClass::Other => "other",
        }
    }
}

impl FailureClass {
    /// A machine-readable name for JSON answers (`unreachable`, `invalid_config`, …): the
    /// [`FailureClass::name`] in snake case.
    pub fn code(self) -> &'static str {
        match self {
            FailureClass::InvalidConfig => "invalid_config",
            other => other.name(),
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One zone of a run that failed: which zone, through which DNS server (its name in the
/// config), and why.
#[derive(Debug)]
pub struct ZoneFailure {
    pub zone: Name,
    pub dns_server: String,
    pub error: EngineError,
}

impl ZoneFailure {
    pub fn class(&self) -> FailureClass {
        self.error.class()
    }

    /// Why the zone failed: the error without its own `zone …: ` prefix.
    fn why(&self) -> String {
        let error = self.error.to_string();
        [
            format!("zone {}: ", self.zone.as_str()),
            format!("zone {}: ", self.zone),
        ]
        .iter()
        .find_map(|prefix| error.strip_prefix(prefix.as_str()))
        .map_or_else(|| error.clone(), str::to_string)
    }
}

impl fmt::Display for ZoneFailure {
    /// `zone example.org. (dnsServer primary): <why>`: the error's own `zone …: ` prefix
    /// is not repeated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "zone {} (dnsServer {}): {}",
            self.zone,
            self.dns_server,
            self.why()
        )
    }
}

/// One failure as it is; several counted, then grouped by DNS server and reason in the
/// order they came, each reason said once with the zones it stopped (a task's
/// `failureReason` names every zone and DNS server; a server that is down does not repeat
/// itself once per zone).
fn zones_message(failures: &[ZoneFailure]) -> String {
    match failures {
        [one] => one.to_string(),
        many => {
            let mut groups: Vec<((&str, String), Vec<&ZoneFailure>)> = Vec::new();
            for failure in many {
                let key = (failure.dns_server.as_str(), failure.why());
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, alike)) => alike.push(failure),
                    None => groups.push((key, vec![failure])),
                }
            }
            let each: Vec<String> = groups
                .into_iter()
                .map(|((dns_server, why), alike)| match alike.as_slice() {
                    [one] => one.to_string(),
                    zones => {
                        let names: Vec<String> = zones.iter().map(|z| z.zone.to_string()).collect();
                        format!(
                            "{} zones (dnsServer {dns_server}): {why}: {}",
                            zones.len(),
                            names.join(", ")
                        )
                    }
                })
                .collect();
            format!("{} zones failed: {}", many.len(), each.join("; "))
        }
    }
}

impl EngineError {
    /// Whether retrying later can help (task retries use this).
    pub fn is_transient(&self) -> bool {
        self.class().is_transient()
    }

    /// What happened. Several zones failed: the class of the first that failed
    /// transiently, else of the first. So a run is retried when any of its zones can
    /// still succeed (a retry redoes that zone; a permanent failure beside it is reported
    /// by each attempt, and the task fails once its attempts are used up), and fails at
    /// once only when every failure is permanent.
    pub fn class(&self) -> FailureClass {
        match self {
            EngineError::Dns { error, .. } => FailureClass::of_dns(error),
            EngineError::Propagation { .. } | EngineError::NameServers { .. } => {
                FailureClass::Unavailable
            }
            EngineError::Acme {
                transient: true, ..
            } => FailureClass::Unavailable,
            EngineError::Acme { .. } | EngineError::OnKeyChange(_) => FailureClass::Other,
            EngineError::Unreachable { .. } => FailureClass::Unreachable,
            EngineError::Store(_) => FailureClass::Store,
            EngineError::ReadConfig { .. }
            | EngineError::Config { .. }
            | EngineError::ReferencedFile { .. }
            | EngineError::Usage(_)
            | EngineError::Plan(_)
            | EngineError::DeleteLimit { .. }
            | EngineError::InvalidConfig(_) => FailureClass::InvalidConfig,
            EngineError::Zones(failures) => failures
                .iter()
                .map(ZoneFailure::class)
                .find(|c| c.is_transient())
                .or_else(|| failures.first().map(ZoneFailure::class))
                .unwrap_or(FailureClass::Other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SocketAddr {
        "127.0.0.1:5300".parse().unwrap()
    }

    fn permanent(cause: Cause) -> DnsError {
        DnsError::Permanent {
            server: server(),
            message: "m".into(),
            cause,
        }
    }

    #[test]
    fn dns_errors_are_classified_by_cause_not_text() {
        let transient = |cause| DnsError::Transient {
            server: server(),
            message: "m".into(),
            cause,
        };
        let cases = [
            (transient(Cause::Unreachable), FailureClass::Unreachable),
            (
                transient(Cause::Rcode(Rcode::ServFail)),
                FailureClass::Unavailable,
            ),
            (
                DnsError::Conflict {
                    server: server(),
                    rcode: Rcode::NxRrset,
                },
                FailureClass::Conflict,
            ),
            (
                transient(Cause::Rcode(Rcode::YxRrset)),
                FailureClass::Conflict,
            ),
            (
                transient(Cause::Rcode(Rcode::NxDomain)),
                FailureClass::Conflict,
            ),
            (
                permanent(Cause::Rcode(Rcode::Refused)),
                FailureClass::Refused,
            ),
            (
                permanent(Cause::Rcode(Rcode::NotAuth)),
                FailureClass::Refused,
            ),
            (
                permanent(Cause::Rcode(Rcode::NotZone)),
                FailureClass::Refused,
            ),
            (permanent(Cause::NotServed), FailureClass::Refused),
            (permanent(Cause::Tsig), FailureClass::Auth),
            (permanent(Cause::Auth), FailureClass::Auth),
            (transient(Cause::Http(429)), FailureClass::Unavailable),
            (permanent(Cause::Http(422)), FailureClass::Protocol),
            (
                permanent(Cause::Rcode(Rcode::FormErr)),
                FailureClass::Protocol,
            ),
            (
                permanent(Cause::Rcode(Rcode::Other(23))),
                FailureClass::Protocol,
            ),
            (permanent(Cause::Malformed), FailureClass::Protocol),
            (permanent(Cause::Request), FailureClass::InvalidConfig),
        ];
        for (error, class) in cases {
            assert_eq!(FailureClass::of_dns(&error), class, "{error:?}");
            let engine = EngineError::Dns {
                zone: "example.test.".into(),
                error: error.clone(),
            };
            assert_eq!(engine.class(), class, "{error:?}");
            assert_eq!(
                engine.is_transient(),
                error.class() == mailzone_dns::ErrorClass::Transient,
                "the class agrees with the DNS error's own: {error:?}"
            );
        }
        // The message is not read: a permanent error whose text says REFUSED but whose
        // cause is a malformed answer stays a protocol failure.
        let e = DnsError::Permanent {
            server: server(),
            message: "the server refused the update (REFUSED)".into(),
            cause: Cause::Malformed,
        };
        assert_eq!(FailureClass::of_dns(&e), FailureClass::Protocol);
    }

    #[test]
    fn other_errors_keep_their_retry_behaviour() {
        let propagation = EngineError::Propagation {
            zone: "example.test.".into(),
            server: server(),
            timeout: Duration::from_secs(2),
            reason: "serial 1".into(),
            others: 0,
        };
        assert_eq!(propagation.class(), FailureClass::Unavailable);
        assert!(propagation.is_transient());
        assert!(!EngineError::Usage("x".into()).is_transient());
        assert!(!EngineError::InvalidConfig("x".into()).is_transient());
        assert!(!EngineError::OnKeyChange("x".into()).is_transient());
        let unresolvable = EngineError::Unreachable {
            file: "mailzone.toml".into(),
            dns_server: "primary".into(),
            host: "nonexistent.invalid".into(),
            reason: "no address".into(),
        };
        assert!(unresolvable.is_transient());
        assert_eq!(
            unresolvable.to_string(),
            "mailzone.toml: dnsServer.primary.host: cannot resolve nonexistent.invalid: no address"
        );
    }

    #[test]
    fn zone_failures_name_zone_and_server_once() {
        let failure = ZoneFailure {
            zone: Name::host("example.test").unwrap(),
            dns_server: "primary".into(),
            error: EngineError::Dns {
                zone: "example.test".into(),
                error: permanent(Cause::Tsig),
            },
        };
        assert_eq!(
            failure.to_string(),
            "zone example.test. (dnsServer primary): m"
        );
        let propagation = ZoneFailure {
            zone: Name::host("example.test").unwrap(),
            dns_server: "primary".into(),
            error: EngineError::Propagation {
                zone: "example.test.".into(),
                server: server(),
                timeout: Duration::from_secs(2),
                reason: "serial 1".into(),
                others: 0,
            },
        };
        assert!(
            propagation.to_string().starts_with(
                "zone example.test. (dnsServer primary): 127.0.0.1:5300 did not serve"
            ),
            "{propagation}"
        );
        assert_eq!(failure.class(), FailureClass::Auth);
        assert_eq!(EngineError::Zones(vec![]).class(), FailureClass::Other);
    }

    #[test]
    fn zones_failing_alike_share_one_reason() {
        let failure = |zone: &str, dns_server: &str, cause: Cause| ZoneFailure {
            zone: Name::host(zone).unwrap(),
            dns_server: dns_server.into(),
            error: EngineError::Dns {
                zone: zone.into(),
                error: DnsError::Permanent {
                    server: server(),
                    message: format!("{cause:?}"),
                    cause,
                },
            },
        };
        let failures = vec![
            failure("a.test", "primary", Cause::Tsig),
            failure("b.test", "other", Cause::Tsig),
            failure("c.test", "primary", Cause::Tsig),
            failure("d.test", "primary", Cause::Tsig),
            failure("e.test", "primary", Cause::Rcode(Rcode::NotAuth)),
        ];
        assert_eq!(
            EngineError::Zones(failures).to_string(),
            "5 zones failed: 3 zones (dnsServer primary): Tsig: a.test., c.test., d.test.; \
             zone b.test. (dnsServer other): Tsig; \
             zone e.test. (dnsServer primary): Rcode(NotAuth)"
        );
    }
}
