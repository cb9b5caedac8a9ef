//! Loki pushes as JSON, plain and gzip-encoded: decoded, validated, the rejection answer
//! formatted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_fuzz::push_body;

fuzz_target!(|body: &[u8]| {
    push_body(body, "application/json", None);
    push_body(body, "application/json", Some("gzip"));
});
