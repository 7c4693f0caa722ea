//! Progress of long work, reported by the engine and shown by the front end (a bar per
//! zone on a terminal, plain lines otherwise, task progress in the service).

use mailzone_records::Name;

/// Receives progress events. Implementations must be cheap: they are called inline.
pub trait Progress: Send + Sync {
    fn zone_started(&self, _zone: &Name) {}
    fn step(&self, _zone: &Name, _what: &str) {}
    fn zone_finished(&self, _zone: &Name, _summary: &str) {}
    fn zone_failed(&self, _zone: &Name, _reason: &str) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}
