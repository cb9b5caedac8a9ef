//! Compressed sample chunks: the unit the head appends to and blocks persist.
//!
//! [`xor`] is the Gorilla-style float encoding Prometheus uses for float samples; [`columnar`]
//! the encoding blocks store by default, read in pieces; [`disk`] an XOR chunk the head
//! wrote to a file and reads back with `pread`. Byte layouts are in `tsdb/FORMAT.md`.

mod bits;
pub mod columnar;
pub mod disk;
pub mod xor;

pub use columnar::{ColumnarIter, ColumnarPiece};
pub(crate) use disk::ChunkFile;
pub use disk::DiskChunk;
pub use xor::{XorAppender, XorChunk, XorIter};
