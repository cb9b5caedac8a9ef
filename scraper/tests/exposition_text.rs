//! Behaviour of the exposition parser on hand-written bodies: the lines `prometheus-parse`
//! drops, escapes, special values, timestamps, quoted UTF-8 names, exemplars, error
//! positions, and content-type negotiation.

// Helpers outside #[test] fns unwrap too: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sightline_scraper::exposition::{
    ContentTypeError, Entry, Format, MetricType, Parser, Validation, negotiate,
};

/// Labels, value and timestamp of an exemplar.
type OwnedExemplar = (Vec<(String, String)>, f64, Option<i64>);

/// An owned copy of one sample, for assertions.
#[derive(Debug, PartialEq)]
struct S {
    series: String,
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    ts: Option<i64>,
    exemplar: Option<OwnedExemplar>,
}

fn samples(body: &str, format: Format) -> Result<Vec<S>, String> {
    let mut p = Parser::new(body, format);
    let mut out = Vec::new();
    while let Some(e) = p.next_entry() {
        if let Entry::Sample(s) = e.map_err(|e| e.to_string())? {
            out.push(S {
                series: s.series.to_owned(),
                name: s.name.to_owned(),
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_owned(), l.value.to_owned()))
                    .collect(),
                value: s.value,
                ts: s.timestamp_ms,
                exemplar: s.exemplar.map(|x| {
                    (
                        x.labels
                            .iter()
                            .map(|l| (l.name.to_owned(), l.value.to_owned()))
                            .collect(),
                        x.value,
                        x.timestamp_ms,
                    )
                }),
            });
        }
    }
    Ok(out)
}

fn text(body: &str) -> Vec<S> {
    samples(body, Format::PrometheusText).unwrap()
}

fn text_err(body: &str) -> String {
    samples(body, Format::PrometheusText).unwrap_err()
}

fn labels(l: &[(&str, &str)]) -> Vec<(String, String)> {
    l.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn lines_prometheus_parse_drops() {
    let s = text(concat!(
        "node:cpu_seconds:rate5m{mode=\"idle\"} 0.5\n",
        "a{path=\"/x/{id}\"} 1\n",
        "a{q=\"say \\\"hi\\\"\"} 2\n",
        "a{list=\"a,b,c\",other=\"x\"} 3\n",
    ));
    assert_eq!(s.len(), 4);
    assert_eq!(s[0].name, "node:cpu_seconds:rate5m");
    assert_eq!(s[1].labels, labels(&[("path", "/x/{id}")]));
    assert_eq!(s[2].labels, labels(&[("q", "say \"hi\"")]));
    assert_eq!(s[2].series, "a{q=\"say \\\"hi\\\"\"}");
    assert_eq!(s[3].labels, labels(&[("list", "a,b,c"), ("other", "x")]));
}

#[test]
fn escapes_values_and_timestamps() {
    let s = text(concat!(
        "# HELP m Help with \\\\ and \\n and \\z.\n",
        "# TYPE m untyped\n",
        "m{a=\"back\\\\slash\",b=\"new\\nline\",c=\"un\\known\"} 1.5e3 1700000000000\n",
        "m{a=\"nan\"} NaN\n",
        "m{a=\"pinf\"} +Inf -5\n",
        "m{a=\"ninf\"} -Inf\n",
        "m{a=\"exp\"} -1.25E-2\n",
    ));
    assert_eq!(
        s[0].labels,
        labels(&[("a", "back\\slash"), ("b", "new\nline"), ("c", "un\\known")])
    );
    assert_eq!((s[0].value, s[0].ts), (1500.0, Some(1_700_000_000_000)));
    assert!(s[1].value.is_nan());
    assert_eq!((s[2].value, s[2].ts), (f64::INFINITY, Some(-5)));
    assert_eq!(s[3].value, f64::NEG_INFINITY);
    assert_eq!(s[4].value, -0.0125);

    let mut p = Parser::new(
        "# HELP m a \\\\ b \\n c \\z\n# TYPE m untyped\n",
        Format::PrometheusText,
    );
    match p.next_entry() {
        Some(Ok(Entry::Help { family, help })) => {
            assert_eq!((family, help), ("m", "a \\ b \n c \\z"));
        }
        other => panic!("{other:?}"),
    }
    match p.next_entry() {
        Some(Ok(Entry::Type {
            family,
            metric_type,
        })) => assert_eq!((family, metric_type), ("m", MetricType::Unknown)),
        other => panic!("{other:?}"),
    }
    assert!(p.next_entry().is_none());
}

#[test]
fn text_format_whitespace_comments_and_crlf() {
    let s = text(concat!(
        "\n",
        "# just a comment\n",
        "#HELP m no space after the hash\n",
        "   m { a = \"1\" , b=\"2\", }   3\t 42  \r\n",
        "\n",
        "# EOF\n",
        "m{a=\"2\"} 4\n",
    ));
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].labels, labels(&[("a", "1"), ("b", "2")]));
    assert_eq!((s[0].value, s[0].ts), (3.0, Some(42)));
}

