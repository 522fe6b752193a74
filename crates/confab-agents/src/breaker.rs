//! A circuit breaker for model endpoints (seed 000): after `failures` consecutive failures it
//! opens and refuses calls; after `reset` it lets one trial call through (half-open); a success
//! closes it, a failure opens it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub reset: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            reset: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed { consecutive: u32 },
    Open { since: Instant },
    /// One trial call is in flight; others are refused until it ends.
    HalfOpen,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// How long until a trial call will be allowed (zero while a trial is in flight).
    pub retry_after: Duration,
    pub failures: u32,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            state: Mutex::new(State::Closed { consecutive: 0 }),
        }
    }

    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    pub fn state(&self) -> BreakerState {
        match *self.state.lock().unwrap() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Asks to make a call; the caller must report its outcome with [`success`](Self::success)
    /// or [`failure`](Self::failure).
    pub fn allow(&self) -> Result<(), Refused> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Result<(), Refused> {
        let mut state = self.state.lock().unwrap();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { since } => {
                let open_for = now.saturating_duration_since(since);
                if open_for >= self.config.reset {
                    *state = State::HalfOpen;
                    Ok(())
                } else {
                    Err(Refused {
                        retry_after: self.config.reset - open_for,
                        failures: self.config.failures,
                    })
                }
            }
            State::HalfOpen => Err(Refused {
                retry_after: Duration::ZERO,
                failures: self.config.failures,
            }),
        }
    }

    pub fn success(&self) {
        *self.state.lock().unwrap() = State::Closed { consecutive: 0 };
    }

    pub fn failure(&self) {
        self.failure_at(Instant::now());
    }

    fn failure_at(&self, now: Instant) {
        let mut state = self.state.lock().unwrap();
        *state = match *state {
            State::Closed { consecutive } if consecutive + 1 < self.config.failures => {
                State::Closed {
                    consecutive: consecutive + 1,
                }
            }
            State::Closed { .. } | State::HalfOpen => {
                tracing::warn!(
                    failures = self.config.failures,
                    reset_secs = self.config.reset.as_secs_f64(),
                    "model endpoint circuit opened"
                );
                State::Open { since: now }
            }
            State::Open { since } => State::Open { since },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_half_opens_after_reset() {
        let b = CircuitBreaker::new(BreakerConfig {
            failures: 3,
            reset: Duration::from_secs(60),
        });
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(b.allow_at(t0).is_ok());
            b.failure_at(t0);
        }
        // A success in between resets the count.
        b.success();
        for _ in 0..3 {
            assert!(b.allow_at(t0).is_ok());
            b.failure_at(t0);
        }
        assert_eq!(b.state(), BreakerState::Open);
        let refused = b.allow_at(t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(50));
        // After the reset time one trial goes through, others wait for it.
        assert!(b.allow_at(t0 + Duration::from_secs(60)).is_ok());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allow_at(t0 + Duration::from_secs(60)).is_err());
        // The trial fails: open again, for a full period.
        b.failure_at(t0 + Duration::from_secs(61));
        assert!(b.allow_at(t0 + Duration::from_secs(100)).is_err());
        assert!(b.allow_at(t0 + Duration::from_secs(121)).is_ok());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow_at(t0 + Duration::from_secs(121)).is_ok());
    }
}
