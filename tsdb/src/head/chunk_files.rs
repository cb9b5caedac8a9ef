//! The head's chunk files: sealed XOR chunks written out of the heap and read back when a
//! query or a block cut needs them, so that a series' memory does not grow with the samples
//! the head holds.
//!
//! Follows Prometheus's head chunks (`tsdb/chunks/head_chunks.go`, the `chunks_head`
//! directory): a sealed chunk is appended to the newest file and the series keeps a
//! [`DiskChunk`] (file, offset, length, sample count) in place of the bytes. The file's pages
//! are the kernel's page cache, which it can drop under pressure (they are clean copies of
//! the file), not the process's memory.
//!
//! A series lists its chunks by file number (`head/chunk_list.rs`); the [`FileRegistry`] turns
//! those into the open files for the readers.
//!
//! Layout: `<head dir>/chunks_head/NNNNNNNN`, numbered from 1, each the raw bytes of XOR
//! chunks back to back (no header: the WAL, not these files, makes the head durable). A file
//! is closed once the next batch would take it past [`FILE_BYTES`].
//!
//! Edge cases decided:
//! - The directory is emptied when the head opens: WAL replay rebuilds the head, and writes
//!   its sealed chunks anew.
//! - Nothing is fsynced: a crash loses the files, which the next start deletes anyway.
//! - A failed write (e.g. a full disk) leaves the batch's chunks in memory, logs a warning, and
//!   starts a new file for the next batch (the failed one's length is then unknown).
//! - A chunk longer than 64 KiB (none is: 179 samples take at most ~3.3 KB) is an error
//!   like a failed write.
//! - A file is deleted when every chunk in it ends before the head's truncation time; chunks
//!   still held by a query keep it open, and so readable, until they are dropped.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::chunk_list::ChunkPlace;
use crate::chunk::{ChunkFile, DiskChunk, XorChunk};
use crate::storage::{ChunkData, ChunkMeta};
use crate::{Error, Result};

/// Size at which a chunk file is closed: 128 MiB, Prometheus's head chunk file size.
pub(crate) const FILE_BYTES: u32 = 128 << 20;

/// The most bytes one write takes, so that a batch of thousands of chunks (a scrape's worth
/// completing together) does not need a buffer of its size.
const WRITE_BYTES: usize = 256 << 10;

/// The head's chunk files: the one being appended to, and the closed ones still in use.
#[derive(Debug)]
pub(crate) struct ChunkFiles {
    dir: PathBuf,
    /// Closed files by number.
    closed: BTreeMap<u32, Written>,
    /// Where the next batch goes; `None` before the first write and after a failed one.
    current: Option<OpenFile>,
    next_number: u32,
    file_bytes: u32,
    /// The batch being written, reused between batches.
    buffer: Vec<u8>,
    /// The files in use, by number, for the readers.
    registry: FileRegistry,
}

/// The chunk files in use, by number: what a series' chunk list refers to. Shared by the
/// writer ([`ChunkFiles`]), which adds and deletes files, and the readers, which turn a
/// listed chunk into a readable one through a [`FileReader`]. Its lock is held for a map
/// operation only and never while taking another, so readers may look up files while they
/// hold a series' lock.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileRegistry(Arc<RwLock<BTreeMap<u32, Arc<ChunkFile>>>>);

impl FileRegistry {
    fn files(&self) -> RwLockReadGuard<'_, BTreeMap<u32, Arc<ChunkFile>>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn files_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<u32, Arc<ChunkFile>>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A reader of listed chunks: a copy of the registry, refreshed when a chunk names a file
    /// created since.
    pub(crate) fn reader(&self) -> FileReader<'_> {
        FileReader {
            registry: self,
            files: BTreeMap::new(),
        }
    }
}

/// Turns listed chunks into readable ones; see [`FileRegistry::reader`].
#[derive(Debug)]
pub(crate) struct FileReader<'a> {
    registry: &'a FileRegistry,
    files: BTreeMap<u32, Arc<ChunkFile>>,
}

impl FileReader<'_> {
    /// The chunk at `place`, or `None` with a warning if its file is no longer in use — which
    /// cannot happen to a listed chunk: a file is deleted only after truncation dropped every
    /// chunk in it from the lists.
    pub(crate) fn chunk(&mut self, place: &ChunkPlace) -> Option<ChunkMeta> {
        if !self.files.contains_key(&place.file) {
            self.files.clone_from(&self.registry.files());
        }
        let Some(file) = self.files.get(&place.file) else {
            tracing::warn!(
                file = place.file,
                "a head chunk names a deleted chunk file; a query misses its samples"
            );
            return None;
        };
        let disk = DiskChunk::new(Arc::clone(file), place.offset, place.len, place.samples);
        Some(ChunkMeta {
            min_time: place.min_time,
            max_time: place.max_time,
            chunk: ChunkData::Disk(disk),
        })
    }
}

