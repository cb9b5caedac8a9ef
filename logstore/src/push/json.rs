//! The JSON push body: `{"streams": [{"stream": {labels}, "values": [[ts, line, {meta}]]}]}`.
//!
//! Follows the JSON example of the Loki HTTP API reference
//! (<https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs>). The decoder
//! is a set of serde visitors that build [`PushRequest`] directly (no intermediate
//! `serde_json::Value`), each knowing where it is, so that an error names the element —
//! `streams[0].values[2][0]` — as well as the line and column.
//!
//! Edge cases decided:
//!
//! * A timestamp must be a JSON *string* holding an integer number of nanoseconds since the
//!   Unix epoch that fits in an `i64` (an optional sign is allowed, as Go's `ParseInt`
//!   allows). JSON numbers, fractions, RFC 3339, empty strings, whitespace and overflow are
//!   errors of the whole body: Loki also fails the whole request when a timestamp does not
//!   parse.
//! * Labels (`stream`) must be an object of strings. `null` or an absent `stream` decodes to
//!   no labels, which validation then rejects for that stream alone. A repeated label name is
//!   kept as [`MalformedLabels::DuplicateName`](super::MalformedLabels) for validation to
//!   reject.
//! * `values` is required and must be an array; each entry is an array of 2 or 3 elements;
//!   the line must be a string (a JSON log line is sent as a string); the third element, if
//!   present, is an object of strings or `null` (no metadata).
//! * Unknown keys are ignored at every level, so newer clients keep working.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Entry, PushRequest, PushStream, abbreviate, labels_from_pairs};
use crate::error::Error;

/// Decodes a JSON push body (already decompressed).
pub fn decode(body: &[u8]) -> Result<PushRequest, Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let request = RequestSeed
        .deserialize(&mut deserializer)
        .map_err(|source| Error::Json { source })?;
    deserializer
        .end()
        .map_err(|source| Error::Json { source })?;
    Ok(request)
}

/// Matches an object key against a list of known keys: `Some(index)` or `None` for others.
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|known| *known == key))
    }
}

struct RequestSeed;

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = PushRequest;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = PushRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a push object {"streams": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut streams = None;
        while let Some(key) = map.next_key_seed(KeySeed(&["streams"]))? {
            match key {
                Some(_) if streams.is_some() => {
                    return Err(de::Error::custom("duplicate key `streams`"));
                }
                Some(_) => streams = Some(map.next_value_seed(StreamsSeed)?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let streams = streams.ok_or_else(|| de::Error::custom("missing key `streams`"))?;
        Ok(PushRequest { streams })
    }
}

struct StreamsSeed;

impl<'de> DeserializeSeed<'de> for StreamsSeed {
    type Value = Vec<PushStream>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for StreamsSeed {
    type Value = Vec<PushStream>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of stream objects in `streams`")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut streams = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(stream) = seq.next_element_seed(StreamSeed {
            stream: streams.len(),
        })? {
            streams.push(stream);
        }
        Ok(streams)
    }
}

struct StreamSeed {
    stream: usize,
}

impl<'de> DeserializeSeed<'de> for StreamSeed {
    type Value = PushStream;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StreamSeed {
    type Value = PushStream;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"a stream object {{"stream": {{labels}}, "values": [...]}} at streams[{}]"#,
            self.stream
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let stream = self.stream;
        let mut labels = None;
        let mut entries = None;
        while let Some(key) = map.next_key_seed(KeySeed(&["stream", "values"]))? {
            match key {
                Some(0) if labels.is_some() => {
                    return Err(de::Error::custom(format!(
                        "duplicate key `stream` in streams[{stream}]"
                    )));
                }
                Some(0) => labels = Some(map.next_value_seed(LabelsSeed { stream })?),
                Some(_) if entries.is_some() => {
                    return Err(de::Error::custom(format!(
                        "duplicate key `values` in streams[{stream}]"
                    )));
                }
                Some(_) => entries = Some(map.next_value_seed(ValuesSeed { stream })?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let entries = entries.ok_or_else(|| {
            de::Error::custom(format!("missing key `values` in streams[{stream}]"))
        })?;
        let (labels, malformed_labels) = labels_from_pairs(labels.flatten().unwrap_or_default());
        Ok(PushStream {
            labels,
            malformed_labels,
            entries,
        })
    }
}

/// A `{"name": "value"}` object (labels or structured metadata), or `null`.
struct PairsSeed<'a> {
    /// The value's description: `"label value"`.
    what: &'static str,
    path: fmt::Arguments<'a>,
}

impl<'de> DeserializeSeed<'de> for PairsSeed<'_> {
    type Value = Option<Vec<(String, String)>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for PairsSeed<'_> {
    type Value = Option<Vec<(String, String)>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object of string {}s at {}", self.what, self.path)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(StringSeed {
                what: self.what,
                path: format_args!("{}.{}", self.path, abbreviate(&name, 100)),
            })?;
            pairs.push((name, value));
        }
        Ok(Some(pairs))
    }
}

