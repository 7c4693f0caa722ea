//! Named crash points, for the crash tests: the mechanism lives in `mailzone_dns::crash`,
//! where providers have crash points of their own (between two RRset writes).

pub use mailzone_dns::crash::{CRASH_AT, point};
