//! Compacts a stopped Sightline's metric block store fully and prints its size before and
//! after, with the samples it holds: `compact_blocks DATA/metrics/blocks`. Used by
//! `benches/block_bytes.py` to measure blocks as they settle (RocksDB's bottommost level),
//! next to the size right after they were cut.

// A command-line tool reports on stdout.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sightline_tsdb::block::BlockStore;

fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.blocks() * 512)
        .sum()
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: compact_blocks DATA/metrics/blocks");
        return ExitCode::FAILURE;
    };
    let before = dir_bytes(&dir);
    let result = BlockStore::open(&dir).and_then(|store| {
        store.compact_partitions()?;
        Ok(store.blocks().iter().map(|b| b.num_samples).sum::<u64>())
    });
    match result {
        Ok(samples) => {
            println!(
                "{{\"samples\": {samples}, \"bytes_before\": {before}, \"bytes_after\": {}}}",
                dir_bytes(&dir)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
