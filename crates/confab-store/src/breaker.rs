//! The state machine of the storage circuit breaker, without clocks or I/O (the
//! [`GuardedStore`](crate::GuardedStore) drives it and runs the probes).
//!
//! * **Closed**: calls go through. The first dependency failure (see
//!   [`StoreError::is_dependency`](crate::StoreError::is_dependency)) opens it.
//! * **Open**: every call fails at once with the cause; nothing waits behind a dead pool.
//!   When the retry delay has passed, one probe may start.
//! * **Probing** (half-open): the probe is in flight; calls still fail at once. Its success
//!   closes the breaker; its failure opens it again with the delay doubled (up to a maximum).
//!
//! Ordinary successes never close an open breaker: a full SQLite disk still answers reads, so
//! only the probe (a real write for SQLite) decides that storage is back.

use std::time::{Duration, Instant};

/// Retry delays between probes while storage is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(250),
            max: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    Probing,
}

/// Why calls are refused: the failure that opened the breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub cause: String,
    pub since: Instant,
}

#[derive(Debug)]
pub struct Breaker {
    backoff: Backoff,
    state: BreakerState,
    outage: Option<Outage>,
    /// Open: when the next probe may start.
    next_probe: Instant,
    /// The delay before the next probe after this one fails.
    delay: Duration,
    /// The last time a call succeeded while closed.
    last_ok: Option<Instant>,
}

