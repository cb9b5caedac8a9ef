//! XOR chunks held in a file instead of the heap: the head's completed chunks, which it writes
//! to its chunk files (`head/chunk_files.rs`), as Prometheus's head does with `chunks_head`.
//!
//! A [`DiskChunk`] is a 16-byte reference (file, offset, length, sample count) read back with
//! `pread` when it is iterated or loaded. Not a memory map, as first built: every page fault
//! in a mapping maps the 64 KiB around it (the kernel's fault-around, which `MADV_RANDOM`
//! does not turn off), so the alert rules' reads of a few hundred chunks made 6–8 MiB of the
//! file resident in the process, a block cut would map the whole file, and the pages stayed
//! mapped until released. `pread` copies just the chunk's bytes through the page cache, which
//! the kernel owns (docs/BENCHMARKS.md, "head chunk files read with pread, not mapped").
//!
//! A query's chunks are read together by [`load_all`]: sorted by file and offset, neighbours
//! (the chunks of a scrape are written side by side) come in one read of up to
//! [`READ_SPAN`] bytes, since a read per chunk made queries up to 70 % slower than the map.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::xor::XorChunk;
use crate::storage::ChunkData;
use crate::{Error, Result};

/// The most bytes [`load_all`] reads at once.
const READ_SPAN: usize = 1 << 20;

/// Bytes between two wanted chunks that [`load_all`] reads through rather than starting
/// another read (a system call each).
const READ_GAP: usize = 16 << 10;

/// A chunk file open for reading, its number among the head's chunk files, and its path for
/// error messages.
#[derive(Debug)]
pub(crate) struct ChunkFile {
    pub(crate) file: File,
    pub(crate) number: u32,
    pub(crate) path: PathBuf,
}

impl ChunkFile {
    /// Fills `buffer` from the file at `offset`.
    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> Result<()> {
        self.file
            .read_exact_at(buffer, offset)
            .map_err(|e| Error::io("reading a head chunk file", &self.path, e))
    }
}

