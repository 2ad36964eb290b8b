//! Bounded retries with exponential backoff.

use std::time::Duration;

use crate::limits::{RETRY_BACKOFF_MS_INITIAL, RETRY_BACKOFF_MS_MAX};

/// How often to try, and how long to wait in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (at least 1).
    pub attempts_max: u32,
    /// Wait before the second attempt; doubled per further attempt.
    pub backoff_ms_initial: u64,
    /// Cap on one wait.
    pub backoff_ms_max: u64,
}

impl RetryPolicy {
    /// `attempts_max` attempts with the crate's default backoff.
    pub const fn attempts(attempts_max: u32) -> Self {
        RetryPolicy {
            attempts_max,
            backoff_ms_initial: RETRY_BACKOFF_MS_INITIAL,
            backoff_ms_max: RETRY_BACKOFF_MS_MAX,
        }
    }

    /// The wait after failed attempt `attempt` (1-based).
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let doublings = attempt.saturating_sub(1).min(16);
        self.backoff_ms_initial
            .saturating_mul(1 << doublings)
            .min(self.backoff_ms_max)
    }

    /// Runs `op` until it succeeds, fails with an error `retryable` rejects, or the attempts run
    /// out; returns the last error and the number of attempts made.
    pub fn run<T, E>(
        &self,
        mut op: impl FnMut(u32) -> Result<T, E>,
        retryable: impl Fn(&E) -> bool,
    ) -> Result<T, (E, u32)> {
        let attempts_max = self.attempts_max.max(1);
        let mut attempt = 1;
        loop {
            match op(attempt) {
                Ok(value) => return Ok(value),
                Err(err) if attempt < attempts_max && retryable(&err) => {
                    std::thread::sleep(Duration::from_millis(self.backoff_ms(attempt)));
                    attempt += 1;
                }
                Err(err) => return Err((err, attempt)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            attempts_max: 5,
            backoff_ms_initial: 10,
            backoff_ms_max: 35,
        };
        let waits: Vec<u64> = (1..=4).map(|a| policy.backoff_ms(a)).collect();
        assert_eq!(waits, vec![10, 20, 35, 35]);
    }

    #[test]
    fn stops_at_the_bound_and_on_fatal_errors() {
        let policy = RetryPolicy {
            attempts_max: 3,
            backoff_ms_initial: 0,
            backoff_ms_max: 0,
        };
        let mut calls = 0;
        let result: Result<(), _> = policy.run(
            |_| {
                calls += 1;
                Err("transient")
            },
            |_| true,
        );
        assert_eq!(result, Err(("transient", 3)));
        assert_eq!(calls, 3);
        calls = 0;
        let result: Result<(), _> = policy.run(
            |_| {
                calls += 1;
                Err("fatal")
            },
            |e| *e != "fatal",
        );
        assert_eq!(result, Err(("fatal", 1)));
        assert_eq!(calls, 1);
        let result = policy.run(
            |attempt| {
                if attempt == 2 {
                    Ok(attempt)
                } else {
                    Err("transient")
                }
            },
            |_| true,
        );
        assert_eq!(result, Ok(2));
    }
}
