//! WAL record payloads: series announcements and sample batches.
//!
//! Follows the roles of Prometheus's `tsdb/record` series and samples records (a series is
//! written once with its labels and referred to by a `u64` ref afterwards), with a more
//! compact sample encoding: refs and timestamps are zig-zag varint deltas from the previous
//! sample in the record, so a scrape's batch (one timestamp, neighbouring refs) costs about
//! 10 bytes per sample. Layouts are in `tsdb/FORMAT.md`.
//!
//! Edge cases decided: deltas wrap modulo 2⁶⁴, so any refs and timestamps round-trip; values
//! are kept as raw bits (NaN payloads, staleness markers); an empty batch is a valid, empty
//! payload. Decoding never panics and never allocates more than the payload can hold.

use crate::varint;

/// Record type byte of [`Record::Series`].
const SERIES: u8 = 1;
/// Record type byte of [`Record::Samples`].
const SAMPLES: u8 = 2;

/// One WAL record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Series created since the last record, each with the ref later records use.
    Series(Vec<RefSeries>),
    /// A batch of samples for series announced earlier.
    Samples(Vec<RefSample>),
}

/// A series and the ref it is known by in the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefSeries {
    /// The series' ref.
    pub series_ref: u64,
    /// Label name/value pairs, in the order given (the head keeps them sorted).
    pub labels: Vec<(String, String)>,
}

/// One sample of a series known by its ref.
///
/// Equality compares the value's bits, so a NaN equals the same NaN.
#[derive(Clone, Copy, Debug)]
pub struct RefSample {
    /// The series' ref.
    pub series_ref: u64,
    /// Timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The value.
    pub value: f64,
}

impl PartialEq for RefSample {
    fn eq(&self, other: &Self) -> bool {
        self.series_ref == other.series_ref
            && self.timestamp == other.timestamp
            && self.value.to_bits() == other.value.to_bits()
    }
}

impl Eq for RefSample {}

/// Why an intact frame's payload could not be turned into a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The type byte names no record this build knows.
    UnknownType(u8),
    /// The payload does not follow the layout of its type.
    Malformed(&'static str),
}

impl Record {
    /// Appends the payload to `out` and returns the record type byte.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> u8 {
        match self {
            Record::Series(series) => {
                for s in series {
                    varint::encode_u64(s.series_ref, |b| out.push(b));
                    varint::encode_u64(s.labels.len() as u64, |b| out.push(b));
                    for (name, value) in &s.labels {
                        put_str(out, name);
                        put_str(out, value);
                    }
                }
                SERIES
            }
            Record::Samples(samples) => {
                let (mut prev_ref, mut prev_t) = (0u64, 0i64);
                for s in samples {
                    varint::encode_i64(s.series_ref.wrapping_sub(prev_ref) as i64, |b| out.push(b));
                    varint::encode_i64(s.timestamp.wrapping_sub(prev_t), |b| out.push(b));
                    out.extend_from_slice(&s.value.to_bits().to_le_bytes());
                    (prev_ref, prev_t) = (s.series_ref, s.timestamp);
                }
                SAMPLES
            }
        }
    }

    /// Decodes the payload of a record of type `kind`.
    pub(crate) fn decode(kind: u8, payload: &[u8]) -> Result<Record, DecodeError> {
        let mut c = Cursor(payload);
        match kind {
            SERIES => {
                let mut series = Vec::new();
                while !c.0.is_empty() {
                    let series_ref = c.uvarint()?;
                    let count = c.uvarint()?;
                    // A label takes at least two bytes: bound the allocation by the payload.
                    if count > (c.0.len() / 2) as u64 {
                        return Err(DecodeError::Malformed("label count exceeds payload"));
                    }
                    let mut labels = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        labels.push((c.string()?, c.string()?));
                    }
                    series.push(RefSeries { series_ref, labels });
                }
                Ok(Record::Series(series))
            }
            SAMPLES => {
                let mut samples = Vec::with_capacity(payload.len() / 10);
                let (mut series_ref, mut timestamp) = (0u64, 0i64);
                while !c.0.is_empty() {
                    series_ref = series_ref.wrapping_add(c.varint()? as u64);
                    timestamp = timestamp.wrapping_add(c.varint()?);
                    let value = f64::from_bits(u64::from_le_bytes(c.array()?));
                    samples.push(RefSample {
                        series_ref,
                        timestamp,
                        value,
                    });
                }
                Ok(Record::Samples(samples))
            }
            other => Err(DecodeError::UnknownType(other)),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    varint::encode_u64(s.len() as u64, |b| out.push(b));
    out.extend_from_slice(s.as_bytes());
}