struct LabelsSeed {
    stream: usize,
}

impl<'de> DeserializeSeed<'de> for LabelsSeed {
    type Value = Option<Vec<(String, String)>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        PairsSeed {
            what: "label value",
            path: format_args!("streams[{}].stream", self.stream),
        }
        .deserialize(deserializer)
    }
}

/// A string, with the expectation naming what and where it is.
struct StringSeed<'a> {
    /// The string's description: `"label value"`.
    what: &'static str,
    path: fmt::Arguments<'a>,
}

impl<'de> DeserializeSeed<'de> for StringSeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_string(self)
    }
}

impl Visitor<'_> for StringSeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string {} at {}", self.what, self.path)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(v)
    }
}

struct ValuesSeed {
    stream: usize,
}

impl<'de> DeserializeSeed<'de> for ValuesSeed {
    type Value = Vec<Entry>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an array of [timestamp, line] entries at streams[{}].values",
            self.stream
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = seq.next_element_seed(EntrySeed {
            stream: self.stream,
            entry: entries.len(),
        })? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

struct EntrySeed {
    stream: usize,
    entry: usize,
}

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Entry;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"an entry ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {{metadata}}] at streams[{}].values[{}]"#,
            self.stream, self.entry
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (stream, entry) = (self.stream, self.entry);
        let timestamp_ns = seq
            .next_element_seed(TimestampSeed { stream, entry })?
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "streams[{stream}].values[{entry}] is empty: an entry is [timestamp, line]"
                ))
            })?;
        let line = seq
            .next_element_seed(StringSeed {
                what: "log line (send a JSON log line as a string)",
                path: format_args!("streams[{stream}].values[{entry}][1]"),
            })?
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "streams[{stream}].values[{entry}] has a timestamp but no line"
                ))
            })?;
        let metadata = seq
            .next_element_seed(PairsSeed {
                what: "structured metadata value",
                path: format_args!("streams[{stream}].values[{entry}][2]"),
            })?
            .flatten()
            .unwrap_or_default();
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "streams[{stream}].values[{entry}] has more than 3 elements: an entry is \
                 [timestamp, line] or [timestamp, line, metadata]"
            )));
        }
        Ok(Entry {
            timestamp_ns,
            line,
            metadata,
        })
    }
}

struct TimestampSeed {
    stream: usize,
    entry: usize,
}

impl<'de> DeserializeSeed<'de> for TimestampSeed {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for TimestampSeed {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a string of integer nanoseconds since the Unix epoch at streams[{}].values[{}][0]",
            self.stream, self.entry
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_timestamp(v).map_err(|problem| {
            E::custom(format_args!(
                "timestamp {:?} at streams[{}].values[{}][0] {problem}",
                abbreviate(v, 64),
                self.stream,
                self.entry
            ))
        })
    }
}

/// Parses a decimal string of nanoseconds since the Unix epoch, or says what is wrong with
/// it (as the end of a sentence starting with the timestamp).
pub fn parse_timestamp(text: &str) -> Result<i64, &'static str> {
    use std::num::IntErrorKind;
    if text.is_empty() {
        return Err("is empty: send integer nanoseconds since the Unix epoch");
    }
    text.parse::<i64>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            "does not fit in a signed 64-bit count of nanoseconds (years 1677..2262)"
        }
        _ if text.contains(['T', ':']) => {
            "is not integer nanoseconds since the Unix epoch (RFC 3339 is not accepted here)"
        }
        _ if text.contains(['.', 'e', 'E']) => {
            "is not integer nanoseconds since the Unix epoch (fractional seconds are not accepted)"
        }
        _ => "is not integer nanoseconds since the Unix epoch",
    })
}

