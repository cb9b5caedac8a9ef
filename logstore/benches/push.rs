//! Push decoding and validation throughput, in bytes of raw log lines per second.
//!
//! Bodies of ~1 MiB of raw lines shaped like `shared/bench/logs/loggen` output: its 50
//! streams (labels `app`, `container`, `namespace`, `pod`), each filled to its byte share by
//! the per-app weights of loggen's table, cycling through 40 real loggen lines per stream
//! (`data/loggen_sample.tsv.gz`, made with `loggen --sample 40`, seed 42: JSON, logfmt and
//! plain lines). Timestamps increase per stream and end at the bench's start, so validation
//! accepts everything, as in a healthy ingest.
//!
//! Each body format is measured next to a named baseline from the same run:
//! `snappy_only` (decompressing the block, the floor for protobuf), `snappy+prost_only`
//! (decompressing and decoding into prost's own structs, what our conversion adds to) and
//! `serde_json_ignored_any` (parsing the JSON without building anything, the floor for
//! JSON). Criterion's throughput is per raw line byte.
//!
//! Time is the benchmark thread's *CPU* time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the
//! figures are bytes per CPU-second, the unit of the ingest goal in the logstore issue, and
//! stay meaningful on a machine shared with other builds. `PUSH_BENCH_WALL=1` measures wall
//! time instead.
//!
//! Run: `cargo bench -p sightline-logstore --bench push`.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message as _;
use sightline_logstore::push::{
    self, DecodeLimits, Entry, PushLimits, PushRequest, PushStream, protobuf,
};

/// loggen's per-app byte weights (its `APPS` table).
const WEIGHTS: &[(&str, f64)] = &[
    ("ingress-nginx", 4.0),
    ("traefik", 4.0),
    ("pihole", 3.0),
    ("coredns", 2.0),
    ("grafana", 1.5),
    ("prometheus", 1.0),
    ("home-assistant", 1.5),
    ("nextcloud", 1.5),
    ("authelia", 1.5),
    ("jellyfin", 1.0),
    ("argocd-application-controller", 1.0),
    ("postgres", 1.0),
    ("zigbee2mqtt", 1.0),
    ("immich", 0.8),
    ("sonarr", 0.5),
    ("vaultwarden", 0.5),
    ("alertmanager", 0.3),
    ("redis", 0.3),
    ("cert-manager", 0.3),
];

const BODY_RAW_BYTES: f64 = (1 << 20) as f64;

/// Sample lines grouped by stream label string, in file order.
fn sample() -> Vec<(String, Vec<String>)> {
    let gz = include_bytes!("data/loggen_sample.tsv.gz");
    let mut text = String::new();
    if flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .is_err()
    {
        panic!("benches/data/loggen_sample.tsv.gz is not gzip text");
    }
    let mut order: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in text.lines() {
        let Some((labels, line)) = row.split_once('\t') else {
            continue;
        };
        let at = *index.entry(labels.to_owned()).or_insert_with(|| {
            order.push((labels.to_owned(), Vec::new()));
            order.len() - 1
        });
        order[at].1.push(line.to_owned());
    }
    order
}

fn weight(labels: &str) -> f64 {
    WEIGHTS
        .iter()
        .find(|(app, _)| labels.contains(&format!("app=\"{app}\"")))
        .map_or(1.0, |(_, w)| *w)
}

/// A ~1 MiB (raw line bytes) push ending at `now_ns`, and its raw line byte count.
fn request(now_ns: i64) -> (PushRequest, u64) {
    let streams = sample();
    let total_weight: f64 = streams.iter().map(|(labels, _)| weight(labels)).sum();
    let mut raw = 0u64;
    let mut out = Vec::new();
    for (labels, lines) in &streams {
        let quota = BODY_RAW_BYTES * weight(labels) / total_weight;
        let parsed = push::parse_label_text(labels).unwrap_or_default();
        let mut entries = Vec::new();
        let mut bytes = 0.0;
        let mut i = 0;
        while bytes < quota && !lines.is_empty() {
            let line = &lines[i % lines.len()];
            entries.push(Entry {
                timestamp_ns: 0,
                line: line.clone(),
                metadata: vec![],
            });
            bytes += line.len() as f64;
            raw += line.len() as u64;
            i += 1;
        }
        // One entry per millisecond, the last at `now`.
        let count = entries.len() as i64;
        for (k, entry) in entries.iter_mut().enumerate() {
            entry.timestamp_ns = now_ns - (count - k as i64) * 1_000_000;
        }
        out.push(PushStream {
            labels: sightline_core::labels::Labels::from_pairs(parsed),
            malformed_labels: None,
            entries,
        });
    }
    (PushRequest { streams: out }, raw)
}

