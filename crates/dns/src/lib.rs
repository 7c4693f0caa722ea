//! mailzone-dns: every byte mailzone sends to a DNS server or DNS provider goes through
//! here. Providers (RFC 2136, the PowerDNS API, zone files, the HTTP providers of
//! `dns-update`) implement one trait, [`Provider`], and say what they can do
//! ([`Capabilities`]); [`query`] asks an
//! authoritative server directly (propagation, checks); [`convert`] maps wire records to
//! mailzone's records and back.

pub mod convert;
pub mod crash;
pub mod dns_update;
pub mod error;
pub mod paced;
pub mod powerdns;
pub mod provider;
pub mod query;
pub mod resolver;
pub mod rfc2136;
mod transport;
mod tsig;
pub mod zone_file;

pub use error::{Cause, DnsError, ErrorClass, Rcode};
pub use provider::{
    ApplyReport, Capabilities, Conditional, Provider, ReadMethod, ReadScope, ZoneSnapshot,
};
pub use query::{
    Response, lookup, query_rrset, query_rrset_counted, query_serial, query_serial_counted,
};
pub use rfc2136::{Rfc2136Config, Rfc2136Provider, Transport, TsigAlgorithm, TsigConfig};
