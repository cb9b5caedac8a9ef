//! The line parser shared by both formats, and the borrowed views it yields.

use super::error::{ErrorKind, ParseError, excerpt};
use super::openmetrics::{FnvSet, OmSample, OmState, hash_name};
use super::{Format, MetricType, Validation};

/// Where a piece of text lives: in the body, or in the parser's unescape buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
    in_buf: bool,
}

impl Span {
    fn input(start: usize, end: usize) -> Span {
        Span {
            start,
            end,
            in_buf: false,
        }
    }
}

/// One `name="value"` pair, as spans.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LabelSpan {
    name: Span,
    value: Span,
}

fn resolve<'p>(input: &'p str, buf: &'p str, span: Span) -> &'p str {
    let src = if span.in_buf { buf } else { input };
    src.get(span.start..span.end).unwrap_or_default()
}

/// One label of a sample or an exemplar, unescaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label<'p> {
    /// The label name (unquoted if it was quoted).
    pub name: &'p str,
    /// The label value with escapes resolved.
    pub value: &'p str,
}

/// The labels of a sample or an exemplar, in the order written, borrowed from the body or
/// the parser's buffers. Valid until the next call to [`Parser::next_entry`].
#[derive(Clone, Copy)]
pub struct Labels<'p> {
    input: &'p str,
    buf: &'p str,
    spans: &'p [LabelSpan],
}

impl<'p> Labels<'p> {
    /// Number of labels (the metric name is not one of them).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The labels in the order written.
    pub fn iter(&self) -> LabelIter<'p> {
        LabelIter {
            labels: *self,
            next: 0,
        }
    }

    /// The value of the label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.iter().find(|l| l.name == name).map(|l| l.value)
    }

    fn at(&self, i: usize) -> Option<Label<'p>> {
        let s = self.spans.get(i)?;
        Some(Label {
            name: resolve(self.input, self.buf, s.name),
            value: resolve(self.input, self.buf, s.value),
        })
    }
}

impl std::fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|l| (l.name, l.value)))
            .finish()
    }
}

impl<'p> IntoIterator for Labels<'p> {
    type Item = Label<'p>;
    type IntoIter = LabelIter<'p>;
    fn into_iter(self) -> LabelIter<'p> {
        self.iter()
    }
}

/// Iterator over [`Labels`].
#[derive(Clone, Debug)]
pub struct LabelIter<'p> {
    labels: Labels<'p>,
    next: usize,
}

impl<'p> Iterator for LabelIter<'p> {
    type Item = Label<'p>;
    fn next(&mut self) -> Option<Label<'p>> {
        let l = self.labels.at(self.next)?;
        self.next += 1;
        Some(l)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.labels.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for LabelIter<'_> {}

/// An OpenMetrics exemplar attached to a sample.
#[derive(Clone, Copy, Debug)]
pub struct Exemplar<'p> {
    /// The exemplar's labels (often `trace_id`).
    pub labels: Labels<'p>,
    /// The exemplar's value.
    pub value: f64,
    /// The exemplar's timestamp in milliseconds, if given.
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'p> {
    /// The raw series text exactly as written: `name{labels}` (or `{"name",labels}`), without
    /// the value. Stable across scrapes of the same series, so it can key a series cache.
    pub series: &'p str,
    /// The metric name (unquoted if it was quoted).
    pub name: &'p str,
    /// The labels, unescaped.
    pub labels: Labels<'p>,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds, if the line has one.
    pub timestamp_ms: Option<i64>,
    /// The exemplar, if the line has one (OpenMetrics only).
    pub exemplar: Option<Exemplar<'p>>,
}

/// One item of an exposition body.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'p> {
    /// `# HELP family text`, with escapes resolved.
    Help {
        /// The family name.
        family: &'p str,
        /// The help text, unescaped.
        help: &'p str,
    },
    /// `# TYPE family type`.
    Type {
        /// The family name.
        family: &'p str,
        /// The declared type.
        metric_type: MetricType,
    },
    /// `# UNIT family unit` (OpenMetrics only).
    Unit {
        /// The family name.
        family: &'p str,
        /// The unit (may be empty).
        unit: &'p str,
    },
    /// A sample line.
    Sample(Sample<'p>),
}

/// Up to this many labels, duplicate names are found by a linear scan.
const LINEAR_DUPLICATE_CHECK: usize = 16;

/// A parsed line before it is turned into borrowed views.
#[derive(Clone, Copy, Debug)]
enum Raw {
    Help {
        family: Span,
        help: Span,
    },
    Type {
        family: Span,
        metric_type: MetricType,
    },
    Unit {
        family: Span,
        unit: Span,
    },
    Sample {
        series: Span,
        name: Span,
        value: f64,
        timestamp_ms: Option<i64>,
        exemplar: Option<(f64, Option<i64>)>,
    },
}

/// What a line parse produced.
enum Line {
    Skip,
    Eof,
    Entry(Raw),
}

/// The metadata kinds of a comment line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meta {
    Help,
    Type,
    Unit,
}

