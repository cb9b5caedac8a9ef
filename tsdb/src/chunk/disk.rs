//! XOR chunks held in a file instead of the heap: the head's completed chunks, which it writes
//! to its chunk files (`head/chunk_files.rs`), as Prometheus's head does with `chunks_head`.
//!
//! A [`DiskChunk`] is a 16-byte reference (file, offset, length, sample count) read back with
//! `pread` when it is iterated or loaded. Not a memory map, as first built: every page fault
//! in a mapping maps the 64 KiB around it (the kernel's fault-around, which `MADV_RANDOM`
//! does not turn off), so the alert rules' reads of a few hundred chunks made 6–8 MiB of the
//! file resident in the process, a block cut would map the whole file, and the pages stayed
//! mapped until released. `pread` copies just the chunk's bytes through the page cache, which
//! the kernel owns (docs/BENCHMARKS.md, "completed head chunks read with pread").

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::xor::XorChunk;
use crate::{Error, Result};

/// A chunk file open for reading, and its path for error messages.
#[derive(Debug)]
pub(crate) struct ChunkFile {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
}

/// An XOR chunk in a [`ChunkFile`].
#[derive(Clone, Debug)]
pub struct DiskChunk {
    file: Arc<ChunkFile>,
    offset: u32,
    len: u16,
    samples: u16,
}

impl DiskChunk {
    /// The chunk of `samples` samples at `offset..offset + len` of `file`, written there from
    /// an [`XorAppender`](super::XorAppender)'s bytes before this is called.
    pub(crate) fn new(file: Arc<ChunkFile>, offset: u32, len: u16, samples: u16) -> DiskChunk {
        DiskChunk {
            file,
            offset,
            len,
            samples,
        }
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> usize {
        usize::from(self.samples)
    }

    /// Reads the chunk into memory.
    pub fn read(&self) -> Result<XorChunk> {
        let mut bytes = vec![0; usize::from(self.len)];
        self.file
            .file
            .read_exact_at(&mut bytes, u64::from(self.offset))
            .map_err(|e| Error::io("reading a head chunk file", &self.file.path, e))?;
        Ok(XorChunk::from_own_bytes(bytes))
    }

    /// The samples in timestamp order. A chunk that cannot be read (an IO error on the head's
    /// own file) reads as empty, with a warning: iteration cannot fail, and the paths that
    /// must not lose samples (block cuts, truncation) use [`DiskChunk::read`] instead.
    pub(crate) fn samples(&self) -> Vec<(i64, f64)> {
        match self.read() {
            Ok(chunk) => {
                let mut samples = Vec::with_capacity(self.num_samples());
                samples.extend(chunk.iter());
                samples
            }
            Err(e) => {
                tracing::warn!(error = %e, "a head chunk could not be read; a query misses its samples");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::chunk::XorAppender;

    #[test]
    fn chunks_read_back_after_the_file_is_deleted_and_a_bad_range_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks");
        let mut file = File::options()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let mut offset = 0u32;
        let mut written = Vec::new();
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
            written.push((offset, bytes.len() as u16, samples));
            offset += bytes.len() as u32;
        }
        let file = Arc::new(ChunkFile {
            file,
            path: path.clone(),
        });
        std::fs::remove_file(&path).unwrap();
        for (offset, len, samples) in &written {
            let chunk = DiskChunk::new(Arc::clone(&file), *offset, *len, 120);
            assert_eq!(chunk.num_samples(), 120);
            assert_eq!(chunk.samples(), *samples, "read after the file is deleted");
            assert_eq!(chunk.read().unwrap().iter().collect::<Vec<_>>(), *samples);
        }
        let past_the_end = DiskChunk::new(file, offset - 4, 5, 1);
        let err = past_the_end.read().unwrap_err();
        assert!(
            err.to_string().contains("reading a head chunk file"),
            "{err}"
        );
        assert!(past_the_end.samples().is_empty());
    }
}
