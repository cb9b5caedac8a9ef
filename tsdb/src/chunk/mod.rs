//! Compressed sample chunks: the unit the head appends to and blocks persist.
//!
//! [`xor`] is the Gorilla-style float encoding Prometheus uses for float samples; its byte
//! layout is in `tsdb/FORMAT.md`.

mod bits;
pub mod xor;

pub use xor::{XorAppender, XorChunk, XorIter};
