//! DNS errors, classified: transient ones are retried, permanent
//! ones fail at once with a message a person can act on. No message contains a secret.
//!
//! The messages of [`DnsError::Transient`] and [`DnsError::Permanent`] are complete
//! sentences that name the server themselves ("no answer from 127.0.0.1:5300 within 5s"),
//! so they are displayed as they are; `server` is there for programs (which server lags,
//! which one to retry).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    Permanent,
}

/// A DNS response code (RFC 1035 §4.1.1; RFC 2136 §2.2 adds YXDOMAIN to NOTZONE). Shown
/// by its mnemonic (`REFUSED`); one mailzone does not name is shown as `RCODE 23`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
    YxDomain,
    YxRrset,
    NxRrset,
    NotAuth,
    NotZone,
    /// Any other value (the extended RCODEs of RFC 6891 §6.1.3, the TSIG errors, …).
    Other(u16),
}

impl Rcode {
    /// The mnemonic of RFC 1035 §4.1.1 and RFC 2136 §2.2, `None` for [`Rcode::Other`].
    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self {
            Rcode::NoError => "NOERROR",
            Rcode::FormErr => "FORMERR",
            Rcode::ServFail => "SERVFAIL",
            Rcode::NxDomain => "NXDOMAIN",
            Rcode::NotImp => "NOTIMP",
            Rcode::Refused => "REFUSED",
            Rcode::YxDomain => "YXDOMAIN",
            Rcode::YxRrset => "YXRRSET",
            Rcode::NxRrset => "NXRRSET",
            Rcode::NotAuth => "NOTAUTH",
            Rcode::NotZone => "NOTZONE",
            Rcode::Other(_) => return None,
        })
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.mnemonic(), self) {
            (Some(name), _) => f.write_str(name),
            (None, Rcode::Other(code)) => write!(f, "RCODE {code}"),
            (None, _) => unreachable!("only Other has no mnemonic"),
        }
    }
}

impl From<ResponseCode> for Rcode {
    fn from(rcode: ResponseCode) -> Rcode {
        match rcode {
            ResponseCode::NoError => Rcode::NoError,
            ResponseCode::FormErr => Rcode::FormErr,
            ResponseCode::ServFail => Rcode::ServFail,
            ResponseCode::NXDomain => Rcode::NxDomain,
            ResponseCode::NotImp => Rcode::NotImp,
            ResponseCode::Refused => Rcode::Refused,
            ResponseCode::YXDomain => Rcode::YxDomain,
            ResponseCode::YXRRSet => Rcode::YxRrset,
            ResponseCode::NXRRSet => Rcode::NxRrset,
            ResponseCode::NotAuth => Rcode::NotAuth,
            ResponseCode::NotZone => Rcode::NotZone,
            other => Rcode::Other(u16::from(other)),
        }
    }
}

/// What went wrong, for programs: callers decide on it (retry, which HTTP status, which
/// hint to add) instead of reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// No answer: a timeout, a connection refused, reset or closed before the answer.
    Unreachable,
    /// The server answered with this error RCODE (SERVFAIL is transient, the rest not).
    Rcode(Rcode),
    /// TSIG (RFC 8945): the server rejected the key (BADSIG, BADKEY, BADTIME, …), or its
    /// answer was unsigned or its signature did not verify, or the key cannot be used.
    Tsig,
    /// The server does not serve the zone: an answer without the AA flag (RFC 1035
    /// §4.1.1), or no SOA at the zone's apex.
    NotServed,
    /// The answer is malformed or does not match the question (RFC 5452 §4.3).
    Malformed,
    /// mailzone cannot build the request: a record outside the zone, a record type it
    /// does not write, a message over 65535 bytes. Nothing was sent.
    Request,
    /// An HTTP provider rejected the credentials (401, 403).
    Auth,
    /// An HTTP provider answered with this status (429 and 5xx are transient, the rest
    /// permanent).
    Http(u16),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Timeout, connection refused or reset, SERVFAIL.
    #[error("{message}")]
    Transient {
        server: SocketAddr,
        message: String,
        cause: Cause,
    },
    /// Wrong TSIG key (BADSIG, BADKEY, BADTIME), not allowed (REFUSED, NOTAUTH), zone not
    /// served there (NOTAUTH/NOTZONE), malformed data.
    #[error("{message}")]
    Permanent {
        server: SocketAddr,
        message: String,
        cause: Cause,
    },
    /// A prerequisite failed (YXRRSET, NXRRSET, …): someone changed the zone since it was
    /// read. Nothing was changed; read again and re-plan.
    #[error("{server}: the zone changed since it was read ({rcode}); nothing was changed")]
    Conflict { server: SocketAddr, rcode: Rcode },
    /// A provider without prerequisites found the zone's serial moved between the read
    /// and the write: someone changed the zone. Nothing was changed; read again.
    #[error(
        "{server}: the zone changed since it was read (serial {read} then, {now} now); nothing was changed"
    )]
    SerialMoved {
        server: SocketAddr,
        read: u32,
        now: u32,
    },
}

impl DnsError {
    pub fn class(&self) -> ErrorClass {
        match self {
            DnsError::Transient { .. }
            | DnsError::Conflict { .. }
            | DnsError::SerialMoved { .. } => ErrorClass::Transient,
            DnsError::Permanent { .. } => ErrorClass::Permanent,
        }
    }

    /// The server the error comes from.
    pub fn server(&self) -> SocketAddr {
        match self {
            DnsError::Transient { server, .. }
            | DnsError::Permanent { server, .. }
            | DnsError::Conflict { server, .. }
            | DnsError::SerialMoved { server, .. } => *server,
        }
    }

