//! The memory ceiling (`limits.memory_ceiling`): bulk pushes — Loki push and remote write —
//! are refused with 429 and `Retry-After` while admitting one more would take the process's
//! resident memory past the ceiling, so that a flood of pushes meets back-pressure instead
//! of the out-of-memory killer. Agents (Promtail, Alloy, Prometheus) retry a 429 later, and
//! nothing is acknowledged that was not stored.
//!
//! A push is admitted when the resident memory read from `/proc`, plus what the pushes
//! already admitted may still allocate, plus what this one may allocate, stays under the
//! ceiling. What a push may allocate is estimated from its `Content-Length`
//! ([`BYTES_PER_BODY_BYTE`]; a body without a length counts as one of
//! `limits.request_body_size`). One push is always admitted while none is in flight and
//! the resident memory is under the ceiling, so that a large push still goes through.
//!
//! Freed memory is not always given back to the kernel (glibc keeps it in its arenas), so
//! before refusing, the allocator is asked to return free pages, at most once a second.
//! Scrapes and tailed files are not governed: their volume is fixed by the configuration.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use prometheus::{IntCounter, Registry};
use sightline_core::byte_size::ByteSize;

use crate::server::AppState;

/// Memory a push may take per byte of its body: the body itself, the decoded request, the
/// validated copy of its entries and the WAL record. Measured: eight 8 MiB JSON pushes at
/// once took 300 MiB over the idle process (`tests/overload.rs`). Compressed bodies decode to
/// more, which the resident memory read at the next admission then shows.
const BYTES_PER_BODY_BYTE: u64 = 5;

/// How long a refused pusher is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Least time between two attempts to give freed memory back to the kernel.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Least time between two warnings about refused pushes.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// The pushes in flight and what they may allocate; shared by every request.
#[derive(Clone)]
pub(crate) struct MemoryCeiling {
    admissions: Arc<Mutex<Admissions>>,
    refused: IntCounter,
}

#[derive(Default)]
struct Admissions {
    /// Bytes the admitted pushes still in flight may allocate.
    reserved: u64,
    /// Pushes in flight.
    in_flight: usize,
    last_trim: Option<Instant>,
    last_warning: Option<Instant>,
}

/// An admitted push's reservation, released when the push has been answered.
pub(crate) struct Reservation {
    admissions: Arc<Mutex<Admissions>>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut admissions = self.admissions.lock().unwrap_or_else(|e| e.into_inner());
        admissions.reserved = admissions.reserved.saturating_sub(self.bytes);
        admissions.in_flight = admissions.in_flight.saturating_sub(1);
    }
}

/// Why a push was refused: the figures the decision was made on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OverCeiling {
    resident: u64,
    reserved: u64,
    needed: u64,
    ceiling: u64,
}

impl std::fmt::Display for OverCeiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        write!(
            f,
            "memory ceiling reached: {:.1} MiB resident and {:.1} MiB reserved by pushes in \
             flight, plus {:.1} MiB for this push, would pass limits.memory_ceiling ({}); retry \
             later",
            mib(self.resident),
            mib(self.reserved),
            mib(self.needed),
            ByteSize(self.ceiling)
        )
    }
}

impl MemoryCeiling {
    /// No pushes in flight; registers `sightline_memory_ceiling_refused_pushes_total`.
    pub(crate) fn register(registry: &Registry) -> prometheus::Result<MemoryCeiling> {
        let refused = IntCounter::new(
            "sightline_memory_ceiling_refused_pushes_total",
            "Pushes (Loki push, remote write) answered 429 because admitting them would have \
             passed limits.memory_ceiling.",
        )?;
        registry.register(Box::new(refused.clone()))?;
        Ok(MemoryCeiling {
            admissions: Arc::default(),
            refused,
        })
    }

    /// Admits a push whose body may allocate `needed` bytes under `ceiling`, reading the
    /// resident memory with `resident` (and again after giving free pages back, if over).
    fn admit(
        &self,
        ceiling: u64,
        needed: u64,
        resident: impl Fn() -> Option<u64>,
    ) -> Result<Reservation, OverCeiling> {
        let mut admissions = self.admissions.lock().unwrap_or_else(|e| e.into_inner());
        // Where /proc cannot be read, the ceiling cannot be kept: admit.
        let mut resident_now = resident().unwrap_or(0);
        let fits = |admissions: &Admissions, resident: u64| {
            resident < ceiling
                && (admissions.in_flight == 0
                    || resident
                        .saturating_add(admissions.reserved)
                        .saturating_add(needed)
                        <= ceiling)
        };
        if !fits(&admissions, resident_now)
            && admissions
                .last_trim
                .is_none_or(|last| last.elapsed() >= TRIM_INTERVAL)
        {
            admissions.last_trim = Some(Instant::now());
            release_free_memory();
            resident_now = resident().unwrap_or(0);
        }
        if !fits(&admissions, resident_now) {
            return Err(OverCeiling {
                resident: resident_now,
                reserved: admissions.reserved,
                needed,
                ceiling,
            });
        }
        admissions.reserved = admissions.reserved.saturating_add(needed);
        admissions.in_flight += 1;
        Ok(Reservation {
            admissions: Arc::clone(&self.admissions),
            bytes: needed,
        })
    }

