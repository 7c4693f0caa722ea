//! mailzone-dns: every byte mailzone sends to a DNS server goes through here. Providers
//! (RFC 2136 first, HTTP APIs later) implement one trait, [`Provider`]; [`query`] asks an
//! authoritative server directly (propagation, checks); [`convert`] maps wire records to
//! mailzone's records and back.

pub mod convert;
pub mod dns_update;
pub mod error;
pub mod provider;
pub mod query;
pub mod resolver;
pub mod rfc2136;
mod transport;
mod tsig;

pub use error::{Cause, DnsError, ErrorClass, Rcode};
pub use provider::{ApplyReport, Provider, ReadMethod, ZoneSnapshot};
pub use query::{
    Response, lookup, query_rrset, query_rrset_counted, query_serial, query_serial_counted,
};
pub use rfc2136::{Rfc2136Config, Rfc2136Provider, Transport, TsigAlgorithm, TsigConfig};
