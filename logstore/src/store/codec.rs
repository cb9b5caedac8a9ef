//! Byte encodings of the log store: entry bodies, chunks, WAL records and label sets.
//!
//! Integers are protobuf varints (`prost::encoding`), timestamps zig-zag deltas inside a
//! chunk. Decoding never trusts lengths: a short or inconsistent buffer is a
//! [`Corrupt`] error, never a panic.

use prost::bytes::Buf;
use prost::encoding::{decode_varint, encode_varint};
use sightline_core::labels::Labels;

use crate::push::{Entry, PushStream};

/// A stored byte sequence that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt {what}")]
pub struct Corrupt {
    /// What was being decoded.
    pub what: &'static str,
}

fn corrupt(what: &'static str) -> Corrupt {
    Corrupt { what }
}

/// Appends `bytes` behind their length (a varint).
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Reads a varint, `what` naming it if it does not decode.
pub(crate) fn get_varint(buf: &mut &[u8], what: &'static str) -> Result<u64, Corrupt> {
    decode_varint(buf).map_err(|_| corrupt(what))
}

/// Reads what [`put_bytes`] wrote.
pub(crate) fn get_bytes<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], Corrupt> {
    let len = usize::try_from(get_varint(buf, what)?).map_err(|_| corrupt(what))?;
    if buf.len() < len {
        return Err(corrupt(what));
    }
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

fn get_string(buf: &mut &[u8], what: &'static str) -> Result<String, Corrupt> {
    let bytes = get_bytes(buf, what)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(what))
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Appends an entry's line and structured metadata (not its timestamp).
pub(crate) fn put_entry_body(out: &mut Vec<u8>, entry: &Entry) {
    put_bytes(out, entry.line.as_bytes());
    encode_varint(entry.metadata.len() as u64, out);
    for (name, value) in &entry.metadata {
        put_bytes(out, name.as_bytes());
        put_bytes(out, value.as_bytes());
    }
}

/// Reads what [`put_entry_body`] wrote.
fn get_entry_body(buf: &mut &[u8], timestamp_ns: i64) -> Result<Entry, Corrupt> {
    let line = get_string(buf, "entry line")?;
    let metadata = get_metadata(buf)?;
    Ok(Entry {
        timestamp_ns,
        line,
        metadata,
    })
}

/// The line of an entry body.
pub(crate) fn entry_line(mut body: &[u8]) -> Result<&[u8], Corrupt> {
    get_bytes(&mut body, "entry line")
}

/// Whether an entry body has structured metadata.
pub(crate) fn has_metadata(mut body: &[u8]) -> bool {
    get_bytes(&mut body, "entry line").is_ok() && body.first().is_some_and(|count| *count != 0)
}

/// Length in bytes of the structured metadata at the start of `buf`.
fn metadata_len(buf: &[u8]) -> Result<usize, Corrupt> {
    let mut rest = buf;
    let pairs = get_varint(&mut rest, "metadata count")?;
    for _ in 0..pairs {
        get_bytes(&mut rest, "metadata name")?;
        get_bytes(&mut rest, "metadata value")?;
    }
    Ok(buf.len() - rest.len())
}

/// Reads structured metadata written by [`put_entry_body`].
fn get_metadata(buf: &mut &[u8]) -> Result<Vec<(String, String)>, Corrupt> {
    let pairs = get_varint(buf, "metadata count")?;
    let mut metadata = Vec::new();
    for _ in 0..pairs {
        metadata.push((
            get_string(buf, "metadata name")?,
            get_string(buf, "metadata value")?,
        ));
    }
    Ok(metadata)
}

/// Length in bytes of the entry body at the start of `buf`.
pub(crate) fn entry_body_len(buf: &[u8]) -> Result<usize, Corrupt> {
    let mut rest = buf;
    get_bytes(&mut rest, "entry line")?;
    let metadata = metadata_len(rest)?;
    Ok(buf.len() - rest.len() + metadata)
}

/// One entry of a chunk as read: its timestamp, where its line lies in the chunk's line
/// column, and its structured metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnEntry {
    /// Nanoseconds since the epoch.
    pub timestamp_ns: i64,
    /// Byte range of the line in the line column.
    pub line: std::ops::Range<usize>,
    /// Structured metadata, usually none.
    pub metadata: Vec<(String, String)>,
}

