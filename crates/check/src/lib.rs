//! mailzone-check: verify what DNS serves and explain every problem.
//!
//! Each standard has its module with its checks and its finding codes; [`run`] runs them
//! all for a domain. Checks ask DNS only through a [`lookup::Lookup`].

pub mod codes;
pub mod connect;
pub mod context;
pub mod dns_lookup;
pub mod finding;
pub mod lookup;
pub mod run;
pub mod support;
#[cfg(test)]
pub(crate) mod testutil;

pub mod autoconfig;
pub mod caa;
pub mod dkim;
pub mod dmarc;
pub mod dnssec;
pub mod live_tls;
pub mod mtasts;
pub mod mx;
pub mod ptr;
pub mod records;
pub mod spf;
pub mod srv;
pub mod tlsa;
pub mod zone;

pub use context::{CheckOptions, DomainContext};
pub use dns_lookup::DnsLookup;
pub use finding::{Finding, Severity};
pub use lookup::{Answer, Lookup, LookupError, Rcode};
