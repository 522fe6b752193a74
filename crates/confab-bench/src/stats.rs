//! Counters shared by all connection tasks, latency histograms, and lost/duplicate accounting.
//!
//! Lost and duplicated messages: every sender numbers its messages 0, 1, 2…; every receiver
//! keeps, per sender of its channel, a bitmap of the numbers it got. A second receipt of the same
//! number is a duplicate. After sending stops (and the drain), each receiver is expected to hold
//! every number its channel's senders sent: the sender's own copy counts too (ElizaOS, confab and
//! the Node peer all echo a message to its sender), so a message in a channel of `m` joined
//! members is expected `m` times. `lost` = expected − distinct receipts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to 10 minutes.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        Latency {
            samples: h.len(),
            mean_ms: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// State shared by every connection of a run.
pub struct Shared {
    /// The latency clock: timestamps are µs since this instant.
    pub base: Instant,
    /// Tells this run's messages from anything else on the server.
    pub run: u32,
    /// send → each receipt.
    pub latency: Mutex<Histogram<u64>>,
    /// send → `messageAck`.
    pub ack_latency: Mutex<Histogram<u64>>,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
    /// Distinct receipts of this run's messages.
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    /// `messageBroadcast`s that were not this run's (other traffic, agents).
    pub other: AtomicU64,
    pub disconnects: AtomicU64,
    /// Messages sent by each sender (final once sending stopped).
    pub sent_by: Vec<AtomicU64>,
    /// First error texts, for the report.
    pub error_samples: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(senders: usize) -> Self {
        Shared {
            base: Instant::now(),
            run: (uuid::Uuid::new_v4().as_u128() as u32) % 1_000_000,
            latency: Mutex::new(histogram()),
            ack_latency: Mutex::new(histogram()),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            other: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            sent_by: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            error_samples: Mutex::new(Vec::new()),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    pub fn record_latency(&self, sent_us: u64, now_us: u64) {
        let v = now_us.saturating_sub(sent_us).max(1);
        let _ = self.latency.lock().unwrap().record(v);
    }

    pub fn record_ack(&self, sent_us: u64, now_us: u64) {
        let v = now_us.saturating_sub(sent_us).max(1);
        let _ = self.ack_latency.lock().unwrap().record(v);
        self.acked.fetch_add(1, Ordering::Relaxed);
    }

    pub fn note_error(&self, text: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.error_samples.lock().unwrap();
        if s.len() < 5 {
            let mut t: String = text.into();
            t.truncate(200);
            s.push(t);
        }
    }

    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One receiver's record of one sender's messages.
#[derive(Debug, Default, Clone)]
pub struct SeenFrom {
    pub sender: u32,
    bits: Vec<u64>,
    pub distinct: u64,
}

/// One receiver's records, for the few senders of its channel.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub from: Vec<SeenFrom>,
}

impl Seen {
    /// Marks `(sender, seq)` received; false if it was already (a duplicate).
    pub fn mark(&mut self, sender: u32, seq: u64) -> bool {
        let i = match self.from.iter().position(|f| f.sender == sender) {
            Some(i) => i,
            None => {
                self.from.push(SeenFrom {
                    sender,
                    ..Default::default()
                });
                self.from.len() - 1
            }
        };
        let f = &mut self.from[i];
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if f.bits.len() <= word {
            f.bits.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        if f.bits[word] & mask != 0 {
            return false;
        }
        f.bits[word] |= mask;
        f.distinct += 1;
        true
    }

    /// Distinct receipts from `sender`.
    pub fn distinct(&self, sender: u32) -> u64 {
        self.from
            .iter()
            .find(|f| f.sender == sender)
            .map_or(0, |f| f.distinct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_counts_duplicates() {
        let mut s = Seen::default();
        assert!(s.mark(1, 0));
        assert!(s.mark(1, 200));
        assert!(!s.mark(1, 200));
        assert!(s.mark(2, 5));
        assert_eq!(s.distinct(1), 2);
        assert_eq!(s.distinct(2), 1);
        assert_eq!(s.distinct(3), 0);
    }

    #[test]
    fn latency_summary() {
        let mut h = histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let l = Latency::of(&h);
        assert_eq!(l.samples, 1000);
        assert!((l.p50_ms - 500.0).abs() < 1.0);
        assert!((l.max_ms - 1000.0).abs() < 1.0);
    }
}
