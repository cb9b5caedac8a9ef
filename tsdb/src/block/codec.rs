//! Value encodings of the block store: series entries, postings lists, block metas and the
//! two chunk encodings (a list of Prometheus XOR chunks, and the columnar encoding of
//! [`crate::chunk::columnar`]). The byte layouts are written down in `tsdb/FORMAT.md`,
//! section "Blocks".

use sightline_core::labels::Labels;

use crate::chunk::xor::MAX_SAMPLES;
use crate::chunk::{XorAppender, XorChunk, columnar};
use crate::storage::{ChunkData, ChunkMeta};
use crate::varint;

/// Chunk value tag: a list of Prometheus XOR chunks.
pub(crate) const ENCODING_XOR: u8 = 1;
/// Chunk value tag: the columnar encoding.
pub(crate) const ENCODING_COLUMNAR: u8 = 2;

// A decoding failure; the caller adds the partition and block.
pub(crate) use columnar::DecodeError;

/// Cursor over an encoded value.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.pos).ok_or("value cut short")?;
        self.pos += 1;
        Ok(byte)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        varint::decode_u64(|| {
            let byte = self.bytes.get(self.pos).copied();
            self.pos += 1;
            byte
        })
        .ok_or("bad uvarint")
    }

    pub(crate) fn varint(&mut self) -> Result<i64, DecodeError> {
        varint::decode_i64(|| {
            let byte = self.bytes.get(self.pos).copied();
            self.pos += 1;
            byte
        })
        .ok_or("bad varint")
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len).ok_or("length overflow")?;
        let slice = self.bytes.get(self.pos..end).ok_or("value cut short")?;
        self.pos = end;
        Ok(slice)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::try_from(self.uvarint()?).map_err(|_| "length overflow")?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "label is not UTF-8")
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err("trailing bytes")
        }
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    varint::put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A series entry: its labels and the time range and count of its samples in the block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesEntry {
    pub(crate) labels: Labels,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    pub(crate) num_samples: u64,
}

pub(crate) fn encode_series(entry: &SeriesEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    varint::put_u64(&mut out, entry.labels.len() as u64);
    for label in &entry.labels {
        put_string(&mut out, &label.name);
        put_string(&mut out, &label.value);
    }
    varint::put_i64(&mut out, entry.min_time);
    varint::put_i64(&mut out, entry.max_time);
    varint::put_u64(&mut out, entry.num_samples);
    out
}

pub(crate) fn decode_series(bytes: &[u8]) -> Result<SeriesEntry, DecodeError> {
    let mut r = Reader::new(bytes);
    let n = r.uvarint()?;
    let mut pairs = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        let name = r.string()?;
        let value = r.string()?;
        pairs.push((name, value));
    }
    let entry = SeriesEntry {
        labels: Labels::from_pairs(pairs),
        min_time: r.varint()?,
        max_time: r.varint()?,
        num_samples: r.uvarint()?,
    };
    r.finish()?;
    Ok(entry)
}

/// A postings list: sorted, unique series refs, delta-encoded.
pub(crate) fn encode_postings(refs: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(refs.len() + 2);
    varint::put_u64(&mut out, refs.len() as u64);
    let mut prev = 0u32;
    for &r in refs {
        varint::put_u64(&mut out, u64::from(r - prev));
        prev = r;
    }
    out
}

pub(crate) fn decode_postings(bytes: &[u8]) -> Result<Vec<u32>, DecodeError> {
    let mut r = Reader::new(bytes);
    let n = r.uvarint()?;
    let mut refs = Vec::with_capacity(n.min(1 << 20) as usize);
    let mut prev = 0u64;
    for i in 0..n {
        let delta = r.uvarint()?;
        if i > 0 && delta == 0 {
            return Err("postings not strictly increasing");
        }
        prev = prev.checked_add(delta).ok_or("postings overflow")?;
        refs.push(u32::try_from(prev).map_err(|_| "series ref above 2^32")?);
    }
    r.finish()?;
    Ok(refs)
}