#[test]
fn quoted_utf8_names() {
    let s = text(concat!(
        "{\"my.metric\", \"label.name\"=\"v\", plain=\"w\"} 1\n",
        "{\"ünï\"} 2\n",
        "m{\"weird \\\"label\\\"\"=\"x\"} 3\n",
    ));
    assert_eq!(s[0].name, "my.metric");
    assert_eq!(s[0].labels, labels(&[("label.name", "v"), ("plain", "w")]));
    assert_eq!(
        s[0].series,
        "{\"my.metric\", \"label.name\"=\"v\", plain=\"w\"}"
    );
    assert_eq!(s[1].name, "ünï");
    assert!(s[1].labels.is_empty());
    assert_eq!(s[2].labels, labels(&[("weird \"label\"", "x")]));

    let mut p = Parser::new("# TYPE \"my.metric\" gauge\n", Format::PrometheusText);
    assert!(matches!(
        p.next_entry(),
        Some(Ok(Entry::Type {
            family: "my.metric",
            metric_type: MetricType::Gauge
        }))
    ));
}

#[test]
fn text_format_errors_have_positions() {
    assert_eq!(
        text_err("m{a=1} 1\n"),
        "line 1:5: expected label value in double quotes"
    );
    assert_eq!(
        text_err("ok 1\nm{a=\"1} 1\n"),
        "line 2:5: unterminated quoted string"
    );
    assert_eq!(
        text_err("m 0x1p3\n"),
        "line 1:3: invalid value \"0x1p3\": expected a decimal float, NaN, +Inf or -Inf"
    );
    assert_eq!(text_err("m 1_000\n").split(':').next(), Some("line 1"));
    assert_eq!(
        text_err("m 1 1.5\n"),
        "line 1:5: invalid timestamp \"1.5\": expected integer milliseconds"
    );
    assert_eq!(
        text_err("m{a=\"1\",a=\"2\"} 1\n"),
        "line 1:9: duplicate label name \"a\""
    );
    assert_eq!(
        text_err("m\n"),
        "line 1:2: expected space and value after metric"
    );
    assert_eq!(text_err("0m 1\n"), "line 1:1: invalid metric name \"0m\"");
    assert_eq!(
        text_err("m{1a=\"x\"} 1\n"),
        "line 1:3: invalid label name \"1a\""
    );
    assert_eq!(
        text_err("# TYPE m gauges\n"),
        "line 1:10: invalid metric type \"gauges\""
    );
    assert_eq!(
        text_err("m 1 # {a=\"b\"} 1\n"),
        "line 1:5: exemplars are not allowed in the text format 0.0.4"
    );
    assert_eq!(text_err("{} 1\n"), "line 1:1: expected metric name");
    assert_eq!(
        text_err("é{ä=\"1\"} 1\n"),
        "line 1:1: invalid metric name \"é\""
    );
    assert_eq!(
        text_err("m{a=\"ä\" 1} 1\n"),
        "line 1:9: expected ',' or '}' after label"
    );
}

#[test]
fn parser_stops_after_first_error() {
    let mut p = Parser::new("a 1\nb x\nc 3\n", Format::PrometheusText);
    assert!(matches!(p.next_entry(), Some(Ok(_))));
    assert!(matches!(p.next_entry(), Some(Err(_))));
    assert!(p.next_entry().is_none());
}

#[test]
fn invalid_utf8_is_located() {
    let err = Parser::from_bytes(b"a 1\nb{x=\"\xff\"} 1\n", Format::PrometheusText).unwrap_err();
    assert_eq!(err.to_string(), "line 2:6: invalid UTF-8");
}

