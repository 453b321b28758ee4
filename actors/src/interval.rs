//! The floor under every period an actor loops on. Config resolution
//! refuses `0s`; this is the second line of defence, so an interval that
//! reaches an actor some other way (a library caller, a default gone
//! wrong) can never spin a thread.

use std::time::Duration;

/// Shortest period of any actor loop (store sync, shipper, sidecar
/// refresh, store Info checks, store-file polling).
pub const MIN_LOOP_INTERVAL: Duration = Duration::from_millis(100);

/// `configured`, or [`MIN_LOOP_INTERVAL`] when it is shorter (zero
/// included).
pub fn loop_interval(configured: Duration) -> Duration {
    configured.max(MIN_LOOP_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_tiny_intervals_are_raised_to_the_floor() {
        assert_eq!(loop_interval(Duration::ZERO), MIN_LOOP_INTERVAL);
        assert_eq!(loop_interval(Duration::from_nanos(1)), MIN_LOOP_INTERVAL);
        assert_eq!(
            loop_interval(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
    }
}