/// How a block's chunk values are encoded when written (see `BlockStoreOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkEncoding {
    /// The XOR chunks handed to `write_block`, stored as they are (Prometheus's blocks).
    XorAsGiven,
    /// All samples of a series in the block re-encoded as one XOR chunk (or as few as the
    /// 65 535-sample limit allows).
    XorMerged,
    /// Timestamps and values in separate byte-aligned columns (the default): the layout zstd
    /// compresses best, see the module docs and `tsdb/FORMAT.md`.
    Columnar,
}

/// Encodes one series' chunks as a chunk value.
pub(crate) fn encode_chunks(encoding: ChunkEncoding, chunks: &[ChunkMeta]) -> Vec<u8> {
    let as_given: Option<Vec<(i64, i64, &[u8])>> = chunks
        .iter()
        .map(|c| Some((c.min_time, c.max_time, c.chunk.xor_bytes()?)))
        .collect();
    match (encoding, as_given) {
        (ChunkEncoding::XorAsGiven, Some(given)) => encode_xor_list(given.into_iter()),
        // Decoded samples have no XOR chunks to keep: cut them as compaction does.
        _ => encode_samples(encoding, &samples_of(chunks)),
    }
}

/// The samples of chunks in time order, dropping any that do not advance time.
pub(crate) fn samples_of(chunks: &[ChunkMeta]) -> Vec<(i64, f64)> {
    let mut samples: Vec<(i64, f64)> =
        Vec::with_capacity(chunks.iter().map(|c| c.chunk.num_samples()).sum());
    for chunk in chunks {
        for (t, v) in chunk.chunk.iter() {
            if samples.last().is_none_or(|&(last, _)| t > last) {
                samples.push((t, v));
            }
        }
    }
    samples
}

/// Encodes samples (strictly increasing timestamps) as a chunk value.
pub(crate) fn encode_samples(encoding: ChunkEncoding, samples: &[(i64, f64)]) -> Vec<u8> {
    match encoding {
        ChunkEncoding::XorAsGiven | ChunkEncoding::XorMerged => {
            // Re-encoding (compaction) under `XorAsGiven` keeps Prometheus's 120 samples
            // per chunk, so that variant stays the Prometheus layout throughout.
            let per_chunk = if encoding == ChunkEncoding::XorAsGiven {
                120
            } else {
                MAX_SAMPLES
            };
            let chunks = xor_chunks(samples, per_chunk);
            encode_xor_list(
                chunks
                    .iter()
                    .map(|(min_time, max_time, chunk)| (*min_time, *max_time, chunk.bytes())),
            )
        }
        ChunkEncoding::Columnar => {
            let mut out = vec![ENCODING_COLUMNAR];
            columnar::encode(samples, &mut out);
            out
        }
    }
}

/// Cuts samples into XOR chunks of at most `per_chunk` samples, each with its first and last
/// timestamp.
pub(crate) fn xor_chunks(samples: &[(i64, f64)], per_chunk: usize) -> Vec<(i64, i64, XorChunk)> {
    let mut out = Vec::with_capacity(samples.len() / per_chunk.max(1) + 1);
    for part in samples.chunks(per_chunk.clamp(1, MAX_SAMPLES)) {
        let mut appender = XorAppender::new();
        for &(t, v) in part {
            // Timestamps strictly increase and a part fits in a chunk, so this cannot fail;
            // a sample it refused would only be missing from a query, never corrupt a chunk.
            let _ = appender.append(t, v);
        }
        if let (Some(first), Some(last)) = (part.first(), part.last()) {
            out.push((first.0, last.0, appender.finish()));
        }
    }
    out
}