/// Splits entry bodies sorted by timestamp into a chunk's two columns, so that reading
/// timestamps (or line lengths, or metadata) never decompresses the lines:
///
/// * the entry column: a count, then per entry the timestamp's zig-zag delta from the
///   previous one, the line's length and the structured metadata;
/// * the line column: the lines back to back, given to `line` with their timestamps (to
///   be written as they are, or [split](super::line_template)).
pub(crate) fn encode_columns<'a>(
    sorted: impl ExactSizeIterator<Item = (i64, &'a [u8])>,
    entries: &mut Vec<u8>,
    mut line: impl FnMut(i64, &'a [u8]),
) -> Result<(), Corrupt> {
    encode_varint(sorted.len() as u64, entries);
    let mut previous = 0i64;
    for (timestamp_ns, mut body) in sorted {
        let text = get_bytes(&mut body, "entry line")?;
        encode_varint(zigzag(timestamp_ns.wrapping_sub(previous)), entries);
        previous = timestamp_ns;
        encode_varint(text.len() as u64, entries);
        entries.extend_from_slice(body);
        line(timestamp_ns, text);
    }
    Ok(())
}

/// Decodes an entry column (see [`encode_columns`]), keeping the entries within
/// `[start_ns, end_ns)` and, given `every_timestamp`, adding every entry's timestamp to it
/// (a [split](super::line_template) line column needs them); returns the length the line
/// column must have.
pub(crate) fn decode_entry_column(
    mut buf: &[u8],
    start_ns: i64,
    end_ns: i64,
    out: &mut Vec<ColumnEntry>,
    mut every_timestamp: Option<&mut Vec<i64>>,
) -> Result<usize, Corrupt> {
    let count = get_varint(&mut buf, "chunk entry count")?;
    // At least one byte per entry follows: a damaged count cannot reserve more than that.
    out.reserve(usize::try_from(count).unwrap_or(0).min(buf.len()));
    let mut timestamp_ns = 0i64;
    let mut line_at = 0usize;
    for _ in 0..count {
        timestamp_ns =
            timestamp_ns.wrapping_add(unzigzag(get_varint(&mut buf, "chunk timestamp")?));
        let line_len = usize::try_from(get_varint(&mut buf, "chunk line length")?)
            .map_err(|_| corrupt("chunk line length"))?;
        let line = line_at..line_at.saturating_add(line_len);
        line_at = line.end;
        if let Some(every) = every_timestamp.as_deref_mut() {
            every.push(timestamp_ns);
        }
        if timestamp_ns >= start_ns && timestamp_ns < end_ns {
            out.push(ColumnEntry {
                timestamp_ns,
                line,
                metadata: get_metadata(&mut buf)?,
            });
        } else {
            let len = metadata_len(buf)?;
            buf.advance(len);
        }
    }
    if !buf.is_empty() {
        return Err(corrupt("chunk trailer"));
    }
    Ok(line_at)
}

/// Adds an entry body at `timestamp_ns` to decoded entries, its line to `lines`.
pub(crate) fn push_body(
    mut body: &[u8],
    timestamp_ns: i64,
    out: &mut Vec<ColumnEntry>,
    lines: &mut Vec<u8>,
) -> Result<(), Corrupt> {
    let line = get_bytes(&mut body, "entry line")?;
    let metadata = get_metadata(&mut body)?;
    if !body.is_empty() {
        return Err(corrupt("entry trailer"));
    }
    let start = lines.len();
    lines.extend_from_slice(line);
    out.push(ColumnEntry {
        timestamp_ns,
        line: start..lines.len(),
        metadata,
    });
    Ok(())
}

/// Decodes a chunk of the first layout (one value: a count, then per entry the timestamp's
/// zig-zag delta and the entry body), keeping the entries within `[start_ns, end_ns)`.
/// Stores written before the two-column layout hold these until retention drops them.
pub(crate) fn decode_legacy_chunk(
    mut buf: &[u8],
    start_ns: i64,
    end_ns: i64,
    out: &mut Vec<ColumnEntry>,
    lines: &mut Vec<u8>,
) -> Result<(), Corrupt> {
    let count = get_varint(&mut buf, "chunk entry count")?;
    let mut timestamp_ns = 0i64;
    for _ in 0..count {
        timestamp_ns =
            timestamp_ns.wrapping_add(unzigzag(get_varint(&mut buf, "chunk timestamp")?));
        let len = entry_body_len(buf)?;
        if timestamp_ns >= start_ns && timestamp_ns < end_ns {
            push_body(&buf[..len], timestamp_ns, out, lines)?;
        }
        buf.advance(len);
    }
    if !buf.is_empty() {
        return Err(corrupt("chunk trailer"));
    }
    Ok(())
}

/// Appends a label set: a count, then name and value of each label.
pub(crate) fn put_labels(out: &mut Vec<u8>, labels: &Labels) {
    encode_varint(labels.len() as u64, out);
    for label in labels {
        put_bytes(out, label.name.as_bytes());
        put_bytes(out, label.value.as_bytes());
    }
}

/// Reads what [`put_labels`] wrote.
pub(crate) fn get_labels(buf: &mut &[u8]) -> Result<Labels, Corrupt> {
    let count = get_varint(buf, "label count")?;
    let mut pairs = Vec::new();
    for _ in 0..count {
        pairs.push((
            get_string(buf, "label name")?,
            get_string(buf, "label value")?,
        ));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Encodes a WAL record: the accepted streams of one push.
pub(crate) fn encode_push(streams: &[PushStream], out: &mut Vec<u8>) {
    encode_varint(streams.len() as u64, out);
    for stream in streams {
        put_labels(out, &stream.labels);
        encode_varint(stream.entries.len() as u64, out);
        for entry in &stream.entries {
            encode_varint(zigzag(entry.timestamp_ns), out);
            put_entry_body(out, entry);
        }
    }
}

/// Decodes a WAL record written by [`encode_push`].
pub(crate) fn decode_push(mut buf: &[u8]) -> Result<Vec<PushStream>, Corrupt> {
    let count = get_varint(&mut buf, "stream count")?;
    let mut streams = Vec::new();
    for _ in 0..count {
        let labels = get_labels(&mut buf)?;
        let entries = get_varint(&mut buf, "entry count")?;
        let mut stream = PushStream {
            labels,
            ..PushStream::default()
        };
        for _ in 0..entries {
            let timestamp_ns = unzigzag(get_varint(&mut buf, "entry timestamp")?);
            stream.entries.push(get_entry_body(&mut buf, timestamp_ns)?);
        }
        streams.push(stream);
    }
    if !buf.is_empty() {
        return Err(corrupt("record trailer"));
    }
    Ok(streams)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(timestamp_ns: i64, line: &str) -> Entry {
        Entry {
            timestamp_ns,
            line: line.into(),
            metadata: vec![("trace_id".into(), "abc".into())],
        }
    }

    #[test]
    fn push_records_round_trip() {
        let streams = vec![PushStream {
            labels: Labels::from_pairs([("app", "api"), ("env", "prod")]),
            entries: vec![
                entry(-5, "before the epoch"),
                entry(1_700_000_000_000_000_000, ""),
            ],
            ..PushStream::default()
        }];
        let mut buf = Vec::new();
        encode_push(&streams, &mut buf);
        assert_eq!(decode_push(&buf), Ok(streams));
        assert!(decode_push(&buf[..buf.len() - 1]).is_err());
    }

    fn bodies(entries: &[Entry]) -> Vec<(i64, Vec<u8>)> {
        entries
            .iter()
            .map(|e| {
                let mut body = Vec::new();
                put_entry_body(&mut body, e);
                assert_eq!(entry_body_len(&body), Ok(body.len()));
                (e.timestamp_ns, body)
            })
            .collect()
    }

    fn entries_of(decoded: &[ColumnEntry], lines: &[u8]) -> Vec<Entry> {
        decoded
            .iter()
            .map(|e| Entry {
                timestamp_ns: e.timestamp_ns,
                line: String::from_utf8(lines[e.line.clone()].to_vec()).unwrap(),
                metadata: e.metadata.clone(),
            })
            .collect()
    }

    const ENTRIES: [(i64, &str); 4] = [(10, "a"), (20, "bb"), (20, "c"), (35, "dddd")];

    #[test]
    fn chunk_columns_round_trip_and_filter_by_time() {
        let entries: Vec<Entry> = ENTRIES.iter().map(|(t, l)| entry(*t, l)).collect();
        let bodies = bodies(&entries);
        let (mut column, mut lines) = (Vec::new(), Vec::new());
        encode_columns(
            bodies.iter().map(|(t, b)| (*t, b.as_slice())),
            &mut column,
            |_, line| lines.extend_from_slice(line),
        )
        .unwrap();
        assert_eq!(lines, b"abbcdddd");
        let mut all = Vec::new();
        assert_eq!(
            decode_entry_column(&column, i64::MIN, i64::MAX, &mut all, None),
            Ok(lines.len())
        );
        assert_eq!(entries_of(&all, &lines), entries);
        let (mut some, mut every) = (Vec::new(), Vec::new());
        assert_eq!(
            decode_entry_column(&column, 20, 35, &mut some, Some(&mut every)),
            Ok(8)
        );
        assert_eq!(entries_of(&some, &lines), entries[1..3]);
        assert_eq!(every, [10, 20, 20, 35]);
        let damaged = &column[..column.len() - 2];
        assert!(decode_entry_column(damaged, 0, 100, &mut some, None).is_err());
    }

    #[test]
    fn legacy_chunks_still_decode() {
        let entries: Vec<Entry> = ENTRIES.iter().map(|(t, l)| entry(*t, l)).collect();
        let mut chunk = Vec::new();
        encode_varint(entries.len() as u64, &mut chunk);
        let mut previous = 0;
        for (timestamp_ns, body) in bodies(&entries) {
            encode_varint(zigzag(timestamp_ns - previous), &mut chunk);
            previous = timestamp_ns;
            chunk.extend_from_slice(&body);
        }
        let (mut some, mut lines) = (Vec::new(), Vec::new());
        assert_eq!(
            decode_legacy_chunk(&chunk, 20, 35, &mut some, &mut lines),
            Ok(())
        );
        assert_eq!(entries_of(&some, &lines), entries[1..3]);
        assert!(
            decode_legacy_chunk(&chunk[..chunk.len() - 2], 0, 100, &mut some, &mut lines).is_err()
        );
    }
}