impl Breaker {
    pub fn new(backoff: Backoff) -> Self {
        Breaker {
            backoff,
            state: BreakerState::Closed,
            outage: None,
            next_probe: Instant::now(),
            delay: backoff.first,
            last_ok: None,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// The current outage, if the breaker is not closed.
    pub fn outage(&self) -> Option<&Outage> {
        self.outage.as_ref()
    }

    /// When a call last succeeded while the breaker was closed.
    pub fn last_ok(&self) -> Option<Instant> {
        self.last_ok
    }

    /// May a call go through? `Err` carries the outage to report instead.
    pub fn admit(&self) -> Result<(), Outage> {
        match &self.outage {
            None => Ok(()),
            Some(outage) => Err(outage.clone()),
        }
    }

    /// A call succeeded.
    pub fn success(&mut self, now: Instant) {
        if self.state == BreakerState::Closed {
            self.last_ok = Some(now);
        }
    }

    /// A call failed because of the dependency. Returns true if this opened the breaker (the
    /// caller then starts probing).
    pub fn failure(&mut self, cause: &str, now: Instant) -> bool {
        if self.state != BreakerState::Closed {
            return false;
        }
        self.state = BreakerState::Open;
        self.outage = Some(Outage {
            cause: cause.to_owned(),
            since: now,
        });
        self.delay = self.backoff.first;
        self.next_probe = now + self.delay;
        true
    }

    /// When the next probe may start (`None` unless open).
    pub fn next_probe(&self) -> Option<Instant> {
        (self.state == BreakerState::Open).then_some(self.next_probe)
    }

    /// Starts a probe if the breaker is open and its delay has passed.
    pub fn begin_probe(&mut self, now: Instant) -> bool {
        if self.state == BreakerState::Open && now >= self.next_probe {
            self.state = BreakerState::Probing;
            true
        } else {
            false
        }
    }

    /// The probe worked: storage is back.
    pub fn probe_succeeded(&mut self, now: Instant) {
        if self.state == BreakerState::Probing {
            self.state = BreakerState::Closed;
            self.outage = None;
            self.delay = self.backoff.first;
            self.last_ok = Some(now);
        }
    }

    /// The probe failed: open again, wait longer. The reported cause becomes the latest one.
    pub fn probe_failed(&mut self, cause: &str, now: Instant) {
        if self.state == BreakerState::Probing {
            self.state = BreakerState::Open;
            if let Some(outage) = &mut self.outage {
                outage.cause = cause.to_owned();
            }
            self.delay = (self.delay * 2).min(self.backoff.max);
            self.next_probe = now + self.delay;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn breaker() -> Breaker {
        Breaker::new(Backoff {
            first: ms(100),
            max: ms(350),
        })
    }

    #[test]
    fn closed_admits_and_records_successes() {
        let mut b = breaker();
        let t0 = Instant::now();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_ok());
        b.success(t0);
        assert_eq!(b.last_ok(), Some(t0));
        assert!(b.next_probe().is_none());
        assert!(
            !b.begin_probe(t0 + ms(1000)),
            "nothing to probe while closed"
        );
    }

    #[test]
    fn a_dependency_failure_opens_and_calls_fail_fast_with_the_cause() {
        let mut b = breaker();
        let t0 = Instant::now();
        assert!(b.failure("connection refused", t0));
        assert_eq!(b.state(), BreakerState::Open);
        let outage = b.admit().unwrap_err();
        assert_eq!(outage.cause, "connection refused");
        assert_eq!(outage.since, t0);
        // Further failures while open neither reopen nor change when it started.
        assert!(!b.failure("pool timed out", t0 + ms(10)));
        assert_eq!(b.admit().unwrap_err().since, t0);
        // Successes of calls admitted before the outage do not close it.
        b.success(t0 + ms(20));
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.last_ok(), None);
    }

    #[test]
    fn one_probe_after_the_delay_and_calls_still_refused_meanwhile() {
        let mut b = breaker();
        let t0 = Instant::now();
        b.failure("disk full", t0);
        assert_eq!(b.next_probe(), Some(t0 + ms(100)));
        assert!(!b.begin_probe(t0 + ms(99)), "too early");
        assert!(b.begin_probe(t0 + ms(100)));
        assert_eq!(b.state(), BreakerState::Probing);
        assert!(!b.begin_probe(t0 + ms(200)), "one probe at a time");
        assert!(b.admit().is_err(), "half-open still fails fast");
    }

    #[test]
    fn failed_probes_back_off_up_to_the_maximum_and_report_the_latest_cause() {
        let mut b = breaker();
        let t0 = Instant::now();
        b.failure("connection refused", t0);
        let mut now = t0;
        let mut delays = Vec::new();
        for i in 0..4 {
            now = b.next_probe().unwrap();
            assert!(b.begin_probe(now));
            b.probe_failed(&format!("attempt {i}"), now);
            assert_eq!(b.state(), BreakerState::Open);
            delays.push(b.next_probe().unwrap() - now);
        }
        assert_eq!(delays, vec![ms(200), ms(350), ms(350), ms(350)]);
        let outage = b.admit().unwrap_err();
        assert_eq!(outage.cause, "attempt 3");
        assert_eq!(outage.since, t0, "the outage started at the first failure");
        assert!(now > t0);
    }

    #[test]
    fn a_successful_probe_closes_and_a_later_outage_starts_afresh() {
        let mut b = breaker();
        let t0 = Instant::now();
        b.failure("connection refused", t0);
        let t1 = b.next_probe().unwrap();
        b.begin_probe(t1);
        b.probe_failed("still refused", t1);
        let t2 = b.next_probe().unwrap();
        b.begin_probe(t2);
        b.probe_succeeded(t2);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_ok());
        assert!(b.outage().is_none());
        assert_eq!(b.last_ok(), Some(t2));
        // The next outage waits the first delay again, not the backed-off one.
        let t3 = t2 + ms(5000);
        assert!(b.failure("disk full", t3));
        assert_eq!(b.next_probe(), Some(t3 + ms(100)));
        assert_eq!(b.admit().unwrap_err().since, t3);
    }

    #[test]
    fn probe_outcomes_outside_a_probe_change_nothing() {
        let mut b = breaker();
        let t0 = Instant::now();
        b.probe_succeeded(t0);
        b.probe_failed("x", t0);
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure("down", t0);
        b.probe_succeeded(t0);
        assert_eq!(b.state(), BreakerState::Open, "no probe was running");
    }
}
