//! glibc malloc settings: fewer arenas, set first in `main` for every command, and free
//! pages given back while `serve` runs. Each lowered resident memory at no CPU cost the
//! benchmarks could measure (docs/BENCHMARKS.md).

use std::time::Duration;

/// Caps glibc's malloc at two arenas, unless `MALLOC_ARENA_MAX` says otherwise. glibc makes
/// up to eight per core, and each keeps what its threads freed: on the 2 GiB log benchmark
/// that was a third of the peak resident memory (docs/BENCHMARKS.md, 329 → 226 MB), at no
/// measured CPU cost. mimalloc and jemalloc measured 549 and 240 MB there.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[allow(unsafe_code, reason = "mallopt has no safe wrapper")]
    // SAFETY: called first in `main`, before any other thread exists; `mallopt` only sets a
    // tuning parameter of the allocator and takes plain integers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// How often [`spawn_trimmer`] gives free heap pages back.
const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Starts a thread that asks glibc every [`TRIM_INTERVAL`] to return the free pages in
/// the middle of its heaps (`malloc_trim(0)`), which it otherwise keeps mapped until reused:
/// creating series, decoding pushes and answering queries leave such holes, and a resident
/// set that only grows is what `/proc` and the kernel count against us. A trim walks the free
/// lists once; at 20 targets × 5,028 series its cost is within the benchmark's run-to-run
/// spread (docs/BENCHMARKS.md).
pub fn spawn_trimmer() {
    let spawned = std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_INTERVAL);
                sightline_ui::release_free_memory();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!("cannot start the heap trimming thread: {error}");
    }
}