    /// What went wrong; a conflict is its RCODE (YXRRSET, NXRRSET, …).
    pub fn cause(&self) -> Cause {
        match self {
            DnsError::Transient { cause, .. } | DnsError::Permanent { cause, .. } => *cause,
            DnsError::Conflict { rcode, .. } => Cause::Rcode(*rcode),
            DnsError::SerialMoved { .. } => Cause::Http(409),
        }
    }

    /// Someone changed the zone since it was read: read again and re-plan.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            DnsError::Conflict { .. } | DnsError::SerialMoved { .. }
        )
    }

    /// The RCODE the server answered with, when that is what failed.
    pub fn rcode(&self) -> Option<Rcode> {
        match self.cause() {
            Cause::Rcode(rcode) => Some(rcode),
            _ => None,
        }
    }

    /// No answer from `server` (timeouts, closed connections): worth a retry.
    pub(crate) fn unreachable(server: SocketAddr, message: impl Into<String>) -> DnsError {
        DnsError::classified(true, server, Cause::Unreachable, message)
    }

    /// An error RCODE: SERVFAIL is worth a retry (RFC 1035 §4.1.1: "unable to process …
    /// due to a problem with the name server"), the others are not.
    pub(crate) fn answered(
        server: SocketAddr,
        rcode: Rcode,
        message: impl Into<String>,
    ) -> DnsError {
        let transient = rcode == Rcode::ServFail;
        DnsError::classified(transient, server, Cause::Rcode(rcode), message)
    }

    /// A transient (worth a retry) or a permanent error of this cause.
    fn classified(
        transient: bool,
        server: SocketAddr,
        cause: Cause,
        message: impl Into<String>,
    ) -> DnsError {
        if transient {
            DnsError::Transient {
                server,
                message: message.into(),
                cause,
            }
        } else {
            DnsError::Permanent {
                server,
                message: message.into(),
                cause,
            }
        }
    }

    /// A permanent error of this cause.
    pub(crate) fn permanent(
        server: SocketAddr,
        cause: Cause,
        message: impl Into<String>,
    ) -> DnsError {
        DnsError::classified(false, server, cause, message)
    }

    /// An HTTP provider's answer: 401/403 are [`Cause::Auth`], 429 and 5xx transient.
    pub(crate) fn http_status(
        server: SocketAddr,
        status: u16,
        message: impl Into<String>,
    ) -> DnsError {
        let message = message.into();
        match status {
            401 | 403 => DnsError::permanent(server, Cause::Auth, message),
            429 | 500..=599 => DnsError::classified(true, server, Cause::Http(status), message),
            _ => DnsError::permanent(server, Cause::Http(status), message),
        }
    }

    /// A TSIG failure: permanent until the key, the algorithm or a clock is fixed.
    pub(crate) fn tsig(server: SocketAddr, message: impl Into<String>) -> DnsError {
        DnsError::permanent(server, Cause::Tsig, message)
    }

    /// The same error with `note` added to its message (a hint).
    pub(crate) fn with_note(self, note: &str) -> DnsError {
        match &self {
            DnsError::Transient { message, .. } | DnsError::Permanent { message, .. } => {
                let message = format!("{message}{note}");
                self.reworded(message)
            }
            DnsError::Conflict { .. } | DnsError::SerialMoved { .. } => self,
        }
    }

    /// The same class and cause with another message (one that tells more of the story).
    pub(crate) fn reworded(self, message: String) -> DnsError {
        let transient = matches!(self, DnsError::Transient { .. });
        match self {
            DnsError::Transient { server, cause, .. }
            | DnsError::Permanent { server, cause, .. } => {
                DnsError::classified(transient, server, cause, message)
            }
            conflict @ (DnsError::Conflict { .. } | DnsError::SerialMoved { .. }) => conflict,
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
        let e = DnsError::unreachable(server, "no answer from 127.0.0.1:5300 within 5s");
        assert_eq!(e.to_string(), "no answer from 127.0.0.1:5300 within 5s");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert_eq!(e.server(), server);
        assert_eq!(e.cause(), Cause::Unreachable);
        assert_eq!(e.rcode(), None);
    }

    #[test]
    fn rcodes_show_their_mnemonic() {
        assert_eq!(Rcode::from(ResponseCode::Refused).to_string(), "REFUSED");
        assert_eq!(Rcode::from(ResponseCode::NXRRSet).to_string(), "NXRRSET");
        assert_eq!(Rcode::from(ResponseCode::NotZone), Rcode::NotZone);
        assert_eq!(Rcode::Other(23).to_string(), "RCODE 23");
    }

    #[test]
    fn the_rcode_decides_the_class() {
        let server: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let servfail = DnsError::answered(server, Rcode::ServFail, "failed (SERVFAIL)");
        assert_eq!(servfail.class(), ErrorClass::Transient);
        assert_eq!(servfail.rcode(), Some(Rcode::ServFail));
        let refused = DnsError::answered(server, Rcode::Refused, "refused (REFUSED)");
        assert_eq!(refused.class(), ErrorClass::Permanent);
        assert_eq!(refused.cause(), Cause::Rcode(Rcode::Refused));
        let hinted = refused.with_note(" (a hint)");
        assert_eq!(hinted.to_string(), "refused (REFUSED) (a hint)");
        assert_eq!(
            hinted.rcode(),
            Some(Rcode::Refused),
            "the note keeps the RCODE"
        );
        let conflict = DnsError::Conflict {
            server,
            rcode: Rcode::YxRrset,
        };
        assert_eq!(conflict.class(), ErrorClass::Transient);
        assert_eq!(conflict.rcode(), Some(Rcode::YxRrset));
        assert!(conflict.to_string().contains("(YXRRSET)"), "{conflict}");
    }
}