/// The JSON body loggen sends for `request`.
fn json_body(request: &PushRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 << 20);
    out.extend_from_slice(b"{\"streams\":[");
    for (si, stream) in request.streams.iter().enumerate() {
        if si > 0 {
            out.push(b',');
        }
        let labels: serde_json::Map<String, serde_json::Value> = stream
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone().into()))
            .collect();
        out.extend_from_slice(b"{\"stream\":");
        serde_json::to_writer(&mut out, &labels).unwrap_or_default();
        out.extend_from_slice(b",\"values\":[");
        for (j, entry) in stream.entries.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(format!("[\"{}\",", entry.timestamp_ns).as_bytes());
            serde_json::to_writer(&mut out, &entry.line).unwrap_or_default();
            out.push(b']');
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    out
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn decode_validate(body: &[u8], content_type: &str, encoding: Option<&str>) -> usize {
    let limits = PushLimits::default();
    match push::decode(body, Some(content_type), encoding, &DecodeLimits::default()) {
        Ok(request) => push::validate(request, &limits, SystemTime::now()).accepted_entries,
        Err(e) => panic!("bench body failed to decode: {e}"),
    }
}

/// CPU time of the calling thread, or wall time with `PUSH_BENCH_WALL=1`.
struct ThreadCpuTime {
    wall: WallTime,
    use_wall: bool,
}

impl ThreadCpuTime {
    fn now(&self) -> std::time::Duration {
        if self.use_wall {
            return SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
        }
        thread_cpu_time()
    }
}

#[allow(unsafe_code, reason = "clock_gettime has no safe wrapper in std")]
fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = std::time::Duration;
    type Value = std::time::Duration;

    fn start(&self) -> Self::Intermediate {
        self.now()
    }

    fn end(&self, start: Self::Intermediate) -> Self::Value {
        self.now().saturating_sub(start)
    }

    fn add(&self, v1: &Self::Value, v2: &Self::Value) -> Self::Value {
        *v1 + *v2
    }

    fn zero(&self) -> Self::Value {
        std::time::Duration::ZERO
    }

    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as for wall time.
        self.wall.formatter()
    }
}

fn measurement() -> Criterion<ThreadCpuTime> {
    Criterion::default().with_measurement(ThreadCpuTime {
        wall: WallTime,
        use_wall: std::env::var_os("PUSH_BENCH_WALL").is_some(),
    })
}

fn bench(c: &mut Criterion<ThreadCpuTime>) {
    let now = now_ns();
    let (request, raw) = request(now);
    let protobuf_body = protobuf::encode(&request);
    let json = json_body(&request);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json).unwrap_or_default();
    let json_gzip = gz.finish().unwrap_or_default();
    let entries: usize = request.streams.iter().map(|s| s.entries.len()).sum();
    eprintln!(
        "push bench: {} streams, {entries} entries, {raw} raw line bytes; protobuf+snappy body \
         {} B, JSON body {} B, JSON+gzip body {} B",
        request.streams.len(),
        protobuf_body.len(),
        json.len(),
        json_gzip.len()
    );
    // Every body is fully accepted.
    assert_eq!(
        decode_validate(&protobuf_body, "application/x-protobuf", None),
        entries
    );
    assert_eq!(decode_validate(&json, "application/json", None), entries);

    let mut group = c.benchmark_group("push");
    group.throughput(Throughput::Bytes(raw));
    group.sample_size(30);
    group.bench_function("protobuf_snappy/snappy_only (baseline)", |b| {
        b.iter(|| {
            snap::raw::Decoder::new()
                .decompress_vec(black_box(&protobuf_body))
                .map(|v| v.len())
                .unwrap_or(0)
        })
    });
    group.bench_function("protobuf_snappy/snappy+prost_only (baseline)", |b| {
        b.iter(|| {
            snap::raw::Decoder::new()
                .decompress_vec(black_box(&protobuf_body))
                .ok()
                .and_then(|raw| protobuf::logproto::PushRequest::decode(&raw[..]).ok())
                .map(|m| m.streams.len())
                .unwrap_or(0)
        })
    });
    group.bench_function("protobuf_snappy/decode", |b| {
        b.iter(|| {
            protobuf::decode(black_box(&protobuf_body), 64 << 20)
                .map(|r| r.streams.len())
                .unwrap_or(0)
        })
    });
    group.bench_function("protobuf_snappy/decode+validate", |b| {
        b.iter(|| decode_validate(black_box(&protobuf_body), "application/x-protobuf", None))
    });
    group.bench_function("json/serde_json_ignored_any (baseline)", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&json)).is_ok())
    });
    group.bench_function("json/decode", |b| {
        b.iter(|| {
            push::json::decode(black_box(&json))
                .map(|r| r.streams.len())
                .unwrap_or(0)
        })
    });
    group.bench_function("json/decode+validate", |b| {
        b.iter(|| decode_validate(black_box(&json), "application/json", None))
    });
    group.bench_function("json_gzip/decode+validate", |b| {
        b.iter(|| decode_validate(black_box(&json_gzip), "application/json", Some("gzip")))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = measurement();
    targets = bench
}
criterion_main!(benches);