#[test]
fn openmetrics_timestamps_and_exemplars() {
    let s = samples(
        concat!(
            "# TYPE a counter\n",
            "a_total{x=\"1\"} 3 1.5 # {trace_id=\"abc\",span=\"\\\"q\\\"\"} 0.25 1700000000.123\n",
            "a_created{x=\"1\"} 1700000000 1.5\n",
            "# TYPE h histogram\n",
            "h_bucket{le=\"1\"} 1 # {trace_id=\"t\"} 0.5\n",
            "h_bucket{le=\"+Inf\"} 2\n",
            "h_count 2\n",
            "h_sum 1.5\n",
            "# EOF\n",
        ),
        Format::OpenMetrics,
    )
    .unwrap();
    assert_eq!(s.len(), 6);
    assert_eq!(s[0].ts, Some(1500));
    assert_eq!(
        s[0].exemplar,
        Some((
            labels(&[("trace_id", "abc"), ("span", "\"q\"")]),
            0.25,
            Some(1_700_000_000_123)
        ))
    );
    assert_eq!(s[0].series, "a_total{x=\"1\"}");
    assert_eq!(
        s[2].exemplar,
        Some((labels(&[("trace_id", "t")]), 0.5, None))
    );
    assert_eq!(s[3].exemplar, None);
}

#[test]
fn openmetrics_metadata_entries() {
    let body = "# HELP a_seconds A \\\"quoted\\\" help.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n# EOF";
    let mut p = Parser::new(body, Format::OpenMetrics);
    let mut seen = Vec::new();
    while let Some(e) = p.next_entry() {
        seen.push(match e.unwrap() {
            Entry::Help { family, help } => format!("help {family} {help}"),
            Entry::Type {
                family,
                metric_type,
            } => format!("type {family} {metric_type}"),
            Entry::Unit { family, unit } => format!("unit {family} {unit}"),
            Entry::Sample(s) => format!("sample {} {}", s.series, s.value),
        });
    }
    assert_eq!(
        seen,
        [
            "help a_seconds A \"quoted\" help.",
            "type a_seconds gauge",
            "unit a_seconds seconds",
            "sample a_seconds 1"
        ]
    );
}

#[test]
fn parser_reset_reuses_buffers() {
    let mut p = Parser::new("a{x=\"\\\\\"} 1\n", Format::PrometheusText);
    while p.next_entry().is_some() {}
    p.reset("# EOF\n", Format::OpenMetrics);
    assert!(p.next_entry().is_none());
    p.reset("", Format::OpenMetrics);
    assert_eq!(
        p.next_entry().unwrap().unwrap_err().to_string(),
        "line 1:1: missing \"# EOF\" at the end of an OpenMetrics body"
    );
}

#[test]
fn content_type_negotiation() {
    let f = |ct: Option<&str>, fb| negotiate(ct, fb).map(|n| (n.format, n.fallback_reason));
    assert_eq!(
        f(
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            None
        ),
        Ok((Format::OpenMetrics, None))
    );
    assert_eq!(
        f(Some("application/openmetrics-text;version=0.0.1"), None),
        Ok((Format::OpenMetrics, None))
    );
    assert_eq!(
        f(Some("text/plain; version=0.0.4"), None),
        Ok((Format::PrometheusText, None))
    );
    assert_eq!(
        f(Some("Text/Plain"), None),
        Ok((Format::PrometheusText, None))
    );
    assert_eq!(f(None, None), Err(ContentTypeError::Missing));
    assert_eq!(f(Some(""), None), Err(ContentTypeError::Missing));
    assert_eq!(f(Some("garbage"), None), Err(ContentTypeError::Unparsable));
    assert_eq!(
        f(Some("text/html; charset=utf-8"), None),
        Err(ContentTypeError::Unsupported)
    );
    assert_eq!(
        f(
            Some("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily"),
            None
        ),
        Err(ContentTypeError::Unsupported)
    );
    assert_eq!(
        f(Some("text/html"), Some(Format::PrometheusText)),
        Ok((Format::PrometheusText, Some(ContentTypeError::Unsupported)))
    );
    assert_eq!(
        f(None, Some(Format::OpenMetrics)),
        Ok((Format::OpenMetrics, Some(ContentTypeError::Missing)))
    );
}