    /// Counts a refusal, and logs it unless one was logged in the last ten seconds.
    fn refuse(&self, over: &OverCeiling) {
        self.refused.inc();
        let mut admissions = self.admissions.lock().unwrap_or_else(|e| e.into_inner());
        if admissions
            .last_warning
            .is_none_or(|last| last.elapsed() >= WARNING_INTERVAL)
        {
            admissions.last_warning = Some(Instant::now());
            tracing::warn!("refusing pushes with 429: {over}");
        }
    }
}

/// The process's resident memory in bytes, from `/proc/self/statm` (its second field, in
/// pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(u64::try_from(rustix::param::page_size()).ok()?))
}

/// Asks glibc's allocator to give the free pages of its arenas back to the kernel: the one
/// wrapper of `malloc_trim`, used by the ceiling, `/flush` and the binary's periodic trimmer.
pub fn release_free_memory() {
    #[allow(unsafe_code, reason = "malloc_trim has no safe wrapper")]
    // SAFETY: `malloc_trim` takes a plain integer and only releases memory that no
    // allocation uses; glibc makes it safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Middleware for the push routes: admits the push under `limits.memory_ceiling` (`0`: no
/// ceiling) or answers 429 with `Retry-After` and the reason.
pub(crate) async fn admit_push(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = state.config.current().limits.clone();
    let ceiling = limits.memory_ceiling.bytes();
    if ceiling == 0 {
        return next.run(request).await;
    }
    let body_bytes = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(limits.request_body_size.bytes());
    let needed = body_bytes.saturating_mul(BYTES_PER_BODY_BYTE);
    match state.memory_ceiling.admit(ceiling, needed, resident_bytes) {
        Ok(reservation) => {
            let response = next.run(request).await;
            drop(reservation);
            response
        }
        Err(over) => {
            state.memory_ceiling.refuse(&over);
            discard_body(request).await;
            let mut response = (StatusCode::TOO_MANY_REQUESTS, format!("{over}\n")).into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER.as_secs()),
            );
            response
        }
    }
}

/// Reads the body of a refused push chunk by chunk and drops it, so that the pusher, still
/// sending, gets the answer rather than a broken connection. Nothing is kept.
async fn discard_body(request: Request) {
    let mut body = request.into_body();
    while let Some(Ok(_)) = body.frame().await {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn ceiling() -> MemoryCeiling {
        MemoryCeiling::register(&Registry::new()).expect("registers")
    }

    #[test]
    fn admits_while_reservations_fit_and_releases_them_when_answered() {
        let ceiling = ceiling();
        let resident = || Some(60 * MIB);
        let first = ceiling.admit(100 * MIB, 30 * MIB, resident).expect("fits");
        let refused = ceiling
            .admit(100 * MIB, 20 * MIB, resident)
            .err()
            .expect("60 + 30 + 20 passes 100");
        assert_eq!(
            refused,
            OverCeiling {
                resident: 60 * MIB,
                reserved: 30 * MIB,
                needed: 20 * MIB,
                ceiling: 100 * MIB
            }
        );
        assert!(refused.to_string().contains("limits.memory_ceiling"));
        let second = ceiling.admit(100 * MIB, 10 * MIB, resident).expect("fits");
        drop((first, second));
        ceiling
            .admit(100 * MIB, 40 * MIB, resident)
            .expect("everything was released");
    }

    #[test]
    fn one_push_goes_through_alone_but_none_over_the_ceiling() {
        let ceiling = ceiling();
        let large = ceiling
            .admit(100 * MIB, 500 * MIB, || Some(60 * MIB))
            .expect("alone, under the ceiling");
        assert!(ceiling.admit(100 * MIB, MIB, || Some(60 * MIB)).is_err());
        drop(large);
        assert!(ceiling.admit(100 * MIB, MIB, || Some(100 * MIB)).is_err());
    }
}
