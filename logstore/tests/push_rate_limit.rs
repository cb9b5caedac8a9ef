//! The ingestion rate limiter: bursts, refill, per-stream versus global limits, all-or-nothing
//! admission, Retry-After, and forgetting idle streams — with injected time.

use std::time::{Duration, Instant, UNIX_EPOCH};

use sightline_core::labels::Labels;
use sightline_logstore::error::RateScope;
use sightline_logstore::push::rate_limit::TokenBucket;
use sightline_logstore::push::{
    self, Entry, PushLimits, PushRequest, PushStream, RateLimiter, RateLimits, ValidatedPush,
};
use sightline_logstore::{Error, ErrorKind};

const NOW_NS: i64 = 1_800_000_000_000_000_000;

/// A validated push of `bytes` line bytes per stream, one entry each.
fn push_of(streams: &[(&str, usize)]) -> ValidatedPush {
    let request = PushRequest {
        streams: streams
            .iter()
            .map(|(job, bytes)| PushStream {
                labels: Labels::from_pairs([("job", *job)]),
                malformed_labels: None,
                entries: vec![Entry {
                    timestamp_ns: NOW_NS,
                    line: "x".repeat(*bytes),
                    metadata: vec![],
                }],
            })
            .collect(),
    };
    let limits = PushLimits {
        max_line_size: 0,
        ..PushLimits::default()
    };
    push::validate(
        request,
        &limits,
        UNIX_EPOCH + Duration::from_nanos(NOW_NS as u64),
    )
}

fn limits() -> RateLimits {
    RateLimits {
        ingestion_rate_bytes: 1000,
        ingestion_burst_bytes: 2000,
        per_stream_rate_bytes: 100,
        per_stream_burst_bytes: 500,
    }
}

#[test]
fn loki_defaults() {
    let defaults = RateLimits::default();
    assert_eq!(defaults.ingestion_rate_bytes, 4 << 20);
    assert_eq!(defaults.ingestion_burst_bytes, 6 << 20);
    assert_eq!(defaults.per_stream_rate_bytes, 3 << 20);
    assert_eq!(defaults.per_stream_burst_bytes, 15 << 20);
}

#[test]
fn bucket_refills_up_to_burst_and_ignores_time_going_back() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(100, 200, t0);
    assert_eq!(bucket.available(), 200.0);
    bucket.take(200);
    assert_eq!(bucket.wait_for(50), Duration::from_millis(500));
    bucket.refill(t0 + Duration::from_secs(1));
    assert_eq!(bucket.available(), 100.0);
    bucket.refill(t0); // earlier: nothing changes
    assert_eq!(bucket.available(), 100.0);
    bucket.refill(t0 + Duration::from_secs(60));
    assert_eq!(bucket.available(), 200.0);
    assert!(bucket.is_full());
}

#[test]
fn per_stream_limit_with_retry_after() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(limits(), t0);
    let hot = push_of(&[("hot", 400)]);
    assert!(limiter.check(&hot, t0).is_ok());
    // 100 bytes left in the stream's bucket: another 400 needs 3 s at 100 B/s.
    let err = limiter.check(&hot, t0);
    match &err {
        Err(Error::RateLimited {
            scope: RateScope::Stream(labels),
            retry_after,
            push_bytes: 400,
            ..
        }) => {
            assert_eq!(labels, r#"{job="hot"}"#);
            assert_eq!(*retry_after, Duration::from_secs(3));
        }
        other => panic!("{other:?}"),
    }
    let err = err.err();
    assert_eq!(err.as_ref().map(Error::kind), Some(ErrorKind::RateLimited));
    assert_eq!(
        err.as_ref().and_then(Error::retry_after),
        Some(Duration::from_secs(3))
    );
    // Another stream is not held back by the hot one.
    assert!(limiter.check(&push_of(&[("cold", 400)]), t0).is_ok());
    // After the advertised wait, the hot stream passes again.
    assert!(limiter.check(&hot, t0 + Duration::from_secs(3)).is_ok());
}

