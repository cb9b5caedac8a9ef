//! Properties of the exposition parser: no input makes it panic, and generated valid
//! lines round-trip through it in both formats.

// Helpers outside #[test] fns unwrap too: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sightline_scraper::exposition::{Entry, Format, Parser, Validation};

fn drain(p: &mut Parser<'_>) -> usize {
    let mut n = 0;
    while let Some(e) = p.next_entry() {
        n += 1;
        if let Ok(Entry::Sample(s)) = e {
            // Touch everything a caller would.
            let _ = (s.series.len(), s.name.len(), s.value, s.timestamp_ms);
            for l in s.labels {
                let _ = (l.name.len(), l.value.len());
            }
            if let Some(x) = s.exemplar {
                let _ = x.labels.iter().count();
            }
        }
        assert!(n < 1_000_000, "parser does not terminate");
    }
    n
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1e6f64..1e6),
    ]
}

/// A metric name, a set of distinct label names, values (any text), a value and a timestamp.
fn series() -> impl Strategy<Value = (String, Vec<(String, String)>, f64, Option<i64>)> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
        proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,12}", ".{0,16}", 0..24),
        value(),
        proptest::option::of(-1_000_000_000_000_000i64..1_000_000_000_000_000),
    )
        .prop_map(|(n, l, v, t)| (n, l.into_iter().collect(), v, t))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            if let Ok(mut p) = Parser::from_bytes(&body, format) {
                drain(&mut p);
            }
        }
    }

    #[test]
    fn exposition_like_text_never_panics(
        body in "[a-z_:{}\",=# \\\\.\n\t0-9eE+\\-INFaé]{0,300}"
    ) {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            for v in [Validation::Strict, Validation::Prometheus] {
                drain(&mut Parser::new(&body, format).validation(v));
            }
        }
    }

    #[test]
    fn text_lines_round_trip((name, labels, v, ts) in series()) {
        let mut line = name.clone();
        if !labels.is_empty() {
            let l: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            line = format!("{line}{{{}}}", l.join(","));
        }
        let series_text = line.clone();
        line = format!("{line} {}", format_value(v));
        if let Some(t) = ts {
            line = format!("{line} {t}");
        }
        line.push('\n');
        let mut p = Parser::new(&line, Format::PrometheusText);
        let e = p.next_entry();
        let Some(Ok(Entry::Sample(s))) = e else {
            return Err(TestCaseError::fail(format!("{line:?}: {e:?}")));
        };
        prop_assert_eq!(s.name, name.as_str());
        prop_assert_eq!(s.series, series_text.as_str());
        let got: Vec<(String, String)> =
            s.labels.iter().map(|l| (l.name.to_owned(), l.value.to_owned())).collect();
        prop_assert_eq!(&got, &labels);
        prop_assert!(s.value.to_bits() == v.to_bits() || (s.value.is_nan() && v.is_nan()));
        prop_assert_eq!(s.timestamp_ms, ts);
        prop_assert!(p.next_entry().is_none());
    }

    #[test]
    fn openmetrics_gauges_round_trip(
        (name, labels, v, ts) in series(),
        quoted in any::<bool>(),
    ) {
        let l: Vec<String> =
            labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let series_text = if quoted {
            let mut items = vec![format!("\"{}\"", escape(&name))];
            items.extend(l);
            format!("{{{}}}", items.join(","))
        } else if l.is_empty() {
            name.clone()
        } else {
            format!("{name}{{{}}}", l.join(","))
        };
        let mut body = format!("# TYPE {name} gauge\n{series_text} {}", format_value(v));
        if let Some(t) = ts {
            // Whole seconds, so the millisecond conversion is exact.
            body = format!("{body} {}", t / 1000);
        }
        body.push_str("\n# EOF\n");
        let mut p = Parser::new(&body, Format::OpenMetrics);
        let is_type = matches!(p.next_entry(), Some(Ok(Entry::Type { .. })));
        prop_assert!(is_type, "no TYPE entry");
        let e = p.next_entry();
        let Some(Ok(Entry::Sample(s))) = e else {
            return Err(TestCaseError::fail(format!("{body:?}: {e:?}")));
        };
        prop_assert_eq!(s.name, name.as_str());
        prop_assert_eq!(s.series, series_text.as_str());
        let got: Vec<(String, String)> =
            s.labels.iter().map(|l| (l.name.to_owned(), l.value.to_owned())).collect();
        prop_assert_eq!(&got, &labels);
        prop_assert!(s.value.to_bits() == v.to_bits() || (s.value.is_nan() && v.is_nan()));
        prop_assert_eq!(s.timestamp_ms, ts.map(|t| t / 1000 * 1000));
        prop_assert!(p.next_entry().is_none());
    }
}
