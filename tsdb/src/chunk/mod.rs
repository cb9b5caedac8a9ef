//! Compressed sample chunks: the unit the head appends to and blocks persist.
//!
//! [`xor`] is the Gorilla-style float encoding Prometheus uses for float samples; [`columnar`]
//! the encoding blocks store by default, read in pieces; [`mapped`] an XOR chunk the head
//! wrote to a file and reads through a memory map. Byte layouts are in `tsdb/FORMAT.md`.

mod bits;
pub mod columnar;
pub mod mapped;
pub mod xor;

pub use columnar::{ColumnarIter, ColumnarPiece};
pub use mapped::MappedChunk;
pub(crate) use mapped::MappedFile;
pub use xor::{XorAppender, XorChunk, XorIter};
