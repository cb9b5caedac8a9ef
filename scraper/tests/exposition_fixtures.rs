//! Data-driven suites for the exposition parser over `../shared/fixtures/exposition`:
//! the OpenMetrics 1.0 parser cases, Prometheus's textparse benchmark pages and a real
//! node_exporter page.

// Helpers outside #[test] fns unwrap too: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use sightline_scraper::exposition::{Entry, Format, MetricType, ParseError, Parser, Validation};

/// The shared fixtures, relative to the package root (where cargo runs tests).
const FIXTURES: &str = "../../shared/fixtures/exposition";

/// What a whole body parsed to.
#[derive(Debug, Default)]
struct Counts {
    samples: usize,
    /// Distinct family names in HELP/TYPE/UNIT lines, in the order first seen.
    families: Vec<String>,
    types: Vec<(String, MetricType)>,
    exemplars: usize,
}

fn parse_all(body: &[u8], format: Format) -> Result<Counts, ParseError> {
    parse_with(body, format, Validation::Strict)
}

fn parse_with(body: &[u8], format: Format, validation: Validation) -> Result<Counts, ParseError> {
    let mut p = Parser::from_bytes(body, format)?.validation(validation);
    let mut c = Counts::default();
    while let Some(e) = p.next_entry() {
        match e? {
            Entry::Sample(s) => {
                c.samples += 1;
                c.exemplars += usize::from(s.exemplar.is_some());
            }
            Entry::Help { family, .. } | Entry::Unit { family, .. } => {
                if !c.families.iter().any(|f| f == family) {
                    c.families.push(family.to_owned());
                }
            }
            Entry::Type {
                family,
                metric_type,
            } => {
                if !c.families.iter().any(|f| f == family) {
                    c.families.push(family.to_owned());
                }
                c.types.push((family.to_owned(), metric_type));
            }
        }
    }
    Ok(c)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn openmetrics_parser_suite() {
    let dir = PathBuf::from(FIXTURES).join("openmetrics/parsers");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("test.json").exists())
        .collect();
    cases.sort();
    let (mut passed, mut failed) = (0, Vec::new());
    let (mut positive, mut negative) = (0, 0);
    for case in &cases {
        let meta: serde_json::Value =
            serde_json::from_slice(&read(&case.join("test.json"))).unwrap();
        let should_parse = meta["shouldParse"].as_bool().unwrap();
        let file = meta["file"].as_str().unwrap_or("metrics");
        let body = read(&case.join(file));
        let result = parse_all(&body, Format::OpenMetrics);
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if should_parse {
            positive += 1;
        } else {
            negative += 1;
        }
        match (should_parse, result) {
            (true, Ok(_)) | (false, Err(_)) => passed += 1,
            (true, Err(e)) => failed.push(format!("{name}: rejected: {e}")),
            (false, Ok(_)) => failed.push(format!("{name}: accepted")),
        }
    }
    for f in &failed {
        println!("FAIL {f}");
    }
    println!(
        "openmetrics cases: {passed} passed, {} failed ({positive} should parse, {negative} should be rejected)",
        failed.len()
    );
    assert_eq!((positive, negative), (44, 167), "fixture set changed");
    assert!(
        failed.is_empty(),
        "{} OpenMetrics cases failed",
        failed.len()
    );
}

#[test]
fn openmetrics_errors_name_line_and_column() {
    let dir = PathBuf::from(FIXTURES).join("openmetrics/parsers");
    let err = |case: &str| {
        parse_all(&read(&dir.join(case).join("metrics")), Format::OpenMetrics)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("bad_missing_or_wrong_quotes_on_label_value_0"),
        "line 1:5: expected label value in double quotes"
    );
    assert_eq!(
        err("bad_blank_line"),
        "line 2:1: blank line (not allowed in OpenMetrics)"
    );
    assert_eq!(
        err("bad_no_eof"),
        "line 1:1: missing \"# EOF\" at the end of an OpenMetrics body"
    );
    assert!(err("bad_histograms_9").starts_with("line 3:1: histogram \"a\""));
}

#[test]
fn prometheus_textparse_pages() {
    let dir = PathBuf::from(FIXTURES).join("prometheus-textparse");
    let page = parse_all(
        &read(&dir.join("alltypes.237mfs.prom.txt")),
        Format::PrometheusText,
    )
    .unwrap();
    assert_eq!(page.families.len(), 237);
    assert_eq!(page.samples, 1857);

    let nometa = parse_all(
        &read(&dir.join("alltypes.237mfs.nometa.prom.txt")),
        Format::PrometheusText,
    )
    .unwrap();
    assert_eq!(nometa.families.len(), 0);
    assert_eq!(nometa.samples, 1857);

    // client_golang writes `_sum` on a histogram with negative buckets, which the
    // OpenMetrics spec (and its test suite) forbids; Prometheus (and our Prometheus
    // validation) accept it.
    let om5_body = read(&dir.join("alltypes.5mfs.om.txt"));
    let strict = parse_all(&om5_body, Format::OpenMetrics).unwrap_err();
    assert!(strict.to_string().contains("_sum"), "{strict}");
    let om5 = parse_with(&om5_body, Format::OpenMetrics, Validation::Prometheus).unwrap();
    assert_eq!((om5.families.len(), om5.samples, om5.exemplars), (5, 53, 6));
    let om1 = parse_all(&read(&dir.join("1histogram.om.txt")), Format::OpenMetrics).unwrap();
    assert_eq!((om1.families.len(), om1.samples, om1.exemplars), (1, 42, 0));
    println!(
        "textparse: 237mfs {} samples, 5mfs.om {} samples ({} exemplars), 1histogram.om {} samples ({} exemplars)",
        page.samples, om5.samples, om5.exemplars, om1.samples, om1.exemplars
    );
}

#[test]
fn node_exporter_page() {
    let body = read(&PathBuf::from(FIXTURES).join("node_exporter.prom"));
    let c = parse_all(&body, Format::PrometheusText).unwrap();
    // Our own count of the file: every non-comment, non-blank line is a sample, and every
    // family has a TYPE line.
    let text = std::str::from_utf8(&body).unwrap();
    let sample_lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    let type_lines = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!((sample_lines, type_lines), (507, 283));
    assert_eq!(c.samples, 507);
    assert_eq!(c.families.len(), 283);
    let count = |t| c.types.iter().filter(|(_, x)| *x == t).count();
    assert_eq!(count(MetricType::Gauge), 175);
    assert_eq!(count(MetricType::Counter), 60);
    assert_eq!(count(MetricType::Unknown), 47);
    assert_eq!(count(MetricType::Summary), 1);
}
