//! What the scraper's benchmarks share: a criterion measurement of the benchmark thread's CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`), because the build machines are shared and waiting for a
//! core is not work, and the bodies they are fed.

use std::time::Duration;

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};

/// The shared exposition fixtures, relative to the package root (where cargo runs benches).
const FIXTURES: &str = "../../shared/fixtures/exposition";

/// A file of the shared exposition fixtures.
pub fn fixture(rel: &str) -> String {
    let path = format!("{FIXTURES}/{rel}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// 100k series shaped like kube-state-metrics' `kube_pod_status_phase`.
pub fn ksm_like() -> String {
    let mut s = String::with_capacity(16 << 20);
    s.push_str("# HELP kube_pod_status_phase The pods current phase.\n");
    s.push_str("# TYPE kube_pod_status_phase gauge\n");
    for i in 0..100_000 {
        let phase = ["Pending", "Running", "Succeeded", "Failed", "Unknown"][i % 5];
        s.push_str(&format!(
            "kube_pod_status_phase{{namespace=\"ns-{}\",pod=\"app-{i}-7d9f8c6b5-x{i:05}\",uid=\"{:08x}-1c2d-4e5f-8a9b-{i:012}\",phase=\"{phase}\"}} {}\n",
            i % 40,
            i * 7919,
            u8::from(i % 5 == 1)
        ));
    }
    s
}

/// Criterion measurement: CPU time of the calling thread.
pub struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> cpu_time::ThreadTime {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, start: cpu_time::ThreadTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats nanoseconds of CPU time, and throughput in decimal MB/s or samples/s.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match ns {
            x if x < 1e3 => (1.0, "ns"),
            x if x < 1e6 => (1e-3, "µs"),
            x if x < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let (per_iter, div, unit) = match *t {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => (b as f64, 1e6, "MB/s"),
            Throughput::Elements(e) => (e as f64, 1e6, "Melem/s"),
            Throughput::Bits(b) => (b as f64, 1e6, "Mb/s"),
            Throughput::ElementsAndBytes { bytes, .. } => (bytes as f64, 1e6, "MB/s"),
        };
        values
            .iter_mut()
            .for_each(|v| *v = per_iter * (1e9 / *v) / div);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
