//! Loki pushes as protobuf (`logproto.PushRequest`, snappy compressed as agents send them).
//! An input that is itself a snappy block (the seeds are real push bodies) is decompressed
//! first, so that mutations reach the message; the message is then pushed compressed, and
//! the input is pushed as it is, for the snappy framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_fuzz::push_body;

fuzz_target!(|input: &[u8]| {
    let message = snap::raw::Decoder::new()
        .decompress_vec(input)
        .unwrap_or_else(|_| input.to_vec());
    if let Ok(compressed) = snap::raw::Encoder::new().compress_vec(&message) {
        push_body(&compressed, "application/x-protobuf", None);
    }
    push_body(input, "application/x-protobuf", None);
});
