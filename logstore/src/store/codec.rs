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

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn get_varint(buf: &mut &[u8], what: &'static str) -> Result<u64, Corrupt> {
    decode_varint(buf).map_err(|_| corrupt(what))
}

fn get_bytes<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], Corrupt> {
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
    let pairs = get_varint(buf, "metadata count")?;
    let mut metadata = Vec::new();
    for _ in 0..pairs {
        metadata.push((
            get_string(buf, "metadata name")?,
            get_string(buf, "metadata value")?,
        ));
    }
    Ok(Entry {
        timestamp_ns,
        line,
        metadata,
    })
}

/// Decodes one whole entry body.
pub(crate) fn decode_entry(mut body: &[u8], timestamp_ns: i64) -> Result<Entry, Corrupt> {
    let entry = get_entry_body(&mut body, timestamp_ns)?;
    if !body.is_empty() {
        return Err(corrupt("entry trailer"));
    }
    Ok(entry)
}

/// The line of an entry body.
pub(crate) fn entry_line(mut body: &[u8]) -> Result<&[u8], Corrupt> {
    get_bytes(&mut body, "entry line")
}

/// Length in bytes of the entry body at the start of `buf`.
pub(crate) fn entry_body_len(buf: &[u8]) -> Result<usize, Corrupt> {
    let mut rest = buf;
    get_bytes(&mut rest, "entry line")?;
    let pairs = get_varint(&mut rest, "metadata count")?;
    for _ in 0..pairs {
        get_bytes(&mut rest, "metadata name")?;
        get_bytes(&mut rest, "metadata value")?;
    }
    Ok(buf.len() - rest.len())
}

/// Encodes a chunk from entry bodies already sorted by timestamp: a count, then per entry
/// the timestamp's zig-zag delta from the previous one and the body.
pub(crate) fn encode_chunk<'a>(
    sorted: impl ExactSizeIterator<Item = (i64, &'a [u8])>,
    out: &mut Vec<u8>,
) {
    encode_varint(sorted.len() as u64, out);
    let mut previous = 0i64;
    for (timestamp_ns, body) in sorted {
        encode_varint(zigzag(timestamp_ns.wrapping_sub(previous)), out);
        previous = timestamp_ns;
        out.extend_from_slice(body);
    }
}

/// Decodes a chunk, keeping the entries within `[start_ns, end_ns)`.
pub(crate) fn decode_chunk(
    mut buf: &[u8],
    start_ns: i64,
    end_ns: i64,
    out: &mut Vec<Entry>,
) -> Result<(), Corrupt> {
    let count = get_varint(&mut buf, "chunk entry count")?;
    let mut timestamp_ns = 0i64;
    for _ in 0..count {
        timestamp_ns =
            timestamp_ns.wrapping_add(unzigzag(get_varint(&mut buf, "chunk timestamp")?));
        if timestamp_ns >= start_ns && timestamp_ns < end_ns {
            out.push(get_entry_body(&mut buf, timestamp_ns)?);
        } else {
            let len = entry_body_len(buf)?;
            buf.advance(len);
        }
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

    #[test]
    fn chunks_round_trip_and_filter_by_time() {
        let entries = [
            entry(10, "a"),
            entry(20, "b"),
            entry(20, "c"),
            entry(35, "d"),
        ];
        let bodies: Vec<(i64, Vec<u8>)> = entries
            .iter()
            .map(|e| {
                let mut body = Vec::new();
                put_entry_body(&mut body, e);
                assert_eq!(entry_body_len(&body), Ok(body.len()));
                (e.timestamp_ns, body)
            })
            .collect();
        let mut chunk = Vec::new();
        encode_chunk(bodies.iter().map(|(t, b)| (*t, b.as_slice())), &mut chunk);
        let mut all = Vec::new();
        assert_eq!(decode_chunk(&chunk, i64::MIN, i64::MAX, &mut all), Ok(()));
        assert_eq!(all, entries);
        let mut some = Vec::new();
        assert_eq!(decode_chunk(&chunk, 20, 35, &mut some), Ok(()));
        assert_eq!(some, entries[1..3]);
        assert!(decode_chunk(&chunk[..chunk.len() - 2], 0, 100, &mut some).is_err());
    }
}
