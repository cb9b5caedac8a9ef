//! Log storage and the LogQL engine.
//!
//! Owns: decoding of Loki push bodies (JSON, protobuf + snappy), the log WAL, per-stream
//! chunks, the label → stream index, the line token index, day-partitioned retention, and the
//! LogQL evaluator over a stream-reader trait.
//!
//! Never owns: HTTP routing or status codes, file tailing (that is `sightline-scraper`), or
//! anything about metrics.

pub mod error;
pub mod logql;
pub mod push;
pub mod store;

pub use error::{Error, ErrorKind};
