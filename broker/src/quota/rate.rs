//! The pure rate and throttle core of quotas: Kafka's sampled rate (`quota.window.num` samples of
//! `quota.window.size.seconds` each) and its throttle time. No clock and no locks: the time is
//! passed in, so every rule is unit-tested with made-up times.

use std::collections::HashMap;

/// Kafka's `quota.window.num`: samples kept (the rate is taken over all of them).
pub const WINDOW_NUM: usize = 11;
/// Kafka's `quota.window.size.seconds`, in milliseconds.
pub const WINDOW_SIZE_MS: i64 = 1000;
/// The longest throttle handed out: the whole measured window, as Kafka bounds it.
pub const MAX_THROTTLE_MS: i64 = WINDOW_NUM as i64 * WINDOW_SIZE_MS;
/// Most sensors (one per quota kind and (user, client-id) pair that has a quota) kept; past it,
/// idle ones are dropped, and if none are idle a new pair is not tracked (not throttled).
pub const MAX_SENSORS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: i64,
    value: f64,
}

/// A rate measured over [`WINDOW_NUM`] windows of [`WINDOW_SIZE_MS`], as Kafka's `Rate` over a
/// `SampledStat`: a window starts when the first value after the previous one's end is recorded,
/// windows older than the whole span no longer count, and the elapsed time is never taken as
/// less than `WINDOW_NUM - 1` full windows (so a burst at start-up is not seen as a huge rate).
#[derive(Debug, Clone, Default)]
pub struct SampledRate {
    /// Oldest first; at most [`WINDOW_NUM`].
    samples: Vec<Sample>,
}

impl SampledRate {
    pub fn record(&mut self, value: f64, now_ms: i64) {
        self.purge(now_ms);
        match self.samples.last_mut() {
            Some(s) if now_ms < s.start_ms + WINDOW_SIZE_MS => s.value += value,
            _ => {
                if self.samples.len() == WINDOW_NUM {
                    self.samples.remove(0);
                }
                self.samples.push(Sample {
                    start_ms: now_ms,
                    value,
                });
            }
        }
    }

    /// Drops the samples that ended more than the whole span ago.
    fn purge(&mut self, now_ms: i64) {
        let span_ms = WINDOW_NUM as i64 * WINDOW_SIZE_MS;
        self.samples.retain(|s| s.start_ms + span_ms > now_ms);
    }

    /// The time the rate is taken over, in milliseconds (see the type's docs).
    fn window_ms(&self, now_ms: i64) -> i64 {
        let oldest = self.samples.first().map_or(now_ms, |s| s.start_ms);
        let elapsed_ms = (now_ms - oldest).max(0);
        let min_ms = (WINDOW_NUM as i64 - 1) * WINDOW_SIZE_MS;
        if elapsed_ms / WINDOW_SIZE_MS < WINDOW_NUM as i64 - 1 {
            // Kafka adds the missing full windows to the elapsed time.
            elapsed_ms + (min_ms - (elapsed_ms / WINDOW_SIZE_MS) * WINDOW_SIZE_MS)
        } else {
            elapsed_ms
        }
    }

    /// Units per second.
    pub fn rate(&mut self, now_ms: i64) -> f64 {
        self.purge(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total * 1000.0 / self.window_ms(now_ms) as f64
    }

    /// How long the client must wait for the rate to come back to `bound`: Kafka's
    /// `(rate - bound) / bound * window`, at most [`MAX_THROTTLE_MS`]; 0 within the bound.
    pub fn throttle_ms(&mut self, bound: f64, now_ms: i64) -> i64 {
        let rate = self.rate(now_ms);
        if bound.is_nan() || bound <= 0.0 || rate <= bound {
            return 0;
        }
        let throttle = (rate - bound) / bound * self.window_ms(now_ms) as f64;
        (throttle.ceil() as i64).clamp(0, MAX_THROTTLE_MS)
    }

    fn last_ms(&self) -> Option<i64> {
        self.samples.last().map(|s| s.start_ms)
    }
}

/// The rates of many keys (each quota kind with its (user, client-id) pair), bounded by
/// [`MAX_SENSORS`].
#[derive(Debug)]
pub struct Sensors<K> {
    rates: HashMap<K, SampledRate>,
    max: usize,
}

impl<K: std::hash::Hash + Eq + Clone> Default for Sensors<K> {
    fn default() -> Self {
        Self::with_capacity(MAX_SENSORS)
    }
}

impl<K: std::hash::Hash + Eq + Clone> Sensors<K> {
    pub fn with_capacity(max: usize) -> Self {
        Self {
            rates: HashMap::new(),
            max,
        }
    }

    /// Records `value` for `key` and returns the throttle time against `bound` (Kafka records
    /// first, then checks, so the request that crosses the bound is the one throttled).
    pub fn record(&mut self, key: &K, value: f64, bound: f64, now_ms: i64) -> i64 {
        if !self.rates.contains_key(key) {
            if self.rates.len() >= self.max {
                let span_ms = WINDOW_NUM as i64 * WINDOW_SIZE_MS;
                self.rates
                    .retain(|_, r| r.last_ms().is_some_and(|t| t + span_ms > now_ms));
            }
            if self.rates.len() >= self.max {
                return 0;
            }
        }
        let rate = self.rates.entry(key.clone()).or_default();
        rate.record(value, now_ms);
        rate.throttle_ms(bound, now_ms)
    }

