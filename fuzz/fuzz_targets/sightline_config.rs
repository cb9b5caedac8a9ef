//! Sightline's configuration file: parsed and checked, with the Alertmanager section it may
//! hold inline, errors formatted with their positions.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sightline_alerting::notifier::config::AlertmanagerConfig;
use sightline_core::config::Config;

fuzz_target!(|text: &[u8]| {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let path = Path::new("sightline.yml");
    if let Err(error) = Config::parse(path, text) {
        std::hint::black_box(error.to_string());
    }
    if let Err(error) = AlertmanagerConfig::parse_inline(path, text) {
        std::hint::black_box(error.to_string());
    }
});
