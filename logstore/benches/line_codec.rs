//! The line column's split (at a cut) and join (at every read that needs lines), against
//! zstd over the plain lines, the store's codec before the split; per-thread CPU time per
//! GiB of raw lines, and packed bytes per raw byte.
//!
//! Input: `loggen --sample N` output (labels TAB line, N lines per stream), whose entry
//! timestamps loggen sets to `--end` minus one second plus the line's number in its stream
//! (in ns): the bench gives each line that timestamp, so lines spell their entry's time as
//! in a push. Each stream's lines are cut into chunks of [`CHUNK_BYTES`] raw bytes.
//!
//! ```text
//! loggen --sample 20000 --seed 42 --end 1765100000 > /tmp/loggen_20000.tsv
//! LOGSTORE_BENCH_SAMPLE=/tmp/loggen_20000.tsv LOGSTORE_BENCH_END=1765100000 \
//!   cargo bench --workspace --bench line_codec
//! ```
//!
//! The figures go to stderr. `LOGSTORE_BENCH_REPS` (default 3) runs each phase that often; the fastest is reported.

use std::collections::HashMap;
use std::time::Duration;

use cpu_time::ThreadTime;
use sightline_logstore::store::line_codec::{self, LineCodec};

/// Raw line bytes per chunk: the store's default chunk target.
const CHUNK_BYTES: usize = 1_572_864;
/// zstd level: the store's default.
const LEVEL: i32 = 1;

/// One chunk's entries: timestamps and lines.
#[derive(Default)]
struct Chunk {
    timestamps: Vec<i64>,
    lines: Vec<Vec<u8>>,
    raw: usize,
}

impl Chunk {
    fn entries(&self) -> impl Iterator<Item = (i64, &[u8])> {
        self.timestamps
            .iter()
            .copied()
            .zip(self.lines.iter().map(Vec::as_slice))
    }
}

fn env(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name} to {what} (see the bench's doc)"))
}

fn load() -> Vec<Chunk> {
    let path = env("LOGSTORE_BENCH_SAMPLE", "a `loggen --sample N` file");
    let end: i64 = env("LOGSTORE_BENCH_END", "the `--end` loggen was given")
        .parse()
        .unwrap_or_else(|e| panic!("LOGSTORE_BENCH_END: {e}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let first_ns = (end - 1) * 1_000_000_000;
    let mut streams: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut order = Vec::new();
    for row in text.lines() {
        let Some((labels, line)) = row.split_once('\t') else {
            continue;
        };
        streams
            .entry(labels)
            .or_insert_with(|| {
                order.push(labels);
                Vec::new()
            })
            .push(line);
    }
    let mut chunks = Vec::new();
    for labels in order {
        let mut chunk = Chunk::default();
        for (number, line) in (0..).zip(&streams[labels]) {
            chunk.timestamps.push(first_ns + number);
            chunk.lines.push(line.as_bytes().to_vec());
            chunk.raw += line.len();
            if chunk.raw >= CHUNK_BYTES {
                chunks.push(std::mem::take(&mut chunk));
            }
        }
        if chunk.raw > 0 {
            chunks.push(chunk);
        }
    }
    chunks
}

/// The fastest of `reps` runs of `phase`, by this thread's CPU time.
fn fastest(reps: usize, mut phase: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let started = ThreadTime::now();
            phase();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Packs and unpacks every chunk one way, checks the lines come back, and prints the CPU per
/// GiB of raw lines of each phase and the packed bytes per raw byte.
fn measure(
    name: &str,
    chunks: &[Chunk],
    reps: usize,
    pack: impl Fn(&mut LineCodec, &Chunk, &mut Vec<u8>),
    unpack: impl Fn(&[u8], &Chunk) -> Vec<u8>,
) {
    let raw: usize = chunks.iter().map(|c| c.raw).sum();
    let mut codec = LineCodec::new(LEVEL);
    let mut stored: Vec<Vec<u8>> = chunks.iter().map(|_| Vec::new()).collect();
    let packing = fastest(reps, || {
        for (chunk, out) in chunks.iter().zip(&mut stored) {
            pack(&mut codec, chunk, out);
        }
    });
    for (chunk, out) in chunks.iter().zip(&stored) {
        assert!(
            unpack(out, chunk) == chunk.lines.concat(),
            "{name}: lines did not come back"
        );
    }
    let unpacking = fastest(reps, || {
        for (chunk, out) in chunks.iter().zip(&stored) {
            std::hint::black_box(unpack(out, chunk));
        }
    });
    let per_gib = |time: Duration| time.as_secs_f64() * f64::from(1u32 << 30) / raw as f64;
    let packed: usize = stored.iter().map(Vec::len).sum();
    eprintln!(
        "{name:6} pack {:6.2} s/GiB  unpack {:6.2} s/GiB  bytes/raw {:.4}",
        per_gib(packing),
        per_gib(unpacking),
        packed as f64 / raw as f64
    );
}

fn main() {
    let chunks = load();
    let reps: usize = std::env::var("LOGSTORE_BENCH_REPS")
        .ok()
        .and_then(|reps| reps.parse().ok())
        .unwrap_or(3);
    let raw: usize = chunks.iter().map(|c| c.raw).sum();
    eprintln!(
        "{} chunks, {} lines, {:.1} MiB raw; CPU per GiB of raw lines, fastest of {reps}",
        chunks.len(),
        chunks.iter().map(|c| c.lines.len()).sum::<usize>(),
        raw as f64 / f64::from(1u32 << 20)
    );
    measure(
        "plain",
        &chunks,
        reps,
        |codec, chunk, out| {
            codec
                .pack_plain(chunk.entries(), out)
                .unwrap_or_else(|e| panic!("pack plain: {e}"))
        },
        |stored, chunk| {
            line_codec::unpack_plain(stored, chunk.raw)
                .unwrap_or_else(|e| panic!("unpack plain: {e}"))
        },
    );
    measure(
        "split",
        &chunks,
        reps,
        |codec, chunk, out| {
            codec
                .pack_split(chunk.entries(), out)
                .unwrap_or_else(|e| panic!("pack split: {e}"))
        },
        |stored, chunk| {
            line_codec::unpack_split(stored, &chunk.timestamps, chunk.raw)
                .unwrap_or_else(|e| panic!("unpack split: {e}"))
        },
    );
}
