//! A provider whose requests are spaced out: at most one call every `interval`, for back
//! ends with a request quota (HTTP APIs answer a burst with 429 and a wait).

use std::time::Duration;

use async_trait::async_trait;
use mailzone_records::diff::ChangeSet;
use mailzone_records::{Name, RrType};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::provider::Capabilities;
use crate::{ApplyReport, DnsError, Provider, ZoneSnapshot};

/// Wraps a provider so that its calls start at least `interval` apart.
pub struct Paced {
    inner: Box<dyn Provider>,
    interval: Duration,
    next: Mutex<Instant>,
}

impl Paced {
    pub fn new(inner: Box<dyn Provider>, interval: Duration) -> Paced {
        Paced {
            inner,
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this call's turn: each caller takes the next free slot, in order.
    async fn turn(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[async_trait]
impl Provider for Paced {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn read_zone(
        &self,
        zone: &Name,
        wanted: &[(Name, RrType)],
    ) -> Result<ZoneSnapshot, DnsError> {
        self.turn().await;
        self.inner.read_zone(zone, wanted).await
    }

    async fn serial(&self, zone: &Name) -> Result<u32, DnsError> {
        self.turn().await;
        self.inner.serial(zone).await
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<ApplyReport, DnsError> {
        self.turn().await;
        self.inner.apply(changes).await
    }

    fn messages_sent(&self) -> u64 {
        self.inner.messages_sent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_by_the_interval() {
        let paced = Paced {
            inner: Box::new(crate::zone_file::ZoneFileProvider::new(
                crate::zone_file::ZoneFileConfig {
                    path: "/nonexistent/{zone}".into(),
                    layout: crate::zone_file::Layout::Zone,
                    zone_file: None,
                    reload: None,
                    timeout: Duration::from_secs(1),
                },
            )),
            interval: Duration::from_millis(500),
            next: Mutex::new(Instant::now()),
        };
        let start = Instant::now();
        for _ in 0..3 {
            paced.turn().await;
        }
        // Three calls: at 0, 0.5 s and 1 s.
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }
}