#[test]
fn global_limit_applies_across_streams() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(limits(), t0);
    let four = push_of(&[("a", 450), ("b", 450), ("c", 450), ("d", 450)]);
    assert!(limiter.check(&four, t0).is_ok());
    let more = push_of(&[("e", 450)]);
    match limiter.check(&more, t0) {
        Err(Error::RateLimited {
            scope: RateScope::Global,
            retry_after,
            ..
        }) => assert_eq!(retry_after, Duration::from_millis(250)),
        other => panic!("{other:?}"),
    }
    assert!(
        limiter
            .check(&more, t0 + Duration::from_millis(250))
            .is_ok()
    );
}

#[test]
fn refusal_takes_nothing() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(limits(), t0);
    assert!(limiter.check(&push_of(&[("hot", 450)]), t0).is_ok());
    // "ok" fits its own bucket but "hot" does not: the whole push is refused...
    let mixed = push_of(&[("ok", 450), ("hot", 450)]);
    assert!(limiter.check(&mixed, t0).is_err());
    // ...and "ok" lost nothing: a full burst for it still passes.
    assert!(limiter.check(&push_of(&[("ok", 500)]), t0).is_ok());
}

#[test]
fn push_larger_than_a_burst_is_too_large() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(limits(), t0);
    let err = limiter.check(&push_of(&[("big", 501)]), t0).err();
    assert!(matches!(
        err,
        Some(Error::ExceedsBurst {
            scope: RateScope::Stream(_),
            burst_bytes: 500,
            push_bytes: 501
        })
    ));
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::TooLarge));
    let wide: Vec<(String, usize)> = (0..5).map(|i| (format!("s{i}"), 450)).collect();
    let wide: Vec<(&str, usize)> = wide.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let err = limiter.check(&push_of(&wide), t0).err();
    assert!(matches!(
        err,
        Some(Error::ExceedsBurst {
            scope: RateScope::Global,
            ..
        })
    ));
}

#[test]
fn zero_rate_disables_a_limit_and_empty_pushes_pass() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(
        RateLimits {
            ingestion_rate_bytes: 0,
            per_stream_rate_bytes: 0,
            ..limits()
        },
        t0,
    );
    for _ in 0..10 {
        assert!(limiter.check(&push_of(&[("a", 10_000)]), t0).is_ok());
    }
    let mut strict = RateLimiter::new(limits(), t0);
    assert!(strict.check(&ValidatedPush::default(), t0).is_ok());
}

#[test]
fn idle_streams_are_forgotten() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(limits(), t0);
    for i in 0..4 {
        let job = format!("s{i}");
        assert!(limiter.check(&push_of(&[(&job, 100)]), t0).is_ok());
    }
    assert_eq!(limiter.tracked_streams(), 4);
    // A minute later every bucket has refilled; the next check sweeps them away.
    let later = t0 + Duration::from_secs(60);
    assert!(limiter.check(&push_of(&[("new", 100)]), later).is_ok());
    assert_eq!(limiter.tracked_streams(), 1);
}

#[test]
fn now_is_the_only_clock() {
    // The limiter never reads the wall clock: a far-future Instant works like any other.
    let t0 = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut limiter = RateLimiter::new(limits(), t0);
    assert!(limiter.check(&push_of(&[("a", 500)]), t0).is_ok());
    assert!(limiter.check(&push_of(&[("a", 1)]), t0).is_err());
}

#[test]
fn streams_of_empty_lines_get_no_bucket() {
    let t0 = Instant::now();
    let mut limiter = RateLimiter::new(limits(), t0);
    let empties: Vec<(String, usize)> = (0..50).map(|i| (format!("e{i}"), 0)).collect();
    let mut streams: Vec<(&str, usize)> = empties.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    streams.push(("real", 10));
    assert!(limiter.check(&push_of(&streams), t0).is_ok());
    assert_eq!(limiter.tracked_streams(), 1);
}