/// Inputs from Prometheus's own `model/textparse/promparse_test.go` (TestPromParse,
/// TestUTF8PromParse, TestPromParseErrors, TestPromNullByteHandling): what it accepts we
/// accept with the same series, what it rejects we reject.
#[test]
fn prometheus_promparse_cases() {
    let input = concat!(
        "# HELP go_gc_duration_seconds A summary of the GC invocation durations.\n",
        "# \tTYPE go_gc_duration_seconds summary\n",
        "go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05\n",
        "go_gc_duration_seconds{quantile=\"0.25\",} 7.424100000000001e-05\n",
        "go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"} 8.3835e-05\n",
        "go_gc_duration_seconds{quantile=\"0.8\", a=\"b\"} 8.3835e-05\n",
        "go_gc_duration_seconds{ quantile=\"0.9\", a=\"b\"} 8.3835e-05\n",
        "# Hrandom comment starting with prefix of HELP\n",
        "#\n",
        "wind_speed{A=\"2\",c=\"3\"} 12345\n",
        "# comment with escaped \\n newline\n",
        "# comment with escaped \\ escape character\n",
        "# HELP nohelp1\n",
        "# HELP nohelp2 \n",
        "go_gc_duration_seconds{ quantile=\"1.0\", a=\"b\" } 8.3835e-05\n",
        "go_gc_duration_seconds { quantile=\"1.0\", a=\"b\" } 8.3835e-05\n",
        "go_gc_duration_seconds { quantile= \"1.0\", a= \"b\", } 8.3835e-05\n",
        "go_gc_duration_seconds { quantile = \"1.0\", a = \"b\" } 8.3835e-05\n",
        "go_gc_duration_seconds { quantile = \"2.0\" a = \"b\" } 8.3835e-05\n",
        "go_gc_duration_seconds_count 99\n",
        "some:aggregate:rate5m{a_b=\"c\"}\t1\n",
        "# HELP go_goroutines Number of goroutines that currently exist.\n",
        "# TYPE go_goroutines gauge\n",
        "go_goroutines 33  \t123123\n",
        "_metric_starting_with_underscore 1\n",
        "testmetric{_label_starting_with_underscore=\"foo\"} 1\n",
        "testmetric{label=\"\\\"bar\\\"\"} 1\n",
        "# HELP metric foo\x00bar\n",
        "null_byte_metric{a=\"abc\x00\"} 1",
    );
    let s = text(input);
    assert_eq!(s.len(), 18);
    assert_eq!(s[10].labels, labels(&[("quantile", "2.0"), ("a", "b")]));
    assert_eq!(
        s[10].series,
        "go_gc_duration_seconds { quantile = \"2.0\" a = \"b\" }"
    );
    assert_eq!((s[13].value, s[13].ts), (33.0, Some(123_123)));
    assert_eq!(s[16].labels, labels(&[("label", "\"bar\"")]));
    assert_eq!(s[17].labels, labels(&[("a", "abc\x00")]));

    let utf8 = concat!(
        "# HELP \"go.gc_duration_seconds\" A summary of the GC invocation durations.\n",
        "# \tTYPE \"go.gc_duration_seconds\" summary\n",
        "{\"go.gc_duration_seconds\",quantile=\"0.25\",} 7.424100000000001e-05\n",
        "{ \"go.gc_duration_seconds\", quantile= \"1.0\", a= \"b\", } 8.3835e-05\n",
        "{\"go.gc_duration_seconds_count\"} 99\n",
        "{\"Heizölrückstoßabdämpfung 10€ metric with \\\"interesting\\\" {character\\nchoices}\",",
        "\"strange©™\\n'quoted' \\\"name\\\"\"=\"6\"} 10.0",
    );
    let s = text(utf8);
    assert_eq!(s.len(), 4);
    assert_eq!(s[1].labels, labels(&[("quantile", "1.0"), ("a", "b")]));
    assert_eq!(s[2].name, "go.gc_duration_seconds_count");
    assert_eq!(
        s[3].name,
        "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}"
    );
    assert_eq!(
        s[3].labels,
        labels(&[("strange©™\n'quoted' \"name\"", "6")])
    );

    for bad in [
        "a",
        "a{b='c'} 1\n",
        "a{b=\n",
        "{\"a\", \"b = \"c\"}",
        "{\"a\",b\\nc=\"d\"} 1",
        "a true\n",
        "something_weird{problem=\"",
        "empty_label_name{=\"\"} 0",
        "foo 1_2\n",
        "foo 0x1p-3\n",
        "foo 0x1P-3\n",
        "foo 0 1_2\n",
        "{a=\"ok\"} 1",
        "# TYPE #\n#EOF\n",
        "# HELP #\n#EOF\n",
        "a{b=\x00\"ssss\"} 1\n",
        "a{b=\"\x00",
        "a{b\x00=\"hiih\"}\t1",
        "a\x00{b=\"ddd\"} 1",
        "a 0 1\x00",
    ] {
        assert!(
            samples(bad, Format::PrometheusText).is_err(),
            "accepted {bad:?}"
        );
    }
    for good in ["a{b=\"\x00ss\"} 1\n", "a{b=\"\x00\"} 1\n"] {
        assert_eq!(text(good).len(), 1, "{good:?}");
    }
    for bad_utf8 in [&b"a{\xff=\"foo\"} 1\n"[..], b"a{b=\"\xff\"} 1\n"] {
        assert!(Parser::from_bytes(bad_utf8, Format::PrometheusText).is_err());
    }
}

