//! The event bus: every call event, numbered, fanned out to subscribers.
//!
//! A broadcast channel so that a slow gRPC subscriber never holds the engine
//! back: it misses events and is told how many (`EventsLagged`).

use crate::proto::{call_event, CallEvent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, watch};
use tokio_stream::Stream;

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

/// A subscriber's stream: every event until `stopping` turns true, then the
/// events already published (so a shutdown's `ended` events still go out),
/// then the end. `Err(n)`: the subscriber fell behind and missed `n` events.
pub fn until_stopped(
    rx: broadcast::Receiver<CallEvent>,
    stopping: watch::Receiver<bool>,
) -> impl Stream<Item = Result<CallEvent, u64>> {
    futures_util::stream::unfold(
        (rx, stopping, false),
        |(mut rx, mut stopping, mut stopped)| async move {
            use broadcast::error::{RecvError, TryRecvError};
            if !stopped {
                let received = tokio::select! {
                    biased;
                    r = rx.recv() => Some(r),
                    _ = stopping.wait_for(|s| *s) => None,
                };
                match received {
                    Some(Ok(e)) => return Some((Ok(e), (rx, stopping, stopped))),
                    Some(Err(RecvError::Lagged(n))) => {
                        return Some((Err(n), (rx, stopping, stopped)))
                    }
                    Some(Err(RecvError::Closed)) => return None,
                    None => stopped = true,
                }
            }
            match rx.try_recv() {
                Ok(e) => Some((Ok(e), (rx, stopping, stopped))),
                Err(TryRecvError::Lagged(n)) => Some((Err(n), (rx, stopping, stopped))),
                Err(_) => None,
            }
        },
    )
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

#[cfg(test)]
mod stream_tests {
    use super::*;
    use crate::proto::CallAnswered;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn events_published_before_stop_are_delivered_then_the_stream_ends() {
        let bus = EventBus::new(8);
        let (stop_tx, stop_rx) = watch::channel(false);
        let stream = until_stopped(bus.subscribe(), stop_rx);
        bus.publish("a", call_event::Event::Answered(CallAnswered::default()));
        bus.publish("b", call_event::Event::Answered(CallAnswered::default()));
        stop_tx.send(true).unwrap();
        let got: Vec<_> = stream.collect().await;
        let ids: Vec<_> = got.into_iter().map(|e| e.unwrap().call_id).collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
