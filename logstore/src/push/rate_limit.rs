//! Ingestion rate limits: token buckets over accepted bytes, global and per stream.
//!
//! Follows Loki's documented limits (`ingestion_rate_mb`, `ingestion_burst_size_mb`,
//! `per_stream_rate_limit`, `per_stream_rate_limit_burst`;
//! <https://grafana.com/docs/loki/latest/configure/#limits_config>), with Loki's defaults:
//! 4 MiB/s with a 6 MiB burst over all streams, 3 MiB/s with a 15 MiB burst per stream. A
//! push's size is the sum of [`Entry::size`](super::Entry::size) over its accepted entries
//! (lines plus structured metadata), as validated.
//!
//! Edge cases decided:
//!
//! * All or nothing: a push passes only if the global bucket *and* every one of its streams'
//!   buckets hold enough; otherwise nothing is taken and the push is refused with a
//!   [`Error::RateLimited`] carrying the wait until it would pass (`Retry-After`). Agents
//!   resend the whole batch on 429, so taking part of it would only duplicate entries.
//! * A push larger than a burst can never pass: [`Error::ExceedsBurst`] (413) instead of a
//!   429 that would be retried forever.
//! * A rate of 0 disables that limit.
//! * Time is injected (`now: Instant`); a clock that goes backwards refills nothing.
//! * Per-stream buckets are keyed by a keyed hash of the labels (no clone per push) and are
//!   forgotten once full again (swept every 30 s, or sooner when their number doubles past
//!   100 000), so memory follows the streams active in the last few seconds, not every
//!   stream ever seen. A stream pushing zero bytes gets no bucket.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use super::label_text::format_label_text;
use super::{Entry, ValidatedPush, abbreviate};
use crate::error::{Error, RateScope};

const MIB: u64 = 1 << 20;

/// How often idle (full) per-stream buckets are forgotten.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Tracked streams that trigger a sweep before [`SWEEP_INTERVAL`] is up; doubled past the
/// survivors of each sweep, so sweeping stays amortised O(1) per stream.
const SWEEP_MIN_STREAMS: usize = 100_000;

/// Rate limits in bytes, with Loki's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `ingestion_rate_mb`: sustained bytes/s over all streams (default 4 MiB; 0 = off).
    pub ingestion_rate_bytes: u64,
    /// `ingestion_burst_size_mb`: bucket size over all streams (default 6 MiB).
    pub ingestion_burst_bytes: u64,
    /// `per_stream_rate_limit`: sustained bytes/s per stream (default 3 MiB; 0 = off).
    pub per_stream_rate_bytes: u64,
    /// `per_stream_rate_limit_burst`: bucket size per stream (default 15 MiB).
    pub per_stream_burst_bytes: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            ingestion_rate_bytes: 4 * MIB,
            ingestion_burst_bytes: 6 * MIB,
            per_stream_rate_bytes: 3 * MIB,
            per_stream_burst_bytes: 15 * MIB,
        }
    }
}

/// A token bucket of bytes that refills at `rate` per second up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u64, burst: u64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: rate_per_sec as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last: now,
        }
    }

    /// Adds what accrued since the last call (nothing if `now` is earlier).
    pub fn refill(&mut self, now: Instant) {
        if now > self.last {
            let elapsed = now.duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            self.last = now;
        }
    }

    /// Bytes available now (after [`refill`](Self::refill)).
    pub fn available(&self) -> f64 {
        self.tokens
    }

    /// How long until `bytes` are available, or zero if they are.
    pub fn wait_for(&self, bytes: u64) -> Duration {
        let missing = bytes as f64 - self.tokens;
        if missing <= 0.0 || self.rate <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.rate)
        }
    }

    /// Takes `bytes` (which must be available).
    pub fn take(&mut self, bytes: u64) {
        self.tokens -= bytes as f64;
    }

    /// True when the bucket is full, i.e. indistinguishable from a new one.
    pub fn is_full(&self) -> bool {
        self.tokens >= self.burst
    }
}

/// The ingestion rate limiter of one tenant (Sightline has one): a global bucket and one
/// bucket per active stream.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    global: TokenBucket,
    streams: HashMap<u64, TokenBucket>,
    hasher: RandomState,
    last_sweep: Instant,
    sweep_at_streams: usize,
}

