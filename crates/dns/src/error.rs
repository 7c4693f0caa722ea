//! DNS errors, classified the way DESIGN.md §5 asks: transient ones are retried, permanent
//! ones fail at once with a message a person can act on. No message contains a secret.
//!
//! The messages of [`DnsError::Transient`] and [`DnsError::Permanent`] are complete
//! sentences that name the server themselves ("no answer from 127.0.0.1:5300 within 5s"),
//! so they are displayed as they are; `server` is there for programs (which server lags,
//! which one to retry).

use std::net::SocketAddr;
use std::time::Duration;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Timeout, connection refused or reset, SERVFAIL.
    #[error("{message}")]
    Transient { server: SocketAddr, message: String },
    /// Wrong TSIG key (BADSIG, BADKEY, BADTIME), not allowed (REFUSED, NOTAUTH), zone not
    /// served there (NOTAUTH/NOTZONE), malformed data.
    #[error("{message}")]
    Permanent { server: SocketAddr, message: String },
    /// A prerequisite failed (YXRRSET, NXRRSET, …): someone changed the zone since it was
    /// read. Nothing was changed; read again and re-plan.
    #[error("{server}: the zone changed since it was read ({rcode}); nothing was changed")]
    Conflict { server: SocketAddr, rcode: String },
}

impl DnsError {
    pub fn class(&self) -> ErrorClass {
        match self {
            DnsError::Transient { .. } | DnsError::Conflict { .. } => ErrorClass::Transient,
            DnsError::Permanent { .. } => ErrorClass::Permanent,
        }
    }

    /// The server the error comes from.
    pub fn server(&self) -> SocketAddr {
        match self {
            DnsError::Transient { server, .. }
            | DnsError::Permanent { server, .. }
            | DnsError::Conflict { server, .. } => *server,
        }
    }

    pub(crate) fn transient(server: SocketAddr, message: impl Into<String>) -> DnsError {
        DnsError::Transient {
            server,
            message: message.into(),
        }
    }

    pub(crate) fn permanent(server: SocketAddr, message: impl Into<String>) -> DnsError {
        DnsError::Permanent {
            server,
            message: message.into(),
        }
    }
}

/// A duration the way a person writes it: `5s`, `1.5s`, `250ms`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn messages_are_displayed_as_written() {
        let server: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let e = DnsError::transient(server, "no answer from 127.0.0.1:5300 within 5s");
        assert_eq!(e.to_string(), "no answer from 127.0.0.1:5300 within 5s");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert_eq!(e.server(), server);
    }
}