/// Reads a payload front to back.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        varint::decode_u64(|| self.byte()).ok_or(DecodeError::Malformed("bad varint"))
    }

    fn varint(&mut self) -> Result<i64, DecodeError> {
        varint::decode_i64(|| self.byte()).ok_or(DecodeError::Malformed("bad varint"))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.0.len())
            .ok_or(DecodeError::Malformed("length exceeds payload"))?;
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Malformed("truncated value"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.uvarint()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Malformed("label is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn round_trip(record: &Record) -> Result<Record, DecodeError> {
        let mut payload = Vec::new();
        let kind = record.encode(&mut payload);
        Record::decode(kind, &payload)
    }

    #[test]
    fn sample_layout_is_delta_encoded() {
        let record = Record::Samples(vec![
            RefSample {
                series_ref: 5,
                timestamp: 1000,
                value: 1.0,
            },
            RefSample {
                series_ref: 6,
                timestamp: 1000,
                value: f64::from_bits(0x7ff0_0000_0000_0002),
            },
        ]);
        let mut payload = Vec::new();
        assert_eq!(record.encode(&mut payload), SAMPLES);
        #[rustfmt::skip]
        assert_eq!(payload, [
            0x0a, 0xd0, 0x0f, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // ref +5, t +1000, 1.0
            0x02, 0x00, 2, 0, 0, 0, 0, 0, 0xf0, 0x7f,       // ref +1, t +0, stale NaN
        ]);
        assert_eq!(round_trip(&record), Ok(record));
    }

    #[test]
    fn series_layout() {
        let record = Record::Series(vec![RefSeries {
            series_ref: 300,
            labels: vec![("a".into(), "bc".into())],
        }]);
        let mut payload = Vec::new();
        assert_eq!(record.encode(&mut payload), SERIES);
        assert_eq!(payload, [0xac, 0x02, 1, 1, b'a', 2, b'b', b'c']);
        assert_eq!(round_trip(&record), Ok(record));
    }

    #[test]
    fn malformed_payloads() {
        assert_eq!(Record::decode(0, &[]), Err(DecodeError::UnknownType(0)));
        assert_eq!(Record::decode(SERIES, &[]), Ok(Record::Series(vec![])));
        assert_eq!(Record::decode(SAMPLES, &[]), Ok(Record::Samples(vec![])));
        assert!(Record::decode(SAMPLES, &[0, 0, 1, 2, 3]).is_err());
        // 1 << 62 labels announced in a 2-byte payload.
        assert!(
            Record::decode(
                SERIES,
                &[1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]
            )
            .is_err()
        );
        assert!(Record::decode(SERIES, &[1, 1, 9, b'a', 0]).is_err());
        assert!(Record::decode(SERIES, &[1, 1, 1, 0xff, 0]).is_err());
    }

    fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
        vec((".{0,12}", ".{0,40}"), 0..12)
    }

    fn record() -> impl Strategy<Value = Record> {
        let series = (any::<u64>(), labels())
            .prop_map(|(series_ref, labels)| RefSeries { series_ref, labels });
        let timestamp = prop_oneof![any::<i64>(), 1_600_000_000_000i64..1_800_000_000_000];
        let sample =
            (any::<u64>(), timestamp, any::<u64>()).prop_map(|(series_ref, timestamp, bits)| {
                RefSample {
                    series_ref,
                    timestamp,
                    value: f64::from_bits(bits),
                }
            });
        prop_oneof![
            vec(series, 0..20).prop_map(Record::Series),
            vec(sample, 0..100).prop_map(Record::Samples),
        ]
    }

    proptest! {
        #[test]
        fn encoding_round_trips(record in record()) {
            prop_assert_eq!(round_trip(&record), Ok(record));
        }

        #[test]
        fn arbitrary_payloads_never_panic(kind in 0u8..4, payload in vec(any::<u8>(), 0..200)) {
            let _ = Record::decode(kind, &payload);
        }
    }
}