/// A chunk file, shared with the chunks in it, and the newest sample in it.
#[derive(Debug)]
struct Written {
    file: Arc<ChunkFile>,
    max_time: i64,
}

/// The file being appended to.
#[derive(Debug)]
struct OpenFile {
    contents: Written,
    written: u32,
}

impl ChunkFiles {
    /// Opens `dir` (created if missing) after deleting every file in it.
    pub(crate) fn open(dir: PathBuf) -> Result<ChunkFiles> {
        Self::with_file_bytes(dir, FILE_BYTES)
    }

    /// [`ChunkFiles::open`] with files closed at `file_bytes` (tests use small ones).
    pub(crate) fn with_file_bytes(dir: PathBuf, file_bytes: u32) -> Result<ChunkFiles> {
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .map_err(|e| Error::io("emptying the head chunk directory", &dir, e))?;
        }
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io("creating the head chunk directory", &dir, e))?;
        Ok(ChunkFiles {
            dir,
            closed: BTreeMap::new(),
            current: None,
            next_number: 1,
            file_bytes,
            buffer: Vec::new(),
            registry: FileRegistry::default(),
        })
    }

    /// The registry of the files in use, for readers of the series' chunk lists.
    pub(crate) fn registry(&self) -> &FileRegistry {
        &self.registry
    }

    /// Writes `chunks` (each with its newest timestamp) and returns them as chunks on disk, in
    /// order. On an error nothing is returned and the caller keeps the chunks in memory.
    pub(crate) fn write(&mut self, chunks: &[(XorChunk, i64)]) -> Result<Vec<DiskChunk>> {
        let mut on_disk = Vec::with_capacity(chunks.len());
        let mut rest = chunks;
        while let Some((first, _)) = rest.first() {
            let first_len = first.bytes().len();
            let mut open = match self.current.take() {
                Some(open) if fits(open.written, first_len, self.file_bytes) => open,
                full => {
                    if let Some(full) = full {
                        self.close(full);
                    }
                    self.create()?
                }
            };
            match open.append(rest, self.file_bytes, &mut self.buffer, &mut on_disk) {
                Ok(taken) => {
                    rest = &rest[taken..];
                    self.current = Some(open);
                }
                Err(e) => {
                    let path = open.contents.file.path.clone();
                    self.close(open);
                    return Err(Error::io("writing a head chunk file", path, e));
                }
            }
        }
        Ok(on_disk)
    }

    /// Creates the next file, open for appending and for the chunks' reads.
    fn create(&mut self) -> Result<OpenFile> {
        let number = self.next_number;
        self.next_number += 1;
        let path = self.path(number);
        let file = File::options()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("creating a head chunk file", &path, e))?;
        let file = Arc::new(ChunkFile { file, number, path });
        self.registry.files_mut().insert(number, Arc::clone(&file));
        Ok(OpenFile {
            contents: Written {
                file,
                max_time: i64::MIN,
            },
            written: 0,
        })
    }

    fn close(&mut self, open: OpenFile) {
        self.closed.insert(open.contents.file.number, open.contents);
    }

    /// Deletes the closed files whose chunks all end before `mint`.
    pub(crate) fn delete_before(&mut self, mint: i64) {
        let expired: Vec<u32> = self
            .closed
            .iter()
            .filter(|(_, file)| file.max_time < mint)
            .map(|(&number, _)| number)
            .collect();
        for number in expired {
            self.closed.remove(&number);
            self.registry.files_mut().remove(&number);
            let path = self.path(number);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "could not delete a head chunk file");
            }
        }
    }

    fn path(&self, number: u32) -> PathBuf {
        self.dir.join(format!("{number:08}"))
    }
}

/// Whether `len` more bytes fit a file of `file_bytes` holding `written`.
fn fits(written: u32, len: usize, file_bytes: u32) -> bool {
    (written as usize).saturating_add(len) <= file_bytes as usize
}