type Res<T> = Result<T, (usize, ErrorKind)>;

/// A caller's guess at the next sample line's series: its length, and whether the caller
/// knows a text (see [`Parser::next_entry_known`]).
type Guess<'g> = (usize, &'g mut dyn FnMut(&str) -> bool);

const NAME_START: u8 = 1;
const NAME_CHAR: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CHAR: u8 = 8;

/// Character classes of metric and label names, one lookup per byte on the hot path.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut c = 0;
        if alpha || b == b':' {
            c |= NAME_START | NAME_CHAR;
        }
        if digit {
            c |= NAME_CHAR | LABEL_CHAR;
        }
        if alpha {
            c |= LABEL_START | LABEL_CHAR;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn class(b: u8) -> u8 {
    CLASS[usize::from(b)]
}

fn is_name_start(b: u8) -> bool {
    class(b) & NAME_START != 0
}

fn is_label_start(b: u8) -> bool {
    class(b) & LABEL_START != 0
}

/// The end of the run of bytes of class `c` in `bytes[p..end]`.
fn run_end(bytes: &[u8], p: usize, end: usize, c: u8) -> usize {
    bytes
        .get(p..end)
        .and_then(|s| s.iter().position(|&b| class(b) & c == 0))
        .map_or(end, |i| p + i)
}

/// Parses a float value as Go's `ParseFloat` does for decimal input: `NaN`, `Inf`,
/// `+Inf`, `-Inf`, `Infinity` in any case; no hexadecimal, no `_`.
fn parse_float(s: &str) -> Option<f64> {
    if let Some(value) = parse_short_decimal(s) {
        return Some(value);
    }
    if s.is_empty() || s.bytes().any(|b| b == b'_' || b == b'x' || b == b'X') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Most exposed values are short decimals (`0`, `1`, `42`, `0.25`, `1234.5`): those with at
/// most 15 digits, an optional sign and an optional point are parsed here without the general
/// algorithm. The digits as an integer (below 2⁵³) and the power of ten (at most 10¹⁵) are
/// both exact in an `f64`, so their quotient is the correctly rounded value (Clinger's fast
/// path), the same `str::parse` gives. Anything else (exponents, `NaN`, longer numbers) is
/// `None`, left to the general parser.
fn parse_short_decimal(s: &str) -> Option<f64> {
    const POWERS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, body) = match s.as_bytes().split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, s.as_bytes()),
    };
    let mut mantissa = 0u64;
    let mut digits = 0usize;
    let mut fraction_digits = None;
    for &b in body {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                if digits > 15 {
                    return None;
                }
                if let Some(fraction) = &mut fraction_digits {
                    *fraction += 1;
                }
            }
            b'.' if fraction_digits.is_none() => fraction_digits = Some(0),
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let value = mantissa as f64 / POWERS.get(fraction_digits.unwrap_or(0))?;
    Some(if negative { -value } else { value })
}

/// A pull parser over one exposition body. See the [module docs](super).
///
/// ```
/// use sightline_scraper::exposition::{Entry, Format, Parser};
/// let mut p = Parser::new("# TYPE up gauge\nup{job=\"node\"} 1\n", Format::PrometheusText);
/// let mut samples = 0;
/// while let Some(entry) = p.next_entry() {
///     if let Entry::Sample(s) = entry.unwrap() {
///         assert_eq!(s.series, "up{job=\"node\"}");
///         assert_eq!(s.labels.get("job"), Some("node"));
///         samples += 1;
///     }
/// }
/// assert_eq!(samples, 1);
/// ```
pub struct Parser<'a> {
    input: &'a str,
    format: Format,
    /// Start of the next line.
    pos: usize,
    /// Number of lines read so far (the current line's number).
    line_no: usize,
    /// Start of the current line.
    line_start: usize,
    labels: Vec<LabelSpan>,
    exemplar_labels: Vec<LabelSpan>,
    /// Unescaped text of the current line, for values that contained escapes.
    buf: String,
    /// Hashes of the label names of a long label set (duplicate detection).
    name_hashes: FnvSet,
    om: OmState,
    done: bool,
}