fn encode_xor_list<'a>(chunks: impl Iterator<Item = (i64, i64, &'a [u8])> + Clone) -> Vec<u8> {
    let len: usize = chunks.clone().map(|(_, _, b)| b.len() + 8).sum();
    let mut out = Vec::with_capacity(len + 4);
    out.push(ENCODING_XOR);
    varint::put_u64(&mut out, chunks.clone().count() as u64);
    for (min_time, max_time, bytes) in chunks {
        varint::put_i64(&mut out, min_time);
        varint::put_u64(&mut out, max_time.wrapping_sub(min_time) as u64);
        varint::put_u64(&mut out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    out
}

/// Decodes a chunk value into the chunks that hold samples in `[mint, maxt]`. XOR chunks are
/// handed on as they are stored; a columnar value becomes pieces of exactly the samples in
/// the range, decoded when a query reads them (never re-encoded).
pub(crate) fn decode_chunks(
    bytes: &[u8],
    mint: i64,
    maxt: i64,
) -> Result<Vec<ChunkMeta>, DecodeError> {
    let (&tag, rest) = bytes.split_first().ok_or("empty chunk value")?;
    match tag {
        ENCODING_XOR => {
            let mut r = Reader::new(rest);
            let n = r.uvarint()?;
            let mut out = Vec::new();
            for _ in 0..n {
                let min_time = r.varint()?;
                let max_time = min_time.wrapping_add(r.uvarint()? as i64);
                let len = usize::try_from(r.uvarint()?).map_err(|_| "length overflow")?;
                let chunk = r.take(len)?;
                if max_time >= mint && min_time <= maxt {
                    let chunk =
                        XorChunk::from_bytes(chunk.to_vec()).map_err(|_| "corrupt XOR chunk")?;
                    out.push(ChunkMeta {
                        min_time,
                        max_time,
                        chunk: chunk.into(),
                    });
                }
            }
            r.finish()?;
            Ok(out)
        }
        ENCODING_COLUMNAR => Ok(columnar::pieces(rest, mint, maxt)?
            .into_iter()
            .map(|(min_time, max_time, piece)| ChunkMeta {
                min_time,
                max_time,
                chunk: ChunkData::Columnar(Box::new(piece)),
            })
            .collect()),
        _ => Err("unknown chunk encoding"),
    }
}

/// Decodes any chunk value into all its samples.
pub(crate) fn decode_samples(bytes: &[u8]) -> Result<Vec<(i64, f64)>, DecodeError> {
    match bytes.first() {
        Some(&ENCODING_COLUMNAR) => columnar::decode(&bytes[1..]),
        _ => Ok(samples_of(&decode_chunks(bytes, i64::MIN, i64::MAX)?)),
    }
}

/// A stored block meta (see `BlockMeta`); the id is in the key.
pub(crate) struct MetaValue {
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    pub(crate) num_series: u64,
    pub(crate) num_samples: u64,
    pub(crate) compacted: bool,
    pub(crate) encoded_bytes: u64,
}

/// Version byte of a block meta value.
const META_VERSION: u8 = 1;

pub(crate) fn encode_meta(meta: &MetaValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.push(META_VERSION);
    varint::put_i64(&mut out, meta.mint);
    varint::put_i64(&mut out, meta.maxt);
    varint::put_u64(&mut out, meta.num_series);
    varint::put_u64(&mut out, meta.num_samples);
    out.push(u8::from(meta.compacted));
    varint::put_u64(&mut out, meta.encoded_bytes);
    out
}

pub(crate) fn decode_meta(bytes: &[u8]) -> Result<MetaValue, DecodeError> {
    let mut r = Reader::new(bytes);
    if r.byte()? != META_VERSION {
        return Err("unknown block meta version");
    }
    let meta = MetaValue {
        mint: r.varint()?,
        maxt: r.varint()?,
        num_series: r.uvarint()?,
        num_samples: r.uvarint()?,
        compacted: r.byte()? != 0,
        encoded_bytes: r.uvarint()?,
    };
    r.finish()?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[(i64, f64)]) {
        let bytes = encode_samples(ChunkEncoding::Columnar, samples);
        let decoded = decode_samples(&bytes).unwrap();
        assert_eq!(decoded.len(), samples.len());
        for (a, b) in decoded.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "value {} vs {}", a.1, b.1);
        }
    }

    #[test]
    fn columnar_edge_values() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        round_trip(&[]);
        round_trip(&[(5, 1.0)]);
        round_trip(&[
            (i64::MIN, 0.1),
            (-5, -0.0),
            (0, stale),
            (1, f64::INFINITY),
            (2, f64::NEG_INFINITY),
            (3, 723294.724647283),
            (i64::MAX, 1e300),
        ]);
        let counter: Vec<(i64, f64)> = (0..1000)
            .map(|i| (i * 15_000 + i % 3, (i * 7) as f64))
            .collect();
        round_trip(&counter);
        let floats: Vec<(i64, f64)> = (0..1000)
            .map(|i| (i * 1000, 0.1 * i as f64 + 1e5))
            .collect();
        round_trip(&floats);
    }

    #[test]
    fn xor_list_filters_by_range() {
        let samples: Vec<(i64, f64)> = (0..300).map(|i| (i * 10, i as f64)).collect();
        let chunks: Vec<ChunkMeta> = xor_chunks(&samples, 120)
            .into_iter()
            .map(|(min_time, max_time, chunk)| ChunkMeta {
                min_time,
                max_time,
                chunk: chunk.into(),
            })
            .collect();
        let bytes = encode_chunks(ChunkEncoding::XorAsGiven, &chunks);
        assert_eq!(decode_chunks(&bytes, 0, 100).unwrap().len(), 1);
        assert_eq!(decode_samples(&bytes).unwrap(), samples);
        let columnar = encode_samples(ChunkEncoding::Columnar, &samples);
        let part = decode_chunks(&columnar, 15, 40).unwrap();
        assert!(
            matches!(
                part[..],
                [ChunkMeta {
                    min_time: 20,
                    max_time: 40,
                    chunk: ChunkData::Columnar(_)
                }]
            ),
            "a columnar value is read in pieces, not re-encoded as XOR"
        );
        assert!(decode_chunks(&columnar, 3001, 4000).unwrap().is_empty());
        let got: Vec<i64> = part
            .iter()
            .flat_map(|c| c.chunk.iter())
            .map(|s| s.0)
            .collect();
        assert_eq!(got, [20, 30, 40]);
    }

    #[test]
    fn postings_and_series_round_trip() {
        let refs = [0u32, 1, 5, 1000, u32::MAX];
        assert_eq!(decode_postings(&encode_postings(&refs)).unwrap(), refs);
        let entry = SeriesEntry {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "node")]),
            min_time: -3,
            max_time: 99,
            num_samples: 7,
        };
        assert_eq!(decode_series(&encode_series(&entry)).unwrap(), entry);
    }

    proptest! {
        #[test]
        fn columnar_round_trips(
            start in any::<i64>(),
            steps in proptest::collection::vec((1i64..100_000, any::<u64>(), 0u8..4), 0..600),
            cut in (0usize..600, 0usize..600),
        ) {
            let mut t = start;
            let mut samples = Vec::new();
            for (step, bits, kind) in steps {
                let Some(next) = t.checked_add(step) else { break };
                t = next;
                let v = match kind {
                    0 => f64::from_bits(bits),
                    1 => (bits % 1_000_000) as f64,
                    2 => (bits % 1_000_000) as f64 / 1000.0,
                    _ => f64::from_bits(0x7ff0_0000_0000_0002),
                };
                samples.push((t, v));
            }
            let bytes = encode_samples(ChunkEncoding::Columnar, &samples);
            let bits = |samples: &[(i64, f64)]| -> Vec<(i64, u64)> {
                samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
            };
            prop_assert_eq!(bits(&decode_samples(&bytes).unwrap()), bits(&samples));
            // Pieces of any range hold exactly its samples, with their first and last times.
            let time = |i: usize| samples.get(i).map_or(i64::MAX, |s| s.0);
            let (mint, maxt) = (time(cut.0.min(cut.1)), time(cut.0.max(cut.1)));
            let chunks = decode_chunks(&bytes, mint, maxt).unwrap();
            let read: Vec<(i64, f64)> = chunks.iter().flat_map(|c| c.chunk.iter()).collect();
            let wanted: Vec<(i64, f64)> =
                samples.iter().copied().filter(|s| (mint..=maxt).contains(&s.0)).collect();
            prop_assert_eq!(bits(&read), bits(&wanted));
            for chunk in &chunks {
                let times: Vec<i64> = chunk.chunk.iter().map(|s| s.0).collect();
                prop_assert!(times.len() <= columnar::PIECE_SAMPLES);
                prop_assert_eq!(times.first(), Some(&chunk.min_time));
                prop_assert_eq!(times.last(), Some(&chunk.max_time));
            }
        }
    }
}