    /// Records `value` for `key` unless that takes it over `bound`: then the value is taken back
    /// (Kafka un-records a refused connection, so refused attempts do not prolong the refusal)
    /// and the throttle time is returned. A bound of 0 refuses everything for the longest
    /// throttle.
    pub fn record_unless_over(&mut self, key: &K, value: f64, bound: f64, now_ms: i64) -> i64 {
        if bound.is_nan() || bound <= 0.0 {
            return MAX_THROTTLE_MS;
        }
        let throttle = self.record(key, value, bound, now_ms);
        if throttle > 0 {
            if let Some(rate) = self.rates.get_mut(key) {
                rate.record(-value, now_ms);
            }
        }
        throttle
    }

    pub fn len(&self) -> usize {
        self.rates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_burst_is_spread_over_the_minimum_window() {
        let mut r = SampledRate::default();
        r.record(10_000.0, 0);
        // 10 full windows at least: 10 000 units over 10 s.
        assert_eq!(r.rate(0), 1000.0);
        assert_eq!(r.rate(500), 10_000.0 * 1000.0 / 10_500.0);
    }

    #[test]
    fn old_windows_stop_counting() {
        let mut r = SampledRate::default();
        r.record(5000.0, 0);
        r.record(5000.0, 5000);
        assert_eq!(r.rate(5000), 1000.0);
        // At 11 s the first window is out of the span; the second still counts.
        assert_eq!(r.rate(11_000), 5000.0 * 1000.0 / 10_000.0);
        assert_eq!(r.rate(16_000), 0.0);
    }

    #[test]
    fn within_the_bound_there_is_no_throttle() {
        // 90% of the bound: as in Kafka, the window just begun counts in full while only its
        // first instant has elapsed, so a client exactly at the bound reads slightly above it.
        let mut r = SampledRate::default();
        for s in 0..30 {
            r.record(900.0, s * 1000);
            assert_eq!(r.throttle_ms(1000.0, s * 1000), 0, "second {s}");
        }
    }

    #[test]
    fn over_the_bound_the_throttle_brings_the_rate_back_to_it() {
        let mut r = SampledRate::default();
        r.record(20_000.0, 0);
        // 20 000 over 10 s = 2000/s against 1000/s: (2000 - 1000) / 1000 * 10 s.
        let throttle = r.throttle_ms(1000.0, 0);
        assert_eq!(throttle, 10_000);
        // Once the burst's window has left the span, nothing is owed.
        assert_eq!(r.throttle_ms(1000.0, 11_000), 0);
    }

    #[test]
    fn the_throttle_is_bounded_by_the_window() {
        let mut r = SampledRate::default();
        r.record(1e12, 0);
        assert_eq!(r.throttle_ms(1.0, 0), MAX_THROTTLE_MS);
        assert_eq!(r.throttle_ms(0.0, 0), 0);
    }

    #[test]
    fn a_steady_producer_over_its_quota_gets_the_quota_on_average() {
        // A client sending 1000 units as soon as it may, against 500/s: over a minute it gets
        // about 500/s, the throttle making up the difference.
        let mut sensors: Sensors<&str> = Sensors::default();
        let mut now = 0;
        let mut sent = 0.0;
        while now < 60_000 {
            sent += 1000.0;
            now += 1 + sensors.record(&"a", 1000.0, 500.0, now);
        }
        let rate = sent * 1000.0 / now as f64;
        assert!(rate <= 500.0 * 1.2, "rate {rate}");
        assert!(rate >= 500.0 * 0.8, "rate {rate}");
    }

    #[test]
    fn refused_values_are_taken_back() {
        let mut sensors: Sensors<&str> = Sensors::default();
        // 1 per second over the 10 s minimum window: the first 10 fit, the 11th goes over.
        for i in 0..10 {
            assert_eq!(
                sensors.record_unless_over(&"ip", 1.0, 1.0, 0),
                0,
                "attempt {i}"
            );
        }
        for _ in 0..5 {
            assert!(sensors.record_unless_over(&"ip", 1.0, 1.0, 0) > 0);
        }
        // The refusals were not counted: the rate is still the 10 accepted.
        let rate = sensors.rates.get_mut(&"ip").expect("tracked").rate(0);
        assert_eq!(rate, 1.0);
        assert_eq!(
            sensors.record_unless_over(&"other", 1.0, 0.0, 0),
            MAX_THROTTLE_MS
        );
    }

    #[test]
    fn keys_have_their_own_rates_and_the_count_is_bounded() {
        let mut sensors: Sensors<u32> = Sensors::with_capacity(2);
        assert!(sensors.record(&1, 1e6, 10.0, 0) > 0);
        assert_eq!(sensors.record(&2, 10.0, 10.0, 0), 0);
        // Full and nobody idle: a third key is not tracked.
        assert_eq!(sensors.record(&3, 1e6, 10.0, 0), 0);
        assert_eq!(sensors.len(), 2);
        // Once the others are idle for the whole span, they make room.
        assert!(sensors.record(&3, 1e6, 10.0, 20_000) > 0);
        assert_eq!(sensors.len(), 1);
    }
}
