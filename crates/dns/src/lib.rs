//! mailzone-dns: every byte mailzone sends to a DNS server goes through here. Providers
//! (RFC 2136 first, HTTP APIs later) implement one trait, [`Provider`]; [`query`] asks an
//! authoritative server directly (propagation, checks).

pub mod error;
pub mod provider;
pub mod query;
pub mod rfc2136;

pub use error::{DnsError, ErrorClass};
pub use provider::{ApplyReport, Provider, ReadMethod, ZoneSnapshot};