impl OpenFile {
    /// Appends the leading chunks of `chunks` that fit (at least one: the caller made room
    /// for it), in writes of up to [`WRITE_BYTES`], pushing them onto `on_disk`; returns how
    /// many it took.
    fn append(
        &mut self,
        chunks: &[(XorChunk, i64)],
        file_bytes: u32,
        buffer: &mut Vec<u8>,
        on_disk: &mut Vec<DiskChunk>,
    ) -> io::Result<usize> {
        buffer.clear();
        let mut taken = 0;
        for (chunk, chunk_max) in chunks {
            let bytes = chunk.bytes();
            let pending = buffer.len() + bytes.len();
            if taken > 0 && !fits(self.written, pending, file_bytes) {
                break;
            }
            if !buffer.is_empty() && pending > WRITE_BYTES {
                self.flush(buffer)?;
            }
            let at = self.written as usize + buffer.len();
            let range = u32::try_from(at).ok().zip(u16::try_from(bytes.len()).ok());
            let (at, len) = range.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a chunk over 64 KiB or past 4 GiB of a file",
                )
            })?;
            buffer.extend_from_slice(bytes);
            // Counted before the write: if it fails, the file is closed, and holding a later
            // time than it does only delays its deletion.
            self.contents.max_time = self.contents.max_time.max(*chunk_max);
            let samples = u16::try_from(chunk.num_samples()).unwrap_or(u16::MAX);
            on_disk.push(DiskChunk::new(
                Arc::clone(&self.contents.file),
                at,
                len,
                samples,
            ));
            taken += 1;
        }
        self.flush(buffer)?;
        Ok(taken)
    }

    /// Writes out and empties `buffer`.
    fn flush(&mut self, buffer: &mut Vec<u8>) -> io::Result<()> {
        (&self.contents.file.file).write_all(buffer)?;
        self.written += buffer.len() as u32;
        buffer.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::chunk::XorAppender;

    fn chunk(first: i64, n: i64) -> XorChunk {
        let mut appender = XorAppender::new();
        for t in first..first + n {
            appender.append(t, (t * 3) as f64).unwrap();
        }
        appender.finish()
    }

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn chunks_round_trip_across_files_and_expired_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let chunks_dir = dir.path().join("chunks_head");
        fs::create_dir_all(&chunks_dir).unwrap();
        fs::write(chunks_dir.join("00000007"), b"left by a crash").unwrap();
        let mut files = ChunkFiles::with_file_bytes(chunks_dir.clone(), 200).unwrap();
        assert!(file_names(&chunks_dir).is_empty(), "emptied at open");

        let batches: Vec<Vec<(XorChunk, i64)>> = vec![
            (0..6).map(|i| (chunk(i * 100, 20), i * 100 + 19)).collect(),
            vec![(chunk(1000, 20), 1019)],
        ];
        let mut written = 0;
        let mut disk_chunks = Vec::new();
        for batch in &batches {
            let batch_on_disk = files.write(batch).unwrap();
            assert_eq!(batch_on_disk.len(), batch.len());
            for ((heap, _), disk) in batch.iter().zip(&batch_on_disk) {
                assert_eq!(heap.bytes(), disk.read().unwrap().bytes());
                assert_eq!(heap.iter().collect::<Vec<_>>(), disk.samples());
                assert_eq!(disk.num_samples(), 20);
                written += heap.bytes().len();
            }
            disk_chunks.extend(batch_on_disk);
        }
        let names = file_names(&chunks_dir);
        assert!(
            names.len() >= 2,
            "a 200-byte file holds a few chunks: {names:?}"
        );
        let on_disk: u64 = names
            .iter()
            .map(|n| fs::metadata(chunks_dir.join(n)).unwrap().len())
            .sum();
        assert_eq!(on_disk as usize, written);

        // Everything before 1000 has expired: every closed file goes, the one being written
        // stays, and chunks still held read on (they keep the deleted file open).
        files.delete_before(1000);
        assert_eq!(file_names(&chunks_dir), [names.last().unwrap().clone()]);
        assert_eq!(disk_chunks[0].samples().len(), 20);
        files.delete_before(i64::MAX);
        assert_eq!(
            file_names(&chunks_dir).len(),
            1,
            "the file being written is kept"
        );
    }

    #[test]
    fn a_failed_write_keeps_nothing_and_the_next_batch_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let chunks_dir = dir.path().join("chunks_head");
        let mut files = ChunkFiles::with_file_bytes(chunks_dir.clone(), 40).unwrap();
        files.write(&[(chunk(0, 10), 9)]).unwrap();
        // The directory taken away: the file the next batch needs cannot be created.
        fs::remove_dir_all(&chunks_dir).unwrap();
        let err = files
            .write(&[(chunk(10, 10), 19), (chunk(20, 10), 29)])
            .unwrap_err();
        assert!(err.to_string().contains("head chunk file"), "{err}");
        fs::create_dir_all(&chunks_dir).unwrap();
        let on_disk = files.write(&[(chunk(30, 10), 39)]).unwrap();
        assert_eq!(on_disk[0].samples().first(), Some(&(30, 90.0)));
    }
}