impl RateLimiter {
    /// A limiter whose buckets start full at `now`.
    pub fn new(limits: RateLimits, now: Instant) -> RateLimiter {
        RateLimiter {
            limits,
            global: TokenBucket::new(
                limits.ingestion_rate_bytes,
                limits.ingestion_burst_bytes,
                now,
            ),
            streams: HashMap::new(),
            hasher: RandomState::new(),
            last_sweep: now,
            sweep_at_streams: SWEEP_MIN_STREAMS,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// How many per-stream buckets are tracked (streams that pushed recently).
    pub fn tracked_streams(&self) -> usize {
        self.streams.len()
    }

    /// Admits the accepted part of `push` at `now`, taking its bytes from the buckets, or
    /// refuses all of it with [`Error::RateLimited`] / [`Error::ExceedsBurst`] and takes
    /// nothing.
    pub fn check(&mut self, push: &ValidatedPush, now: Instant) -> Result<(), Error> {
        if now.saturating_duration_since(self.last_sweep) >= SWEEP_INTERVAL
            || self.streams.len() >= self.sweep_at_streams
        {
            self.sweep(now);
        }
        let total: u64 = push
            .streams
            .iter()
            .map(|s| s.entries.iter().map(Entry::size).sum::<usize>() as u64)
            .sum();
        if total == 0 {
            return Ok(());
        }
        let limits = self.limits;
        if limits.ingestion_rate_bytes > 0 {
            if total > limits.ingestion_burst_bytes {
                return Err(Error::ExceedsBurst {
                    scope: RateScope::Global,
                    burst_bytes: limits.ingestion_burst_bytes,
                    push_bytes: total,
                });
            }
            self.global.refill(now);
            if self.global.available() < total as f64 {
                return Err(Error::RateLimited {
                    scope: RateScope::Global,
                    rate_bytes_per_sec: limits.ingestion_rate_bytes,
                    burst_bytes: limits.ingestion_burst_bytes,
                    push_bytes: total,
                    retry_after: self.global.wait_for(total),
                });
            }
        }
        if limits.per_stream_rate_bytes > 0 {
            for stream in &push.streams {
                let bytes = stream.entries.iter().map(Entry::size).sum::<usize>() as u64;
                if bytes == 0 {
                    // Nothing to take: no bucket, so empty lines cannot grow the map.
                    continue;
                }
                let scope = || {
                    RateScope::Stream(
                        abbreviate(&format_label_text(&stream.labels), 300).into_owned(),
                    )
                };
                if bytes > limits.per_stream_burst_bytes {
                    return Err(Error::ExceedsBurst {
                        scope: scope(),
                        burst_bytes: limits.per_stream_burst_bytes,
                        push_bytes: bytes,
                    });
                }
                let key = self.hasher.hash_one(&stream.labels);
                let bucket = self.streams.entry(key).or_insert_with(|| {
                    TokenBucket::new(
                        limits.per_stream_rate_bytes,
                        limits.per_stream_burst_bytes,
                        now,
                    )
                });
                bucket.refill(now);
                if bucket.available() < bytes as f64 {
                    return Err(Error::RateLimited {
                        scope: scope(),
                        rate_bytes_per_sec: limits.per_stream_rate_bytes,
                        burst_bytes: limits.per_stream_burst_bytes,
                        push_bytes: bytes,
                        retry_after: bucket.wait_for(bytes),
                    });
                }
            }
            for stream in &push.streams {
                let bytes = stream.entries.iter().map(Entry::size).sum::<usize>() as u64;
                let key = self.hasher.hash_one(&stream.labels);
                if let Some(bucket) = self.streams.get_mut(&key) {
                    bucket.take(bytes);
                }
            }
        }
        if limits.ingestion_rate_bytes > 0 {
            self.global.take(total);
        }
        Ok(())
    }

    /// Forgets per-stream buckets that have refilled completely.
    fn sweep(&mut self, now: Instant) {
        self.streams.retain(|_, bucket| {
            bucket.refill(now);
            !bucket.is_full()
        });
        self.last_sweep = now;
        self.sweep_at_streams = (self.streams.len() * 2).max(SWEEP_MIN_STREAMS);
    }
}