impl<'a> Parser<'a> {
    /// A parser over `input` in `format`.
    pub fn new(input: &'a str, format: Format) -> Parser<'a> {
        Parser {
            input,
            format,
            pos: 0,
            line_no: 0,
            line_start: 0,
            labels: Vec::new(),
            exemplar_labels: Vec::new(),
            buf: String::new(),
            name_hashes: FnvSet::default(),
            om: OmState::default(),
            done: false,
        }
    }

    /// A parser over raw bytes; fails with the position of the first invalid UTF-8 byte.
    pub fn from_bytes(input: &'a [u8], format: Format) -> Result<Parser<'a>, ParseError> {
        match std::str::from_utf8(input) {
            Ok(s) => Ok(Parser::new(s, format)),
            Err(e) => {
                let bad = e.valid_up_to();
                let before = input.get(..bad).unwrap_or_default();
                let line_start = before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                let column = before
                    .get(line_start..)
                    .unwrap_or_default()
                    .iter()
                    .filter(|&&b| (b & 0xC0) != 0x80)
                    .count()
                    + 1;
                Err(ParseError {
                    line,
                    column,
                    kind: ErrorKind::InvalidUtf8,
                })
            }
        }
    }

    /// Sets how much of OpenMetrics' cross-line semantics is checked (default
    /// [`Validation::Strict`]). Has no effect on the text format.
    pub fn validation(mut self, validation: Validation) -> Self {
        self.om.validation = validation;
        self
    }

    /// Reuses this parser (and its buffers) for another body, keeping its [`Validation`].
    pub fn reset(&mut self, input: &'a str, format: Format) {
        self.input = input;
        self.format = format;
        self.pos = 0;
        self.line_no = 0;
        self.line_start = 0;
        self.labels.clear();
        self.exemplar_labels.clear();
        self.buf.clear();
        self.om.reset();
        self.done = false;
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The number of the line the last entry or error came from (1-based).
    pub fn line(&self) -> usize {
        self.line_no
    }

    /// The next entry, `None` at the end of the body, or the first error (after which
    /// the parser yields `None`).
    pub fn next_entry(&mut self) -> Option<Result<Entry<'_>, ParseError>> {
        self.entry_after(None)
    }

    /// The next entry, as [`next_entry`](Self::next_entry) gives it, for a caller that
    /// expects the next sample line to begin with a series text `series_len` bytes long that
    /// it has parsed before (a series cache following the previous scrape's order). When the
    /// line's first `series_len` bytes are a whole series — a metric name first, the
    /// separator after — and `known` says it knows that text, its label set is not parsed
    /// again, being most of a line's parsing cost: only the value and timestamp are, and the
    /// sample's `labels` are empty. Any other line is parsed in full. Not with
    /// [`Validation::Strict`] OpenMetrics, whose cross-line rules read the labels.
    pub fn next_entry_known(
        &mut self,
        series_len: usize,
        known: &mut dyn FnMut(&str) -> bool,
    ) -> Option<Result<Entry<'_>, ParseError>> {
        self.entry_after(Some((series_len, known)))
    }

    fn entry_after(&mut self, guess: Option<Guess<'_>>) -> Option<Result<Entry<'_>, ParseError>> {
        match self.advance(guess) {
            Ok(Some(raw)) => Some(Ok(self.view(raw))),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn view(&self, raw: Raw) -> Entry<'_> {
        let r = |s: Span| resolve(self.input, &self.buf, s);
        match raw {
            Raw::Help { family, help } => Entry::Help {
                family: r(family),
                help: r(help),
            },
            Raw::Type {
                family,
                metric_type,
            } => Entry::Type {
                family: r(family),
                metric_type,
            },
            Raw::Unit { family, unit } => Entry::Unit {
                family: r(family),
                unit: r(unit),
            },
            Raw::Sample {
                series,
                name,
                value,
                timestamp_ms,
                exemplar,
            } => Entry::Sample(Sample {
                series: r(series),
                name: r(name),
                labels: Labels {
                    input: self.input,
                    buf: &self.buf,
                    spans: &self.labels,
                },
                value,
                timestamp_ms,
                exemplar: exemplar.map(|(value, timestamp_ms)| Exemplar {
                    labels: Labels {
                        input: self.input,
                        buf: &self.buf,
                        spans: &self.exemplar_labels,
                    },
                    value,
                    timestamp_ms,
                }),
            }),
        }
    }

    fn error_at(&self, pos: usize, kind: ErrorKind) -> ParseError {
        let bytes = self.input.as_bytes();
        let column = bytes
            .get(self.line_start..pos.max(self.line_start))
            .unwrap_or_default()
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count()
            + 1;
        ParseError {
            line: self.line_no.max(1),
            column,
            kind,
        }
    }

    fn advance(&mut self, mut guess: Option<Guess<'_>>) -> Result<Option<Raw>, ParseError> {
        let bytes = self.input.as_bytes();
        loop {
            if self.done {
                return Ok(None);
            }
            if self.pos >= bytes.len() {
                self.done = true;
                if self.format == Format::OpenMetrics {
                    self.line_no += 1;
                    self.line_start = self.pos;
                    return Err(self.error_at(self.pos, ErrorKind::MissingEof));
                }
                return Ok(None);
            }
            let start = self.pos;
            let rest = bytes.get(start..).unwrap_or_default();
            let (end, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (start + i, start + i + 1),
                None => (bytes.len(), bytes.len()),
            };
            self.pos = next;
            self.line_no += 1;
            self.line_start = start;
            self.buf.clear();
            if guess.is_some()
                && let Some((from, to)) = self.plain_sample_line(start, end)
                && let Some((series_len, known)) = guess.take()
                && let Some(name_end) = self.whole_series(from, to, series_len)
                && known(self.input.get(from..from + series_len).unwrap_or_default())
            {
                self.labels.clear();
                let name = Span::input(from, name_end);
                let series_end = from + series_len;
                return self
                    .sample_tail(from, name, series_end, to)
                    .map(Some)
                    .map_err(|(pos, kind)| self.error_at(pos, kind));
            }
            let parsed = match self.format {
                Format::PrometheusText => self.text_line(start, end),
                Format::OpenMetrics => self.om_line(start, end),
            };
            match parsed {
                Ok(Line::Skip) => continue,
                Ok(Line::Entry(raw)) => return Ok(Some(raw)),
                Ok(Line::Eof) => {
                    self.done = true;
                    if self.pos < bytes.len() {
                        self.line_no += 1;
                        self.line_start = self.pos;
                        return Err(self.error_at(self.pos, ErrorKind::TextAfterEof));
                    }
                    return Ok(None);
                }
                Err((pos, kind)) => return Err(self.error_at(pos, kind)),
            }
        }
    }

    /// Where the sample on the line `start..end` begins and the line ends (without a
    /// trailing `\r`), when the line is a sample whose series starts with a plain metric
    /// name and a guessed series may stand for its label set.
    fn plain_sample_line(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let bytes = self.input.as_bytes();
        let (from, to) = match self.format {
            Format::PrometheusText => {
                let to = if end > start && bytes.get(end - 1) == Some(&b'\r') {
                    end - 1
                } else {
                    end
                };
                (self.skip_ws(start, to), to)
            }
            Format::OpenMetrics if self.om.validation == Validation::Prometheus => (start, end),
            Format::OpenMetrics => return None,
        };
        (from < to && bytes.get(from).is_some_and(|&b| is_name_start(b))).then_some((from, to))
    }

    /// The end of the metric name when `from..from + len` of the line ending at `to` is a
    /// whole series: the value's separator follows it, and no label set after a space.
    fn whole_series(&self, from: usize, to: usize, len: usize) -> Option<usize> {
        let bytes = self.input.as_bytes();
        let series_end = from.checked_add(len).filter(|&e| e < to)?;
        if !self.input.is_char_boundary(series_end) {
            return None;
        }
        let separator = match self.format {
            Format::PrometheusText => matches!(bytes.get(series_end), Some(b' ' | b'\t')),
            Format::OpenMetrics => bytes.get(series_end) == Some(&b' '),
        };
        let value_start = self.skip_ws(series_end, to);
        (separator && bytes.get(value_start) != Some(&b'{'))
            .then(|| run_end(bytes, from + 1, series_end, NAME_CHAR))
    }

    // ---- text format 0.0.4 ----

    fn text_line(&mut self, start: usize, mut end: usize) -> Res<Line> {
        let bytes = self.input.as_bytes();
        if end > start && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        let p = self.skip_ws(start, end);
        match bytes.get(p) {
            _ if p >= end => Ok(Line::Skip),
            Some(b'#') => self.text_comment(p + 1, end),
            _ => self.sample_line(p, end),
        }
    }

    fn skip_ws(&self, p: usize, end: usize) -> usize {
        self.input
            .as_bytes()
            .get(p..end)
            .and_then(|s| s.iter().position(|&b| b != b' ' && b != b'\t'))
            .map_or(end.max(p), |i| p + i)
    }

    fn text_comment(&mut self, p: usize, end: usize) -> Res<Line> {
        let bytes = self.input.as_bytes();
        let p = self.skip_ws(p, end);
        let word_end = (p..end)
            .find(|&i| matches!(bytes.get(i), Some(b' ' | b'\t')))
            .unwrap_or(end);
        let meta = match bytes.get(p..word_end) {
            Some(b"HELP") => Meta::Help,
            Some(b"TYPE") => Meta::Type,
            _ => return Ok(Line::Skip),
        };
        if word_end >= end {
            // `# HELP` with nothing after it is an ordinary comment, as in Prometheus.
            return Ok(Line::Skip);
        }
        let p = self.skip_ws(word_end, end);
        let (family, p) = self.metric_name(p, end)?;
        match meta {
            Meta::Help => {
                // The help text starts after one separator; the rest is kept verbatim.
                let text_start = if p < end {
                    if !matches!(bytes.get(p), Some(b' ' | b'\t')) {
                        return Err((p, ErrorKind::Expected("whitespace after metric name")));
                    }
                    p + 1
                } else {
                    end
                };
                let help = self.unescape_help(text_start, end, false);
                Ok(Line::Entry(Raw::Help { family, help }))
            }
            _ => {
                if p >= end || !matches!(bytes.get(p), Some(b' ' | b'\t')) {
                    return Err((p, ErrorKind::Expected("metric type after metric name")));
                }
                let t0 = self.skip_ws(p, end);
                let mut t1 = end;
                while t1 > t0 && matches!(bytes.get(t1 - 1), Some(b' ' | b'\t')) {
                    t1 -= 1;
                }
                let word = self.input.get(t0..t1).unwrap_or_default();
                let metric_type = MetricType::parse(word, Format::PrometheusText)
                    .ok_or_else(|| (t0, ErrorKind::InvalidType(excerpt(word))))?;
                Ok(Line::Entry(Raw::Type {
                    family,
                    metric_type,
                }))
            }
        }
    }

    // ---- OpenMetrics 1.0 ----

    fn om_line(&mut self, start: usize, end: usize) -> Res<Line> {
        let bytes = self.input.as_bytes();
        if start >= end {
            return Err((start, ErrorKind::BlankLine));
        }
        if bytes.get(start) != Some(&b'#') {
            return self.sample_line(start, end);
        }
        if bytes.get(start..end) == Some(b"# EOF") {
            self.om.on_eof().map_err(|k| (start, k))?;
            return Ok(Line::Eof);
        }
        if bytes.get(start + 1) != Some(&b' ') {
            return Err((start, ErrorKind::InvalidComment));
        }
        let p = start + 2;
        let word_end = (p..end)
            .find(|&i| bytes.get(i) == Some(&b' '))
            .unwrap_or(end);
        let meta = match bytes.get(p..word_end) {
            Some(b"HELP") => Meta::Help,
            Some(b"TYPE") => Meta::Type,
            Some(b"UNIT") => Meta::Unit,
            _ => return Err((start, ErrorKind::InvalidComment)),
        };
        if word_end >= end {
            return Err((word_end, ErrorKind::Expected("space and metric name")));
        }
        let (family, p) = self.metric_name(word_end + 1, end)?;
        if p >= end || bytes.get(p) != Some(&b' ') {
            return Err((p, ErrorKind::Expected("space after metric name")));
        }
        let text_start = p + 1;
        let family_str = resolve(self.input, &self.buf, family);
        let rest = self.input.get(text_start..end).unwrap_or_default();
        match meta {
            Meta::Help => {
                self.om
                    .on_metadata("HELP", family_str, None)
                    .map_err(|k| (start, k))?;
                let help = self.unescape_help(text_start, end, true);
                Ok(Line::Entry(Raw::Help { family, help }))
            }
            Meta::Type => {
                let metric_type = MetricType::parse(rest, Format::OpenMetrics)
                    .ok_or_else(|| (text_start, ErrorKind::InvalidType(excerpt(rest))))?;
                self.om
                    .on_metadata("TYPE", family_str, Some(metric_type))
                    .map_err(|k| (start, k))?;
                Ok(Line::Entry(Raw::Type {
                    family,
                    metric_type,
                }))
            }
            Meta::Unit => {
                self.om.on_unit(family_str, rest).map_err(|k| (start, k))?;
                Ok(Line::Entry(Raw::Unit {
                    family,
                    unit: Span::input(text_start, end),
                }))
            }
        }
    }

    /// Resolves HELP escapes: `\\` and `\n` always, `\"` in OpenMetrics; others kept.
    fn unescape_help(&mut self, start: usize, end: usize, quote: bool) -> Span {
        let text = self.input.get(start..end).unwrap_or_default();
        if !text.contains('\\') {
            return Span::input(start, end);
        }
        let b0 = self.buf.len();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                self.buf.push(c);
                continue;
            }
            match chars.clone().next() {
                Some('\\') => {
                    chars.next();
                    self.buf.push('\\');
                }
                Some('n') => {
                    chars.next();
                    self.buf.push('\n');
                }
                Some('"') if quote => {
                    chars.next();
                    self.buf.push('"');
                }
                _ => self.buf.push('\\'),
            }
        }
        Span {
            start: b0,
            end: self.buf.len(),
            in_buf: true,
        }
    }

    // ---- shared ----

    /// A metric name: plain or quoted. Returns its span and the position after it.
    fn metric_name(&mut self, p: usize, end: usize) -> Res<(Span, usize)> {
        let bytes = self.input.as_bytes();
        match bytes.get(p) {
            Some(b'"') if p < end => {
                let (span, q) = self.quoted(p, end)?;
                if span.start == span.end {
                    return Err((p, ErrorKind::Expected("a non-empty metric name")));
                }
                Ok((span, q))
            }
            Some(&b) if p < end && is_name_start(b) => {
                let q = run_end(bytes, p + 1, end, NAME_CHAR);
                Ok((Span::input(p, q), q))
            }
            _ if p >= end => Err((p, ErrorKind::Expected("metric name"))),
            _ => {
                let tok_end = self.token_end(p, end);
                let tok = self.input.get(p..tok_end).unwrap_or_default();
                Err((p, ErrorKind::InvalidMetricName(excerpt(tok))))
            }
        }
    }

    fn token_end(&self, p: usize, end: usize) -> usize {
        let bytes = self.input.as_bytes();
        (p..end)
            .find(|&i| matches!(bytes.get(i), Some(b' ' | b'\t' | b'{' | b'}' | b'=' | b',')))
            .unwrap_or(end)
    }

    /// A double-quoted string at `p`; returns its unescaped span and the position after
    /// the closing quote. Escapes: `\\`, `\"`, `\n`; others are kept verbatim.
    fn quoted(&mut self, p: usize, end: usize) -> Res<(Span, usize)> {
        let bytes = self.input.as_bytes();
        let start = p + 1;
        let mut seg = start;
        let mut i = start;
        let mut b0: Option<usize> = None;
        loop {
            let hay = bytes.get(i..end).unwrap_or_default();
            let Some(off) = memchr::memchr2(b'"', b'\\', hay) else {
                return Err((p, ErrorKind::UnterminatedString));
            };
            let j = i + off;
            if bytes.get(j) == Some(&b'"') {
                return match b0 {
                    None => Ok((Span::input(start, j), j + 1)),
                    Some(b0) => {
                        self.buf
                            .push_str(self.input.get(seg..j).unwrap_or_default());
                        Ok((
                            Span {
                                start: b0,
                                end: self.buf.len(),
                                in_buf: true,
                            },
                            j + 1,
                        ))
                    }
                };
            }
            // A backslash.
            if b0.is_none() {
                b0 = Some(self.buf.len());
            }
            self.buf
                .push_str(self.input.get(seg..j).unwrap_or_default());
            let next = if j + 1 < end { bytes.get(j + 1) } else { None };
            match next {
                Some(b'\\') => {
                    self.buf.push('\\');
                    i = j + 2;
                }
                Some(b'"') => {
                    self.buf.push('"');
                    i = j + 2;
                }
                Some(b'n') => {
                    self.buf.push('\n');
                    i = j + 2;
                }
                Some(_) => {
                    self.buf.push('\\');
                    i = j + 1;
                }
                None => return Err((p, ErrorKind::UnterminatedString)),
            }
            seg = i;
        }
    }

    /// A label set starting at `p` (just after `{`). Fills `out` and returns the position
    /// after `}` and, when `allow_name`, the metric name found inside the braces: a bare
    /// quoted string, first or anywhere (`{q="0.9","http.status"}`, as Prometheus accepts).
    fn label_set(
        &mut self,
        p: usize,
        end: usize,
        into_exemplar: bool,
        allow_name: bool,
    ) -> Res<(usize, Option<Span>)> {
        let bytes = self.input.as_bytes();
        let text = self.format == Format::PrometheusText;
        let mut out = std::mem::take(if into_exemplar {
            &mut self.exemplar_labels
        } else {
            &mut self.labels
        });
        out.clear();
        let result = (|| {
            let mut metric: Option<Span> = None;
            let mut p = p;
            let mut first = true;
            loop {
                if text {
                    p = self.skip_ws(p, end);
                }
                if p >= end {
                    return Err((p, ErrorKind::Expected("label name or '}'")));
                }
                if bytes.get(p) == Some(&b'}') {
                    if !first && !text {
                        return Err((p, ErrorKind::Expected("label name after ','")));
                    }
                    return Ok((p + 1, metric));
                }
                // A label name, or the metric name in `{"name", …}` form.
                let (name, q) = match bytes.get(p) {
                    Some(b'"') => self.quoted(p, end)?,
                    Some(&b) if is_label_start(b) => {
                        let q = run_end(bytes, p + 1, end, LABEL_CHAR);
                        (Span::input(p, q), q)
                    }
                    _ => {
                        let tok_end = self.token_end(p, end).max(p + 1).min(end);
                        let tok = self.input.get(p..tok_end).unwrap_or_default();
                        return Err((p, ErrorKind::InvalidLabelName(excerpt(tok))));
                    }
                };
                let mut q = if text { self.skip_ws(q, end) } else { q };
                let is_quoted = bytes.get(p) == Some(&b'"');
                if allow_name
                    && is_quoted
                    && metric.is_none()
                    && matches!(bytes.get(q), Some(b',' | b'}'))
                {
                    if name.start == name.end {
                        return Err((p, ErrorKind::Expected("a non-empty metric name")));
                    }
                    metric = Some(name);
                } else {
                    if is_quoted && name.start == name.end {
                        return Err((p, ErrorKind::InvalidLabelName(String::new())));
                    }
                    if bytes.get(q) != Some(&b'=') {
                        return Err((q, ErrorKind::Expected("'=' after label name")));
                    }
                    q += 1;
                    if text {
                        q = self.skip_ws(q, end);
                    }
                    if bytes.get(q) != Some(&b'"') || q >= end {
                        return Err((q, ErrorKind::Expected("label value in double quotes")));
                    }
                    let (value, r) = self.quoted(q, end)?;
                    let new_name = resolve(self.input, &self.buf, name);
                    let seen = |out: &[LabelSpan]| {
                        out.iter()
                            .any(|l| resolve(self.input, &self.buf, l.name) == new_name)
                    };
                    // Linear for the usual handful of labels; past that, a set of name
                    // hashes keeps a line with thousands of labels from costing O(n²).
                    let duplicate = if out.len() < LINEAR_DUPLICATE_CHECK {
                        seen(&out)
                    } else {
                        if out.len() == LINEAR_DUPLICATE_CHECK {
                            self.name_hashes.clear();
                            for l in &out {
                                let n = resolve(self.input, &self.buf, l.name);
                                self.name_hashes.insert(hash_name(n, ""));
                            }
                        }
                        !self.name_hashes.insert(hash_name(new_name, "")) && seen(&out)
                    };
                    if duplicate {
                        return Err((p, ErrorKind::DuplicateLabel(excerpt(new_name))));
                    }
                    out.push(LabelSpan { name, value });
                    q = if text { self.skip_ws(r, end) } else { r };
                }
                first = false;
                match bytes.get(q) {
                    Some(b',') if q < end => p = q + 1,
                    Some(b'}') if q < end => return Ok((q + 1, metric)),
                    // Prometheus's text lexer does not require the comma between labels
                    // (`{a="1" b="2"}`, in its own tests); accept that in the text format.
                    Some(&b) if text && q < end && (is_label_start(b) || b == b'"') => {
                        p = q;
                        continue;
                    }
                    _ => return Err((q, ErrorKind::Expected("',' or '}' after label"))),
                }
                // After a comma, `}` ends the set only in the text format.
                if text {
                    p = self.skip_ws(p, end);
                    if bytes.get(p) == Some(&b'}') && p < end {
                        return Ok((p + 1, metric));
                    }
                }
            }
        })();
        if into_exemplar {
            self.exemplar_labels = out;
        } else {
            self.labels = out;
        }
        result
    }

    /// A sample line starting at `start` (no leading whitespace).
    fn sample_line(&mut self, start: usize, end: usize) -> Res<Line> {
        let bytes = self.input.as_bytes();
        let text = self.format == Format::PrometheusText;
        let (mut name, mut series_end) = if bytes.get(start) == Some(&b'{') {
            (None, start)
        } else {
            let (n, p) = self.metric_name(start, end)?;
            (Some(n), p)
        };
        let q = if text {
            self.skip_ws(series_end, end)
        } else {
            series_end
        };
        if bytes.get(q) == Some(&b'{') && q < end {
            let (r, inner) = self.label_set(q + 1, end, false, name.is_none())?;
            if let Some(inner) = inner {
                name = Some(inner);
            }
            series_end = r;
        } else {
            self.labels.clear();
        }
        let Some(name) = name else {
            return Err((start, ErrorKind::Expected("metric name")));
        };
        self.sample_tail(start, name, series_end, end)
            .map(Line::Entry)
    }

    /// What follows the series `start..series_end` of a sample line: the value, the timestamp
    /// and (OpenMetrics) an exemplar.
    fn sample_tail(&mut self, start: usize, name: Span, series_end: usize, end: usize) -> Res<Raw> {
        let bytes = self.input.as_bytes();
        let text = self.format == Format::PrometheusText;
        let mut p = series_end;
        self.exemplar_labels.clear();

        // Value.
        let sep_ok = |b: Option<&u8>| {
            if text {
                matches!(b, Some(b' ' | b'\t'))
            } else {
                b == Some(&b' ')
            }
        };
        if p >= end || !sep_ok(bytes.get(p)) {
            return Err((p, ErrorKind::Expected("space and value after metric")));
        }
        p = if text { self.skip_ws(p, end) } else { p + 1 };
        let v_end = self.field_end(p, end);
        if v_end == p {
            return Err((p, ErrorKind::Expected("value")));
        }
        let v_str = self.input.get(p..v_end).unwrap_or_default();
        let value =
            parse_float(v_str).ok_or_else(|| (p, ErrorKind::InvalidValue(excerpt(v_str))))?;
        p = v_end;

        let mut timestamp_ms = None;
        let mut ts_secs = None;
        let mut exemplar = None;
        if text {
            p = self.skip_ws(p, end);
            if p < end {
                if bytes.get(p) == Some(&b'#') {
                    return Err((p, ErrorKind::ExemplarInTextFormat));
                }
                let t_end = self.field_end(p, end);
                let t = self.input.get(p..t_end).unwrap_or_default();
                timestamp_ms = Some(t.parse::<i64>().map_err(|_| {
                    (
                        p,
                        ErrorKind::InvalidTimestamp(excerpt(t), "integer milliseconds"),
                    )
                })?);
                p = self.skip_ws(t_end, end);
                if p < end {
                    return Err((p, ErrorKind::Expected("end of line after timestamp")));
                }
            }
        } else if p < end {
            // p is at the separator after the value.
            if bytes.get(p) != Some(&b' ') {
                return Err((p, ErrorKind::Expected("space or end of line after value")));
            }
            p += 1;
            if bytes.get(p) != Some(&b'#') || p >= end {
                let t_end = self.field_end(p, end);
                let (ms, secs) = self.om_timestamp(p, t_end)?;
                timestamp_ms = Some(ms);
                ts_secs = Some(secs);
                p = t_end;
                if p < end {
                    if bytes.get(p) != Some(&b' ') {
                        return Err((p, ErrorKind::Expected("space or end of line")));
                    }
                    p += 1;
                    if bytes.get(p) != Some(&b'#') || p >= end {
                        return Err((p, ErrorKind::Expected("'# {' starting an exemplar")));
                    }
                }
            }
            if p < end {
                exemplar = Some(self.om_exemplar(p, end)?);
            }
        }

        if !text {
            let ex_chars = exemplar.map(|_| {
                let l = Labels {
                    input: self.input,
                    buf: &self.buf,
                    spans: &self.exemplar_labels,
                };
                l.iter()
                    .map(|l| l.name.chars().count() + l.value.chars().count())
                    .sum::<usize>()
            });
            let sample = OmSample {
                name: resolve(self.input, &self.buf, name),
                labels: Labels {
                    input: self.input,
                    buf: &self.buf,
                    spans: &self.labels,
                },
                value,
                ts_secs,
                exemplar_chars: ex_chars,
            };
            self.om.on_sample(&sample).map_err(|k| (start, k))?;
        }

        Ok(Raw::Sample {
            series: Span::input(start, series_end),
            name,
            value,
            timestamp_ms,
            exemplar,
        })
    }

    /// End of a value/timestamp field: the next separator or the line end.
    fn field_end(&self, p: usize, end: usize) -> usize {
        let bytes = self.input.as_bytes();
        if self.format == Format::PrometheusText {
            bytes
                .get(p..end)
                .and_then(|s| s.iter().position(|&b| b == b' ' || b == b'\t'))
                .map_or(end, |i| p + i)
        } else {
            let hay = bytes.get(p..end).unwrap_or_default();
            memchr::memchr(b' ', hay).map_or(end, |i| p + i)
        }
    }

    /// An OpenMetrics timestamp (float seconds) in `p..t_end`: (milliseconds, seconds).
    fn om_timestamp(&self, p: usize, t_end: usize) -> Res<(i64, f64)> {
        let t = self.input.get(p..t_end).unwrap_or_default();
        let bad = || {
            (
                p,
                ErrorKind::InvalidTimestamp(excerpt(t), "finite float seconds"),
            )
        };
        let secs = parse_float(t).ok_or_else(bad)?;
        if !secs.is_finite() {
            return Err(bad());
        }
        // As Prometheus: truncating, saturating conversion to milliseconds.
        Ok(((secs * 1000.0) as i64, secs))
    }

    /// An exemplar starting at the `#` at `p`.
    fn om_exemplar(&mut self, p: usize, end: usize) -> Res<(f64, Option<i64>)> {
        let bytes = self.input.as_bytes();
        if bytes.get(p..p + 3) != Some(b"# {") || p + 3 > end {
            return Err((p, ErrorKind::Expected("'# {' starting an exemplar")));
        }
        let (mut q, _) = self.label_set(p + 3, end, true, false)?;
        if q >= end || bytes.get(q) != Some(&b' ') {
            return Err((q, ErrorKind::Expected("space and exemplar value")));
        }
        q += 1;
        let v_end = self.field_end(q, end);
        let v = self.input.get(q..v_end).unwrap_or_default();
        let value = parse_float(v).ok_or_else(|| {
            if v.is_empty() {
                (q, ErrorKind::Expected("exemplar value"))
            } else {
                (q, ErrorKind::InvalidValue(excerpt(v)))
            }
        })?;
        q = v_end;
        if q >= end {
            return Ok((value, None));
        }
        q += 1; // the space
        let t_end = self.field_end(q, end);
        let (ms, _) = self.om_timestamp(q, t_end)?;
        if t_end < end {
            return Err((t_end, ErrorKind::Expected("end of line after exemplar")));
        }
        Ok((value, Some(ms)))
    }
}

impl std::fmt::Debug for Parser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parser")
            .field("format", &self.format)
            .field("line", &self.line_no)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_decimals_parse_as_the_general_parser_does() {
        for s in [
            "0",
            "-0",
            "+7",
            "1",
            "42",
            "0.25",
            "-1234.5",
            "1.",
            ".5",
            "0.1",
            "0.3",
            "123456789012345",
            "99999.9999999999",
            "0.00000000000001",
        ] {
            let fast = parse_short_decimal(s);
            let general = s.parse::<f64>().ok();
            assert_eq!(fast.map(f64::to_bits), general.map(f64::to_bits), "{s}");
        }
        for s in [
            "",
            "-",
            ".",
            "1e3",
            "1.2.3",
            "NaN",
            "+Inf",
            "1234567890123456",
            "0.000000000000001",
            "0x1",
            "1_0",
        ] {
            assert_eq!(parse_short_decimal(s), None, "{s}");
        }
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("1_0"), None);
    }

    proptest::proptest! {
        #[test]
        fn short_decimals_match_str_parse(int in 0u64..1_000_000_000, frac in 0u64..1_000_000, width in 0usize..7, negative: bool) {
            let sign = if negative { "-" } else { "" };
            let s = if width == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{:0width$}", frac % 10u64.pow(width as u32))
            };
            proptest::prop_assert_eq!(
                parse_short_decimal(&s).map(f64::to_bits),
                s.parse::<f64>().ok().map(f64::to_bits),
                "{}", s
            );
        }
    }
}
