//! Retry policy of a connector and its backoff computation.

use std::time::Duration;

/// How often and how fast a failed delivery is retried.
///
/// TOML (table `retry` of a connector, every key optional):
/// `max_attempts = 8`, `initial_backoff = "1s"`, `max_backoff = "5m"`,
/// `multiplier = 2.0`, `jitter = 0.2`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts per delivery generation, including the first (>= 1).
    pub max_attempts: u32,
    /// Wait after the first failed attempt.
    pub initial_backoff: Duration,
    /// Upper bound for any wait.
    pub max_backoff: Duration,
    /// Growth factor per failed attempt (>= 1).
    pub multiplier: f64,
    /// Relative random spread, `0..=1`: a wait of `d` becomes a value in
    /// `d * (1 - jitter) ..= d * (1 + jitter)` (still capped).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// Wait before the next attempt after `attempt` attempts have failed
    /// (`attempt` starts at 1; 0 is treated as 1).
    ///
    /// The nominal wait is `initial_backoff * multiplier^(attempt-1)`,
    /// capped at `max_backoff`; `rand01` (a uniform random number in
    /// `0..=1`, clamped) spreads it by `± jitter`. The result never exceeds
    /// `max_backoff`.
    pub fn backoff(&self, attempt: u32, rand01: f64) -> Duration {
        let max = self.max_backoff.as_secs_f64();
        let exp = i32::try_from(attempt.max(1) - 1).unwrap_or(i32::MAX);
        let mut nominal = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        if !nominal.is_finite() || nominal > max {
            nominal = max;
        }
        let r = if rand01.is_nan() {
            0.5
        } else {
            rand01.clamp(0.0, 1.0)
        };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let secs = (nominal * (1.0 + jitter * (2.0 * r - 1.0))).clamp(0.0, max);
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_backoff)
    }

    /// `true` when `attempt` attempts have been made and no more are allowed.
    pub fn exhausted(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            multiplier: 3.0,
            jitter: 0.5,
        }
    }

    #[test]
    fn without_jitter_spread_it_is_exponential_and_capped() {
        let p = policy();
        // rand01 = 0.5 means "no jitter"
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 0.5), Duration::from_millis(300));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(900));
        assert_eq!(p.backoff(4, 0.5), Duration::from_secs(2));
        assert_eq!(p.backoff(1000, 0.5), Duration::from_secs(2));
        assert_eq!(p.backoff(u32::MAX, 0.5), Duration::from_secs(2));
        assert_eq!(p.backoff(0, 0.5), p.backoff(1, 0.5));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = policy();
        for attempt in 1..=10u32 {
            let nominal = p.backoff(attempt, 0.5).as_secs_f64();
            for i in 0..=20 {
                let r = f64::from(i) / 20.0;
                let d = p.backoff(attempt, r).as_secs_f64();
                assert!(d >= nominal * 0.5 - 1e-9, "attempt {attempt} r {r}: {d}");
                assert!(
                    d <= (nominal * 1.5).min(2.0) + 1e-9,
                    "attempt {attempt} r {r}: {d}"
                );
            }
        }
        // extremes of rand01
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(150));
        // out-of-range and NaN inputs are clamped, never panic
        assert_eq!(p.backoff(1, -3.0), Duration::from_millis(50));
        assert_eq!(p.backoff(1, 7.0), Duration::from_millis(150));
        assert_eq!(p.backoff(1, f64::NAN), Duration::from_millis(100));
    }

    #[test]
    fn huge_multiplier_does_not_overflow() {
        let p = RetryPolicy {
            multiplier: 1e300,
            ..policy()
        };
        assert_eq!(p.backoff(50, 1.0), Duration::from_secs(2));
    }

    #[test]
    fn exhaustion() {
        let p = policy();
        assert!(!p.exhausted(4));
        assert!(p.exhausted(5));
    }
}
