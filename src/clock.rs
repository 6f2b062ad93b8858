//! The service's clock: system time, optionally shifted for development
//! (`dev_clock = true`) so a demo or a test can show deadlines passing
//! without waiting days. The log's own `recorded_at` always stays real time.
//!
//! Must never: be adjustable unless the configuration says so; move
//! backwards (only forward shifts are accepted).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// Wall-clock time plus a development offset.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    adjustable: bool,
}

/// Why the clock was not moved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClockError {
    #[error("the clock is not adjustable (set dev_clock = true, VANTHU_DEV_CLOCK=true, in development only)")]
    Fixed,
    #[error("the clock only moves forward, by at most 400 days at a time")]
    Range,
}

impl Clock {
    /// The system clock; `adjustable` allows [`Clock::advance`].
    pub fn new(adjustable: bool) -> Self {
        Self {
            offset_ms: AtomicI64::new(0),
            adjustable,
        }
    }

    /// A clock that reads `at` now and runs on from there (a seeder
    /// replaying a year of documents); not adjustable.
    // Reads the wall clock once, to fix the offset.
    #[allow(clippy::disallowed_methods)]
    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Self {
            offset_ms: AtomicI64::new((at - Utc::now()).num_milliseconds()),
            adjustable: false,
        }
    }

    /// Whether the clock may be shifted.
    pub fn adjustable(&self) -> bool {
        self.adjustable
    }

    /// The current instant.
    // The one reading of the wall clock the service's rules rest on.
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// System time, without the development shift: for what another
    /// machine checks against its own clock (a webhook's timestamp), never
    /// for a rule.
    pub fn system_now(&self) -> DateTime<Utc> {
        self.now() - self.offset()
    }

    /// The total shift from system time.
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) -> Result<DateTime<Utc>, ClockError> {
        if !self.adjustable {
            return Err(ClockError::Fixed);
        }
        if by < Duration::zero() || by > Duration::days(400) {
            return Err(ClockError::Range);
        }
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
        Ok(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_adjustable_clock_moves_and_only_forward() {
        let fixed = Clock::new(false);
        assert_eq!(fixed.advance(Duration::days(1)), Err(ClockError::Fixed));
        let dev = Clock::new(true);
        let before = dev.now();
        let after = dev.advance(Duration::days(3)).unwrap();
        assert!(after - before >= Duration::days(3));
        assert_eq!(dev.advance(Duration::days(-1)), Err(ClockError::Range));
        assert_eq!(dev.offset(), Duration::days(3));
    }
}
