//! Properties of the push codecs: no input makes a decoder (or validation after it) panic,
//! and protobuf and JSON bodies round-trip.

use std::time::SystemTime;

use proptest::prelude::*;
use sightline_core::labels::Labels;
use sightline_logstore::push::protobuf;
use sightline_logstore::push::{
    self, DecodeLimits, Entry, PushLimits, PushRequest, PushStream, json, parse_label_text,
};

const SMALL: DecodeLimits = DecodeLimits {
    max_decompressed_bytes: 1 << 20,
};

/// Decodes with every content type and encoding, validating whatever decodes.
fn decode_every_way(body: &[u8]) {
    for content_type in [
        Some("application/json"),
        Some("application/x-protobuf"),
        None,
    ] {
        for encoding in [None, Some("gzip")] {
            if let Ok(request) = push::decode(body, content_type, encoding, &SMALL) {
                let _ = push::validate(request, &PushLimits::default(), SystemTime::now());
            }
        }
    }
}

const VALID_JSON: &str = r#"{"streams":[{"stream":{"job":"a","env":"lab"},"values":[["1700000000000000000","one",{"k":"v"}],["1700000000000000001","two"]]}]}"#;

fn valid_protobuf() -> Vec<u8> {
    match json::decode(VALID_JSON.as_bytes()) {
        Ok(request) => protobuf::encode(&request),
        Err(e) => panic!("{e}"),
    }
}

fn label_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", any::<String>()), 1..5)
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        any::<i64>(),
        any::<String>(),
        prop::collection::vec(("[a-z_]{1,6}", any::<String>()), 0..3),
    )
        .prop_map(|(timestamp_ns, line, metadata)| Entry {
            timestamp_ns,
            line,
            metadata,
        })
}

fn request() -> impl Strategy<Value = PushRequest> {
    prop::collection::vec((label_pairs(), prop::collection::vec(entry(), 0..5)), 0..4).prop_map(
        |streams| PushRequest {
            streams: streams
                .into_iter()
                .map(|(pairs, entries)| PushStream {
                    // Distinct names, so the set round-trips without a duplicate marker.
                    labels: Labels::from_pairs(pairs),
                    malformed_labels: None,
                    entries,
                })
                .collect(),
        },
    )
}

/// The JSON body an agent would send for `request`.
fn to_json(request: &PushRequest) -> Vec<u8> {
    let streams: Vec<serde_json::Value> = request
        .streams
        .iter()
        .map(|stream| {
            let labels: serde_json::Map<String, serde_json::Value> = stream
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone().into()))
                .collect();
            let values: Vec<serde_json::Value> = stream
                .entries
                .iter()
                .map(|e| {
                    let mut entry: Vec<serde_json::Value> =
                        vec![e.timestamp_ns.to_string().into(), e.line.clone().into()];
                    if !e.metadata.is_empty() {
                        let mut map = serde_json::Map::new();
                        for (name, value) in &e.metadata {
                            map.insert(name.clone(), value.clone().into());
                        }
                        entry.push(map.into());
                    }
                    entry.into()
                })
                .collect();
            serde_json::json!({"stream": labels, "values": values})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap_or_default()
}

/// Metadata with repeated names cannot survive a JSON object; keep the last of each.
fn json_metadata(metadata: &[(String, String)]) -> Vec<(String, String)> {
    let mut map = std::collections::BTreeMap::new();
    for (name, value) in metadata {
        map.insert(name.clone(), value.clone());
    }
    map.into_iter().collect()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_every_way(&body);
        let _ = protobuf::decode_uncompressed(&body);
        let _ = push::gunzip(&body, 1 << 20);
        let _ = parse_label_text(&String::from_utf8_lossy(&body));
    }

    #[test]
    fn mutated_json_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut body = VALID_JSON.as_bytes().to_vec();
        for (index, byte) in edits {
            let at = index.index(body.len());
            body[at] = byte;
        }
        decode_every_way(&body);
    }

    #[test]
    fn mutated_protobuf_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut body = valid_protobuf();
        for (index, byte) in edits {
            let at = index.index(body.len());
            body[at] = byte;
        }
        decode_every_way(&body);
        // Also mutate inside the snappy block, where the protobuf decoder sees the damage.
        if let Ok(mut raw) = snap::raw::Decoder::new().decompress_vec(&valid_protobuf()) {
            let len = raw.len();
            raw[len / 2] ^= body[0];
            let _ = protobuf::decode_uncompressed(&raw);
        }
    }

    #[test]
    fn arbitrary_label_text_never_panics(text in "\\{[a-z_=\"', \\\\xu0-9}{`]{0,40}") {
        let _ = parse_label_text(&text);
    }

    #[test]
    fn protobuf_round_trips(request in request()) {
        let body = protobuf::encode(&request);
        let decoded = push::decode(&body, Some("application/x-protobuf"), None, &SMALL);
        prop_assert_eq!(decoded.ok(), Some(request));
    }

    #[test]
    fn json_round_trips(request in request()) {
        let body = to_json(&request);
        let decoded = push::decode(&body, Some("application/json"), None, &SMALL);
        let mut expected = request;
        for stream in &mut expected.streams {
            for entry in &mut stream.entries {
                entry.metadata = json_metadata(&entry.metadata);
            }
        }
        let decoded = decoded.map(|mut r| {
            for stream in &mut r.streams {
                for entry in &mut stream.entries {
                    entry.metadata = json_metadata(&entry.metadata);
                }
            }
            r
        });
        prop_assert_eq!(decoded.ok(), Some(expected));
    }
}
