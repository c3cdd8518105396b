//! The event bus: every call event, numbered, fanned out to subscribers.
//!
//! A broadcast channel so that a slow gRPC subscriber never holds the engine
//! back: it misses events and is told how many (`EventsLagged`).

use crate::proto::{call_event, CallEvent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<CallEvent>,
    sequence: Arc<AtomicU64>,
}

impl EventBus {
    /// `capacity` events are kept for subscribers that fall behind.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self {
            tx,
            sequence: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn publish(&self, call_id: &str, event: call_event::Event) {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        // No subscriber is not an error: events are fire-and-forget.
        let _ = self.tx.send(CallEvent {
            sequence,
            call_id: call_id.to_owned(),
            timestamp_ms,
            event: Some(event),
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CallAnswered;

    #[tokio::test]
    async fn events_are_numbered_in_order() {
        let bus = EventBus::new(8);
        let mut rx = bus.subscribe();
        for _ in 0..3 {
            bus.publish("c1", call_event::Event::Answered(CallAnswered::default()));
        }
        for expected in 1..=3 {
            let e = rx.recv().await.unwrap();
            assert_eq!(e.sequence, expected);
            assert_eq!(e.call_id, "c1");
        }
    }
}