/// The body of Prometheus's `TestOpenMetricsParse` and `TestUTF8OpenMetricsParse`
/// (`model/textparse/openmetricsparse_test.go`): Prometheus accepts it, so
/// `Validation::Prometheus` must; it breaks OpenMetrics rules (exemplars on `_count` and
/// `_sum`, an info family without `_info`, a stateset sample without its label), so
/// `Validation::Strict` must not.
#[test]
fn prometheus_openmetrics_parser_cases() {
    let input = concat!(
        "# HELP go_gc_duration_seconds A summary of the GC invocation durations.\n",
        "# TYPE go_gc_duration_seconds summary\n",
        "# UNIT go_gc_duration_seconds seconds\n",
        "go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05\n",
        "go_gc_duration_seconds{quantile=\"0.25\"} 7.424100000000001e-05\n",
        "go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"} 8.3835e-05\n",
        "# HELP nohelp1 \n",
        "# HELP help2 escape \\ \\n \\\\ \\\" \\x chars\n",
        "# UNIT nounit \n",
        "go_gc_duration_seconds{quantile=\"1.0\",a=\"b\"} 8.3835e-05\n",
        "go_gc_duration_seconds_count 99\n",
        "some:aggregate:rate5m{a_b=\"c\"} 1\n",
        "# HELP go_goroutines Number of goroutines that currently exist.\n",
        "# TYPE go_goroutines gauge\n",
        "go_goroutines 33 123.123\n",
        "# TYPE hh histogram\n",
        "hh_bucket{le=\"+Inf\"} 1\n",
        "# TYPE gh gaugehistogram\n",
        "gh_bucket{le=\"+Inf\"} 1\n",
        "# TYPE hhh histogram\n",
        "hhh_bucket{le=\"+Inf\"} 1 # {id=\"histogram-bucket-test\"} 4\n",
        "hhh_count 1 # {id=\"histogram-count-test\"} 4\n",
        "# TYPE ggh gaugehistogram\n",
        "ggh_bucket{le=\"+Inf\"} 1 # {id=\"gaugehistogram-bucket-test\",xx=\"yy\"} 4 123.123\n",
        "ggh_count 1 # {id=\"gaugehistogram-count-test\",xx=\"yy\"} 4 123.123\n",
        "# TYPE smr_seconds summary\n",
        "smr_seconds_count 2.0 # {id=\"summary-count-test\"} 1 123.321\n",
        "smr_seconds_sum 42.0 # {id=\"summary-sum-test\"} 1 123.321\n",
        "# TYPE ii info\n",
        "ii{foo=\"bar\"} 1\n",
        "# TYPE ss stateset\n",
        "ss{ss=\"foo\"} 1\n",
        "ss{ss=\"bar\"} 0\n",
        "ss{A=\"a\"} 0\n",
        "# TYPE un unknown\n",
        "_metric_starting_with_underscore 1\n",
        "testmetric{_label_starting_with_underscore=\"foo\"} 1\n",
        "testmetric{label=\"\\\"bar\\\"\"} 1\n",
        "# HELP foo Counter with and without labels to certify CT is parsed for both cases\n",
        "# TYPE foo counter\n",
        "foo_total 17.0 1520879607.789 # {id=\"counter-test\"} 5\n",
        "foo_created 1520872607.123\n",
        "foo_total{a=\"b\"} 17.0 1520879607.789 # {id=\"counter-test\"} 5\n",
        "foo_created{a=\"b\"} 1520872607.123\n",
        "foo_total{le=\"c\"} 21.0\n",
        "foo_created{le=\"c\"} 1520872621.123\n",
        "foo_total{le=\"1\"} 10.0\n",
        "# TYPE baz histogram\n",
        "baz_bucket{le=\"0.0\"} 0\n",
        "baz_bucket{le=\"+Inf\"} 17\n",
        "baz_count 17\n",
        "baz_sum 324789.3\n",
        "baz_created 1520872609.125\n",
        "# TYPE something histogram\n",
        "something_count 18\n",
        "something_sum 324789.4\n",
        "something_created 1520430001\n",
        "something_bucket{le=\"0.0\"} 1\n",
        "something_bucket{le=\"1\"} 2\n",
        "something_bucket{le=\"+Inf\"} 18\n",
        "# HELP metric foo\x00bar\n",
        "null_byte_metric{a=\"abc\x00\"} 1\n",
        "{\"go.gc_duration_seconds_created\"} 1520872607.123\n",
        "{\"http.status\",q=\"0.9\",a=\"b\"} 8.3835e-05\n",
        "{q=\"0.9\",\"http.status\",a=\"b\"} 8.3835e-05\n",
        "{\"Heizölrückstoßabdämpfung 10€ metric with \\\"interesting\\\" {character\\nchoices}\",",
        "\"strange©™\\n'quoted' \\\"name\\\"\"=\"6\"} 10.0\n",
        "quotedexemplar_count 1 # {\"id.thing\"=\"histogram-count-test\"} 4\n",
        "# EOF\n",
    );
    let lines = input.lines().filter(|l| !l.starts_with('#')).count();
    let s = samples(input, Format::OpenMetrics).map(|_| ());
    assert!(
        s.is_err(),
        "strict validation accepted Prometheus's lenient body"
    );
    let mut p = Parser::new(input, Format::OpenMetrics).validation(Validation::Prometheus);
    let mut n = 0;
    let mut help2 = String::new();
    while let Some(e) = p.next_entry() {
        match e.unwrap() {
            Entry::Sample(s) => {
                n += 1;
                if s.name == "http.status" {
                    assert_eq!(s.labels.get("q"), Some("0.9"));
                    assert_eq!(s.labels.len(), 2);
                }
                if s.name == "go_goroutines" {
                    assert_eq!((s.value, s.timestamp_ms), (33.0, Some(123_123)));
                }
                if s.name == "ggh_bucket" {
                    let x = s.exemplar.unwrap();
                    assert_eq!(x.labels.get("xx"), Some("yy"));
                    assert_eq!((x.value, x.timestamp_ms), (4.0, Some(123_123)));
                }
            }
            Entry::Help {
                family: "help2",
                help,
            } => help2 = help.to_owned(),
            _ => {}
        }
    }
    assert_eq!(n, lines);
    assert_eq!(help2, "escape \\ \n \\ \" \\x chars");
}

#[test]
fn many_labels_stay_linear() {
    let n = 20_000;
    let labels: Vec<String> = (0..n).map(|i| format!("l{i}=\"v\"")).collect();
    let line = format!("m{{{}}} 1\n", labels.join(","));
    let start = std::time::Instant::now();
    let s = text(&line);
    assert_eq!(s[0].labels.len(), n);
    let dup = format!("m{{{},l7=\"again\"}} 1\n", labels.join(","));
    assert!(text_err(&dup).contains("duplicate label name \"l7\""));
    // Quadratic checking would take seconds here (4·10⁸ comparisons) even in release.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn errors_quote_at_most_a_short_excerpt() {
    let garbage = "x".repeat(1 << 20);
    let err = text_err(&format!("m {garbage}\n"));
    assert!(err.len() < 200, "{} bytes", err.len());
    assert!(err.starts_with("line 1:3: invalid value \"xxxx"));
}
