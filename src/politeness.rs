//! Per-host politeness across all feeds: at most N requests in flight to a host, and a minimum interval between them.
//!
//! The interval runs both from the start of the previous request and from its
//! end, so the server sees at least that much quiet between two requests
//! however long connecting and answering took.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

#[derive(Debug)]
struct HostSlot {
    permits: Arc<Semaphore>,
    /// When the next request to this host may start. Never held across an await.
    next_start: Mutex<Instant>,
}

/// Shared by every poll of a process; cheap to clone.
#[derive(Debug, Clone)]
pub struct HostGate {
    per_host: usize,
    min_interval: Duration,
    hosts: Arc<Mutex<HashMap<String, Arc<HostSlot>>>>,
}

/// Held while a request to the host is in flight.
#[derive(Debug)]
pub struct HostPass {
    _permit: OwnedSemaphorePermit,
    slot: Arc<HostSlot>,
    min_interval: Duration,
}

impl Drop for HostPass {
    fn drop(&mut self) {
        let mut next_start = self
            .slot
            .next_start
            .lock()
            .expect("host slot lock poisoned");
        *next_start = (*next_start).max(Instant::now() + self.min_interval);
    }
}

impl HostGate {
    pub fn new(per_host: usize, min_interval: Duration) -> HostGate {
        HostGate {
            per_host: per_host.max(1),
            min_interval,
            hosts: Arc::default(),
        }
    }

    fn slot(&self, host: &str) -> Arc<HostSlot> {
        let mut hosts = self.hosts.lock().expect("host table lock poisoned");
        hosts
            .entry(host.to_ascii_lowercase())
            .or_insert_with(|| {
                Arc::new(HostSlot {
                    permits: Arc::new(Semaphore::new(self.per_host)),
                    next_start: Mutex::new(Instant::now()),
                })
            })
            .clone()
    }

    /// Makes the next request to `host` wait a full interval from now: another
    /// instance may have just spoken to it, and this process cannot know when.
    pub fn quiet_from_now(&self, host: &str) {
        let slot = self.slot(host);
        let mut next_start = slot.next_start.lock().expect("host slot lock poisoned");
        *next_start = (*next_start).max(Instant::now() + self.min_interval);
    }

    /// Waits until a request to `host` may start, and reserves its place.
    pub async fn enter(&self, host: &str) -> HostPass {
        let slot = self.slot(host);
        let permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("host semaphore is never closed");
        // Reserve a start time under the lock, then wait for it outside.
        let start = {
            let mut next_start = slot.next_start.lock().expect("host slot lock poisoned");
            let start = (*next_start).max(Instant::now());
            *next_start = start + self.min_interval;
            start
        };
        tokio::time::sleep_until(start).await;
        HostPass {
            _permit: permit,
            slot,
            min_interval: self.min_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_to_one_host_but_not_across_hosts() {
        let gate = HostGate::new(1, Duration::from_secs(1));
        let start = Instant::now();
        drop(gate.enter("a.example").await);
        drop(gate.enter("A.example").await);
        drop(gate.enter("a.example").await);
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
        drop(gate.enter("b.example").await);
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_taken_over_from_another_instance_waits_an_interval() {
        let gate = HostGate::new(1, Duration::from_secs(2));
        let start = Instant::now();
        gate.quiet_from_now("a.example");
        drop(gate.enter("a.example").await);
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn limits_requests_in_flight() {
        let gate = HostGate::new(1, Duration::ZERO);
        let first = gate.enter("a.example").await;
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter("a.example").await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
    }
}