/// An XOR chunk in a [`ChunkFile`].
#[derive(Clone, Debug)]
pub struct DiskChunk {
    pub(crate) file: Arc<ChunkFile>,
    pub(crate) offset: u32,
    pub(crate) len: u16,
    pub(crate) samples: u16,
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
            .read_exact_at(&mut bytes, u64::from(self.offset))?;
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

/// Reads every chunk on disk among `chunks` into memory (turning them into
/// [`ChunkData::Xor`]), in as few reads as [`READ_SPAN`] and [`READ_GAP`] allow. On an error,
/// the chunks read so far stay read and the rest stay on disk.
pub(crate) fn load_all<'a>(chunks: impl Iterator<Item = &'a mut ChunkData>) -> Result<()> {
    let mut wanted: Vec<(DiskChunk, &mut ChunkData)> = chunks
        .filter_map(|chunk| match chunk {
            ChunkData::Disk(disk) => Some((disk.clone(), chunk)),
            _ => None,
        })
        .collect();
    wanted.sort_unstable_by_key(|(disk, _)| (Arc::as_ptr(&disk.file), disk.offset));
    let mut buffer = Vec::new();
    let mut first = 0;
    while let Some((head, _)) = wanted.get(first) {
        let file = Arc::clone(&head.file);
        let start = head.offset as usize;
        let mut end = start + usize::from(head.len);
        let mut next = first + 1;
        while let Some((disk, _)) = wanted.get(next) {
            let (offset, len) = (disk.offset as usize, usize::from(disk.len));
            let joins = Arc::ptr_eq(&disk.file, &file)
                && offset <= end + READ_GAP
                && offset + len - start <= READ_SPAN;
            if !joins {
                break;
            }
            end = end.max(offset + len);
            next += 1;
        }
        buffer.resize(end - start, 0);
        file.read_exact_at(&mut buffer, start as u64)?;
        for (disk, data) in wanted.get_mut(first..next).unwrap_or_default() {
            let at = disk.offset as usize - start;
            if let Some(bytes) = buffer.get(at..at + usize::from(disk.len)) {
                **data = ChunkData::Xor(XorChunk::from_own_bytes(bytes.to_vec()));
            }
        }
        first = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::chunk::XorAppender;

    #[test]
    fn chunks_read_back_after_the_file_is_deleted_and_a_bad_range_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let written: Vec<(XorChunk, Vec<(i64, f64)>)> = (0..3)
            .map(|series| {
                let mut appender = XorAppender::new();
                let samples: Vec<(i64, f64)> = (0..120)
                    .map(|t| (t * 1000, f64::from(series) + t as f64 / 7.0))
                    .collect();
                for &(t, v) in &samples {
                    appender.append(t, v).unwrap();
                }
                (appender.finish(), samples)
            })
            .collect();
        let heap: Vec<XorChunk> = written.iter().map(|(chunk, _)| chunk.clone()).collect();
        let disk = file_of(dir.path(), "chunks", 0, &heap);
        std::fs::remove_file(dir.path().join("chunks")).unwrap();
        for (chunk, (_, samples)) in disk.iter().zip(&written) {
            assert_eq!(chunk.num_samples(), 120);
            assert_eq!(chunk.samples(), *samples, "read after the file is deleted");
            assert_eq!(chunk.read().unwrap().iter().collect::<Vec<_>>(), *samples);
        }
        let last = &disk[2];
        let end = last.offset + u32::from(last.len);
        let past_the_end = DiskChunk::new(Arc::clone(&last.file), end - 4, 5, 1);
        let err = past_the_end.read().unwrap_err();
        assert!(
            err.to_string().contains("reading a head chunk file"),
            "{err}"
        );
        assert!(past_the_end.samples().is_empty());
    }

    /// A chunk file of `chunks` with `gap` zero bytes before each, and the chunks in it.
    fn file_of(
        dir: &std::path::Path,
        name: &str,
        gap: usize,
        chunks: &[XorChunk],
    ) -> Vec<DiskChunk> {
        let path = dir.join(name);
        let mut file = File::options()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let mut offset = 0;
        let mut placed = Vec::new();
        for chunk in chunks {
            file.write_all(&vec![0; gap]).unwrap();
            offset += gap;
            file.write_all(chunk.bytes()).unwrap();
            placed.push((offset, chunk));
            offset += chunk.bytes().len();
        }
        let file = Arc::new(ChunkFile {
            file,
            number: 0,
            path,
        });
        placed
            .into_iter()
            .map(|(offset, chunk)| {
                DiskChunk::new(
                    Arc::clone(&file),
                    offset as u32,
                    chunk.bytes().len() as u16,
                    chunk.num_samples() as u16,
                )
            })
            .collect()
    }

    #[test]
    fn load_all_reads_neighbours_together_and_far_chunks_apart() {
        let chunk = |seed: i64| {
            let mut appender = XorAppender::new();
            for t in 0..120 {
                appender.append(t * 1000 + seed, (t * seed) as f64).unwrap();
            }
            appender.finish()
        };
        let heap: Vec<XorChunk> = (1..=8).map(chunk).collect();
        let dir = tempfile::tempdir().unwrap();
        // Side by side; past the gap; then far past the span; and a second file.
        let mut disk = file_of(dir.path(), "a", 0, &heap[0..3]);
        disk.extend(file_of(dir.path(), "b", READ_GAP * 2, &heap[3..5]));
        disk.extend(file_of(dir.path(), "c", READ_SPAN, &heap[5..7]));
        disk.extend(file_of(dir.path(), "d", 0, &heap[7..8]));
        // In a shuffled order, with a chunk already in memory among them.
        let mut data: Vec<ChunkData> = disk.into_iter().map(ChunkData::Disk).collect();
        data.reverse();
        data.swap(1, 5);
        data.insert(2, ChunkData::Xor(chunk(99)));
        let expected: Vec<Vec<(i64, f64)>> = data.iter().map(|c| c.iter().collect()).collect();

        load_all(data.iter_mut()).unwrap();
        for (loaded, expected) in data.iter().zip(&expected) {
            assert!(matches!(loaded, ChunkData::Xor(_)), "{loaded:?}");
            assert_eq!(loaded.iter().collect::<Vec<_>>(), *expected);
        }
    }
}
