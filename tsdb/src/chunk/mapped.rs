//! XOR chunks read from a memory-mapped file: the head's sealed chunks, which it writes out
//! (see `head/chunk_files.rs`) so that they take page cache, which the kernel can reclaim,
//! instead of heap, as Prometheus's head does with its `chunks_head` files.
//!
//! A [`MappedChunk`] is a shared handle on its file's mapping plus a byte range: cloning it
//! copies 16 bytes, and the mapping lives as long as any chunk of it does, even after the
//! file is deleted (Linux keeps an unlinked file's pages while they are mapped).

use std::fs::File;
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

use super::xor::{XorIter, sample_count};

/// A read-only mapping of a chunk file that is written by appending.
#[derive(Debug)]
pub(crate) struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    /// Maps `capacity` bytes of `file` read-only, beyond its current end: bytes appended later
    /// (up to `capacity`) are seen through the mapping without mapping again.
    ///
    /// Only bytes already written may be read: a page wholly past the end of the file faults.
    /// The head's chunk files make a [`MappedChunk`] only of a range they have written.
    pub(crate) fn map(file: &File, capacity: usize) -> std::io::Result<MappedFile> {
        // SAFETY: the file is the head's own (its directory is emptied at start and written
        // only by this process), appended to and never truncated or rewritten while mapped, so
        // the mapped bytes that are read — ranges written before they were handed out — never
        // change and never lie past the end of the file.
        #[allow(unsafe_code, reason = "memory maps have no safe constructor")]
        let map = unsafe { MmapOptions::new().len(capacity).map(file)? };
        Ok(MappedFile { map })
    }
}

/// An XOR chunk held in a [`MappedFile`].
#[derive(Clone, Debug)]
pub struct MappedChunk {
    file: Arc<MappedFile>,
    offset: u32,
    len: u32,
}

impl MappedChunk {
    /// The chunk at `offset..offset + len` of `file`, written there by an
    /// [`XorAppender`](super::XorAppender) before this is called (the head's chunk files hand
    /// out only such ranges). A range outside the mapping reads as an empty chunk.
    pub(crate) fn new(file: Arc<MappedFile>, offset: u32, len: u32) -> MappedChunk {
        MappedChunk { file, offset, len }
    }

    /// The chunk's encoded bytes (header included).
    pub fn bytes(&self) -> &[u8] {
        let start = self.offset as usize;
        self.file
            .map
            .get(start..start + self.len as usize)
            .unwrap_or_default()
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> usize {
        sample_count(self.bytes()).map_or(0, usize::from)
    }

    /// Iterates the samples in timestamp order.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::chunk::XorAppender;

    #[test]
    fn reads_chunks_appended_after_the_file_was_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create_new(dir.path().join("chunks")).unwrap();
        let mapped = Arc::new(MappedFile::map(&file, 1 << 20).unwrap());
        let mut offset = 0u32;
        let mut chunks = Vec::new();
        for series in 0..3 {
            let mut appender = XorAppender::new();
            let samples: Vec<(i64, f64)> = (0..120)
                .map(|t| (t * 1000, f64::from(series) + t as f64 / 7.0))
                .collect();
            for &(t, v) in &samples {
                appender.append(t, v).unwrap();
            }
            let bytes = appender.bytes().to_vec();
            file.write_all(&bytes).unwrap();
            let len = bytes.len() as u32;
            chunks.push((MappedChunk::new(Arc::clone(&mapped), offset, len), samples));
            offset += len;
        }
        drop(file);
        std::fs::remove_file(dir.path().join("chunks")).unwrap();
        for (chunk, samples) in &chunks {
            assert_eq!(chunk.num_samples(), 120);
            assert_eq!(
                chunk.iter().collect::<Vec<_>>(),
                *samples,
                "read after the file is deleted too"
            );
        }
        assert_eq!(
            MappedChunk::new(mapped, (1 << 20) - 4, 5).iter().count(),
            0,
            "outside the mapping"
        );
    }
}
