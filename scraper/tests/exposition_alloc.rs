//! The parser's steady state does not allocate: a second body parsed with a reused
//! [`Parser`] (after [`Parser::reset`]) makes no heap allocation at all, in either format.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to the
// system allocator.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sightline_scraper::exposition::{Entry, Format, Parser, Validation};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The shared fixtures, relative to the package root (where cargo runs tests).
const FIXTURES: &str = "../../shared/fixtures/exposition";

fn drain(p: &mut Parser<'_>) -> (usize, f64) {
    let (mut n, mut sum) = (0, 0.0);
    while let Some(e) = p.next_entry() {
        if let Entry::Sample(s) = e.unwrap() {
            n += 1;
            sum += s.value + s.series.len() as f64;
            for l in s.labels {
                sum += l.value.len() as f64;
            }
        }
    }
    (n, sum)
}

#[test]
fn reused_parser_does_not_allocate() {
    let text = std::fs::read_to_string(format!("{FIXTURES}/node_exporter.prom")).unwrap();
    let page = std::fs::read_to_string(format!(
        "{FIXTURES}/prometheus-textparse/alltypes.237mfs.prom.txt"
    ))
    .unwrap();
    let om = std::fs::read_to_string(format!(
        "{FIXTURES}/prometheus-textparse/alltypes.5mfs.om.txt"
    ))
    .unwrap();

    let mut p = Parser::new(&text, Format::PrometheusText).validation(Validation::Prometheus);
    // Warm-up: buffers grow to the longest line, the OpenMetrics sets to their size.
    for (body, format) in [
        (&text, Format::PrometheusText),
        (&page, Format::PrometheusText),
        (&om, Format::OpenMetrics),
    ] {
        p.reset(body, format);
        drain(&mut p);
    }
    for (body, format, samples) in [
        (&text, Format::PrometheusText, 507),
        (&page, Format::PrometheusText, 1857),
        (&om, Format::OpenMetrics, 53),
    ] {
        let before = ALLOCS.load(Ordering::Relaxed);
        p.reset(body, format);
        let (n, _) = drain(&mut p);
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        assert_eq!(n, samples);
        assert_eq!(
            allocs, 0,
            "{format:?}: {allocs} allocations for {n} samples"
        );
    }
}
