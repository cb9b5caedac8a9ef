//! Scrape bodies: every entry of a body in both text formats and both validations, down to
//! each sample's labels and exemplar, as the scrape loop reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_scraper::exposition::{Entry, Format, Parser, Validation};

fuzz_target!(|body: &[u8]| {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        for validation in [Validation::Strict, Validation::Prometheus] {
            let Ok(parser) = Parser::from_bytes(body, format) else {
                return;
            };
            let mut parser = parser.validation(validation);
            while let Some(Ok(entry)) = parser.next_entry() {
                if let Entry::Sample(sample) = entry {
                    let labels = sample.labels.iter().map(|l| l.name.len() + l.value.len());
                    let exemplar = sample.exemplar.map(|e| e.labels.iter().count());
                    std::hint::black_box((labels.sum::<usize>(), exemplar));
                }
            }
        }
    }
});
