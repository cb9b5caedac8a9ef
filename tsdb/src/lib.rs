//! Metric storage and the PromQL engine.
//!
//! Owns: the write-ahead log, the in-memory head (per-series compressed chunks and postings),
//! immutable blocks in RocksDB, retention, index queries and cardinality statistics, and the
//! PromQL evaluator over a storage trait.
//!
//! Never owns: HTTP, scraping, config parsing (it receives typed settings from
//! `sightline-core`), or anything about logs.
//!
//! Built so far: [`chunk`] (Gorilla/XOR sample chunks), [`wal`] (the segmented,
//! checksummed write-ahead log), [`head`] (the in-memory head: series, postings, appends,
//! WAL replay and checkpoints), [`block`] (immutable blocks in RocksDB, compaction and
//! retention) and [`promql`] (the PromQL engine over [`storage::Querier`]). On-disk layouts
//! are documented in `tsdb/FORMAT.md`. [`db`] puts head and blocks together.

pub mod block;
pub mod chunk;
pub mod db;
pub mod error;
pub mod head;
pub mod promql;
pub mod storage;
mod varint;
pub mod wal;

pub use error::{Error, Result};
