//! Compressed sample chunks: the unit the head appends to and blocks persist.
//!
//! [`xor`] is the Gorilla-style float encoding Prometheus uses for float samples; [`columnar`]
//! the encoding blocks store by default, read in pieces. Byte layouts are in `tsdb/FORMAT.md`.

mod bits;
pub mod columnar;
pub mod xor;

pub use columnar::{ColumnarIter, ColumnarPiece};
pub use xor::{XorAppender, XorChunk, XorIter};