#[cfg(test)]
mod tests {
    use sightline_core::labels::Labels;

    use super::*;
    use crate::push::MalformedLabels;

    fn ok(body: &str) -> PushRequest {
        match decode(body.as_bytes()) {
            Ok(request) => request,
            Err(e) => panic!("{body}: {e}"),
        }
    }

    fn err(body: &str) -> String {
        match decode(body.as_bytes()) {
            Ok(request) => panic!("{body} decoded to {request:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn decodes_entries_labels_and_metadata() {
        let request = ok(r#"{"streams":[{"stream":{"job":"a","env":"lab"},"values":[
            ["1700000000000000000","one"],
            ["1700000000000000001","two",{"trace_id":"abc"}],
            ["-5","three",null]]}], "extra": 1}"#);
        assert_eq!(request.streams.len(), 1);
        let stream = &request.streams[0];
        assert_eq!(
            stream.labels,
            Labels::from_pairs([("env", "lab"), ("job", "a")])
        );
        assert_eq!(stream.malformed_labels, None);
        assert_eq!(stream.entries.len(), 3);
        assert_eq!(stream.entries[0].timestamp_ns, 1_700_000_000_000_000_000);
        assert_eq!(stream.entries[1].line, "two");
        assert_eq!(
            stream.entries[1].metadata,
            vec![("trace_id".to_owned(), "abc".to_owned())]
        );
        assert_eq!(stream.entries[2].timestamp_ns, -5);
        assert!(stream.entries[2].metadata.is_empty());
    }

    #[test]
    fn absent_or_null_labels_decode_to_none() {
        let request = ok(r#"{"streams":[{"values":[]},{"stream":null,"values":[]}]}"#);
        assert!(request.streams.iter().all(|s| s.labels.is_empty()));
    }

    #[test]
    fn duplicate_label_names_are_marked() {
        let request = ok(r#"{"streams":[{"stream":{"a":"1","a":"2"},"values":[]}]}"#);
        assert_eq!(
            request.streams[0].malformed_labels,
            Some(MalformedLabels::DuplicateName("a".into()))
        );
    }

    #[test]
    fn errors_name_the_element() {
        let cases = [
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["x","l"]]}]}"#,
                r#"timestamp "x" at streams[0].values[0][0] is not integer nanoseconds"#,
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[[1,"l"]]}]}"#,
                "invalid type: integer `1`, expected a string of integer nanoseconds since the \
                 Unix epoch at streams[0].values[0][0]",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1",{}]]}]}"#,
                "expected a string log line (send a JSON log line as a string) at \
                 streams[0].values[0][1]",
            ),
            (
                r#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
                "expected a string label value at streams[0].stream.a",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1","l",{"k":2}]]}]}"#,
                "at streams[0].values[0][2].k",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1","l",{},4]]}]}"#,
                "has more than 3 elements",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
                "streams[0].values[0] has a timestamp but no line",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"}}]}"#,
                "missing key `values` in streams[0]",
            ),
            (r#"{"streams":{}}"#, "expected an array of stream objects"),
            (r#"{}"#, "missing key `streams`"),
            (r#"{"streams":[]} x"#, "trailing characters"),
        ];
        for (body, expected) in cases {
            let message = err(body);
            assert!(message.contains(expected), "{body}\n  got: {message}");
            assert!(message.contains("line 1 column"), "{message}");
        }
    }

    #[test]
    fn timestamps_are_strict() {
        assert_eq!(
            parse_timestamp("1700000000000000000"),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_timestamp("+1"), Ok(1));
        for bad in [
            "",
            " 1",
            "1.5",
            "1e9",
            "2023-11-14T22:13:20Z",
            "9223372036854775808",
            "0x10",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_timestamp("99999999999999999999")
                .err()
                .is_some_and(|m| m.contains("64-bit"))
        );
    }
}
