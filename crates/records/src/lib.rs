//! mailzone-records: the record planner. From a validated model of a mail deployment it
//! computes every DNS record each mail domain needs, and renders them as a zone file or JSON.
//!
//! Pure: no I/O, no async, no clock; time and randomness are passed in.
//! One module per standard, each citing the RFC its rules come from.

pub mod autoconfig;
pub mod caa;
pub mod calendar;
pub mod config;
pub mod diff;
pub mod dkim;
pub mod dmarc;
mod hash_index;
pub mod json;
pub mod model;
pub mod mtasts;
pub mod name;
pub mod planner;
pub mod record;
pub mod spf;
pub mod srv;
pub mod tlsa;
pub mod tlsrpt;
pub mod txt;
pub mod zonefile;
pub mod zones;

pub use model::*;
pub use name::{Name, NameError};
pub use planner::{PlanError, PlanInput, plan};
pub use record::{DesiredRecord, RData, Record, RecordPurpose, RrType};
