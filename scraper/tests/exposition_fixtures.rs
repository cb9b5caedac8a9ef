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

/// One entry as the scrape loop uses it (a sample's labels aside), or the error that ended
/// the body.
#[derive(Debug, PartialEq)]
enum Outcome {
    Sample {
        series: String,
        name: String,
        value: u64,
        timestamp_ms: Option<i64>,
        exemplar: Option<(u64, Option<i64>)>,
    },
    Metadata(String),
    Error(String),
}

/// Every outcome of `body`; with `guess`, each entry is asked for with the series length
/// `guess` gives for it, `known` saying which texts are known, and the count of lines whose
/// label set was skipped is returned too.
fn outcomes(
    body: &str,
    format: Format,
    mut guess: Option<&mut dyn FnMut(usize) -> usize>,
    known: &std::collections::HashSet<String>,
) -> (Vec<Outcome>, usize) {
    let mut p = Parser::new(body, format).validation(Validation::Prometheus);
    let (mut out, mut skipped) = (Vec::new(), 0);
    loop {
        let mut skips = false;
        let entry = match guess.as_mut() {
            Some(guess) => p.next_entry_known(guess(out.len()), &mut |series| {
                skips = known.contains(series);
                skips
            }),
            None => p.next_entry(),
        };
        let Some(entry) = entry else { break };
        out.push(match entry {
            Ok(Entry::Sample(s)) => {
                if skips {
                    assert!(s.labels.is_empty(), "{}: labels were skipped", s.series);
                    skipped += 1;
                }
                Outcome::Sample {
                    series: s.series.to_owned(),
                    name: s.name.to_owned(),
                    value: s.value.to_bits(),
                    timestamp_ms: s.timestamp_ms,
                    exemplar: s.exemplar.map(|e| (e.value.to_bits(), e.timestamp_ms)),
                }
            }
            Ok(other) => Outcome::Metadata(format!("{other:?}")),
            Err(error) => Outcome::Error(error.to_string()),
        });
    }
    (out, skipped)
}

/// A scrape loop skips the label set of a line whose series text it knows; that must change
/// nothing else, whatever length it guesses. Over every fixture body, in both formats: the
/// true next series' length, and lengths of other known series, give exactly what parsing
/// in full gives.
#[test]
fn skipping_known_label_sets_changes_nothing_else() {
    let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in ["openmetrics/parsers", "prometheus-textparse"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(PathBuf::from(FIXTURES).join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            let file = if path.is_dir() {
                path.join("metrics")
            } else {
                path
            };
            if file.exists() {
                bodies.push((file.display().to_string(), read(&file)));
            }
        }
    }
    bodies.push((
        "node_exporter.prom".into(),
        read(&PathBuf::from(FIXTURES).join("node_exporter.prom")),
    ));
    bodies.push((
        "hand-made".into(),
        b"up 1\nup {a=\"1\"} 2\nup{a=\"x y\"} 3\n  up{a=\"x y\"}\t4 1000\r\n\
          up{a=\"x\", b=\"\\\"} 9\"} 5\n{\"dotted.name\",a=\"1\"} 6\nup{a=\"\xc3\xa9\"} 7\n\
          up 8 # {} 1\nup{a=\"1\"} {b=\"2\"} 9\n# EOF\n"
            .to_vec(),
    ));
    let (mut runs, mut skipped_total) = (0, 0);
    for (name, body) in &bodies {
        let Ok(body) = std::str::from_utf8(body) else {
            continue;
        };
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            let (full, _) = outcomes(body, format, None, &Default::default());
            let known: std::collections::HashSet<String> = full
                .iter()
                .filter_map(|o| match o {
                    Outcome::Sample { series, .. } => Some(series.clone()),
                    _ => None,
                })
                .collect();
            // The true length of the series at each outcome's index (0 where none).
            let true_lens: Vec<usize> = full
                .iter()
                .map(|o| match o {
                    Outcome::Sample { series, .. } => series.len(),
                    _ => 0,
                })
                .collect();
            let (guided, skipped) = outcomes(
                body,
                format,
                Some(&mut |i| true_lens.get(i).copied().unwrap_or(0)),
                &known,
            );
            assert_eq!(guided, full, "{name} ({format:?}), true lengths");
            skipped_total += skipped;
            let mut lens: Vec<usize> = known.iter().map(String::len).collect();
            lens.sort_unstable();
            lens.dedup();
            lens.push(1);
            for shift in 0..lens.len().min(8) {
                let (guided, _) = outcomes(
                    body,
                    format,
                    Some(&mut |i| lens[(i + shift) % lens.len()]),
                    &known,
                );
                assert_eq!(guided, full, "{name} ({format:?}), other lengths");
            }
            runs += 1;
        }
    }
    println!("{runs} bodies × formats agree; {skipped_total} label sets skipped");
    assert!(
        runs > 300 && skipped_total > 2_000,
        "{runs} {skipped_total}"
    );
}
