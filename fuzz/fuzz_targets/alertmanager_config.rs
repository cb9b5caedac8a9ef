//! Alertmanager configuration files: parsed and checked (routes, receivers, inhibitions,
//! time intervals, matchers), errors formatted with their positions.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sightline_alerting::notifier::config::AlertmanagerConfig;

fuzz_target!(|text: &[u8]| {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Err(error) = AlertmanagerConfig::parse(Path::new("alertmanager.yml"), text) {
        std::hint::black_box(error.to_string());
    }
});
