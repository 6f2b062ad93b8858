//! Tests of the sender's parts that need no receiver.

use std::collections::HashSet;
use std::time::Duration;

use super::*;

    fn policy() -> Policy {
        Policy {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
            max_age: chrono::Duration::hours(72),
            timeout: Duration::from_secs(10),
            concurrency: 4,
            deadline_check: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_jitter_takes_off_at_most_half() {
        let p = policy();
        let cases = [
            (1, 0.0, 5_000),
            (2, 0.0, 10_000),
            (3, 0.0, 20_000),
            (4, 0.999_999, 20_000),
            (10, 0.0, 2_560_000),
            (11, 0.0, 3_600_000),
            (40, 0.0, 3_600_000),
            (40, 0.5, 2_700_000),
            (u32::MAX, 0.0, 3_600_000),
            (0, 0.0, 5_000),
        ];
        for (tries, jitter, ms) in cases {
            let got = backoff(&p, tries, jitter).as_millis() as i64;
            assert!(
                (got - ms).abs() <= 1,
                "try {tries}, jitter {jitter}: {got} ms, want {ms}"
            );
        }
    }

    #[test]
    fn jitter_spreads_retries_between_half_and_all_of_the_delay() {
        let p = policy();
        let delays: Vec<_> = (0..200)
            .map(|_| backoff(&p, 3, f64::from(rand_u32()) / f64::from(u32::MAX)))
            .collect();
        assert!(delays
            .iter()
            .all(|d| *d >= Duration::from_secs(10) && *d <= Duration::from_secs(20)));
        let distinct: HashSet<_> = delays.iter().map(|d| d.as_millis()).collect();
        assert!(
            distinct.len() > 100,
            "jitter varies: {} distinct delays",
            distinct.len()
        );
    }
