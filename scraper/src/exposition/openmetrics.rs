//! OpenMetrics 1.0 validity rules that span lines: metric families, label groups,
//! timestamps, histogram structure and per-type value rules.
//!
//! The rules and their order follow the upstream reference parser that the test suite in
//! `../shared/fixtures/exposition/openmetrics/parsers` was written against: a family ends
//! when a metadata line names another family or a sample name is not one the family's type
//! allows; a family's names (with the type's suffixes) must not repeat; inside a family a
//! label group (labels without `le`/`quantile`/the stateset label) must be contiguous, with
//! timestamps on all or none of its samples, never going backwards.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::error::{ErrorKind, excerpt};
use super::parser::Labels;
use super::{MetricType, Validation};

/// A sample as the OpenMetrics checks see it.
pub(crate) struct OmSample<'p> {
    pub(crate) name: &'p str,
    pub(crate) labels: Labels<'p>,
    pub(crate) value: f64,
    pub(crate) ts_secs: Option<f64>,
    /// Total code points of the exemplar's label names and values, if there is one.
    pub(crate) exemplar_chars: Option<usize>,
}

/// Which sample of a family a name is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Suffix {
    Bare,
    Total,
    Created,
    Count,
    Sum,
    Bucket,
    GCount,
    GSum,
    Info,
}

impl Suffix {
    fn parse(s: &str) -> Option<Suffix> {
        Some(match s {
            "" => Suffix::Bare,
            "_total" => Suffix::Total,
            "_created" => Suffix::Created,
            "_count" => Suffix::Count,
            "_sum" => Suffix::Sum,
            "_bucket" => Suffix::Bucket,
            "_gcount" => Suffix::GCount,
            "_gsum" => Suffix::GSum,
            "_info" => Suffix::Info,
            _ => return None,
        })
    }
}

/// The sample names a family of type `t` (`None`: no `# TYPE` yet) may contain.
fn allowed(t: Option<MetricType>, s: Suffix) -> bool {
    use Suffix::*;
    match t {
        None => s == Bare,
        Some(MetricType::Counter) => matches!(s, Total | Created),
        Some(MetricType::Summary) => matches!(s, Bare | Count | Sum | Created),
        Some(MetricType::Histogram) => matches!(s, Count | Sum | Bucket | Created),
        Some(MetricType::GaugeHistogram) => matches!(s, GCount | GSum | Bucket),
        Some(MetricType::Info) => s == Info,
        Some(MetricType::Gauge | MetricType::StateSet | MetricType::Unknown) => s == Bare,
    }
}

/// The names a family of type `t` reserves, besides its own.
fn reserved(t: MetricType) -> &'static [&'static str] {
    match t {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Summary => &["_count", "_sum", "_created"],
        MetricType::Histogram => &["_count", "_sum", "_bucket", "_created"],
        MetricType::GaugeHistogram => &["_gcount", "_gsum", "_bucket"],
        MetricType::Info => &["_info"],
        _ => &[],
    }
}

/// FNV-1a, then a final mix: fast for the short strings hashed per sample.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        // splitmix64 finaliser.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

pub(crate) type FnvSet = HashSet<u64, BuildHasherDefault<Fnv>>;

/// Hash of a family name with a suffix: `hash_name("a", "_total") == hash_name("a_total", "")`.
pub(crate) fn hash_name(family: &str, suffix: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(family.as_bytes());
    h.write(suffix.as_bytes());
    h.finish()
}

/// Hash of one label pair (0xff never occurs in UTF-8, so it separates unambiguously).
fn hash_label(name: &str, value: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(name.as_bytes());
    h.write(&[0xff]);
    h.write(value.as_bytes());
    h.finish()
}

/// The structure of one histogram group seen so far.
#[derive(Default)]
struct Hist {
    active: bool,
    group: u64,
    ts: Option<f64>,
    last_le: Option<f64>,
    last_bucket_value: f64,
    count: Option<f64>,
    negative_buckets: bool,
    has_sum: bool,
    has_gsum: bool,
    negative_gsum: bool,
}

impl Hist {
    fn check(&self, family: &str) -> Result<(), ErrorKind> {
        let bad = |rule| {
            Err(ErrorKind::InvalidHistogram {
                family: excerpt(family),
                rule,
            })
        };
        if self.last_le != Some(f64::INFINITY) {
            return bad("the +Inf bucket is missing");
        }
        if self.count.is_some_and(|c| c != self.last_bucket_value) {
            return bad("_count does not match the +Inf bucket");
        }
        if self.has_sum && self.count.is_none() {
            return bad("_count must be present if _sum is");
        }
        if self.has_gsum && self.count.is_none() {
            return bad("_gcount must be present if _gsum is");
        }
        if !(self.has_sum || self.has_gsum) && self.count.is_some() {
            return bad("_sum (or _gsum) must be present if _count (or _gcount) is");
        }
        if self.negative_buckets && self.has_sum {
            return bad("a histogram with negative buckets cannot have _sum");
        }
        if !self.negative_buckets && self.negative_gsum {
            return bad("_gsum cannot be negative when no bucket is negative");
        }
        Ok(())
    }
}

/// Cross-line OpenMetrics state. Reused across bodies by [`OmState::reset`].
#[derive(Default)]
pub(crate) struct OmState {
    /// `Validation::Prometheus` turns every check here off.
    pub(crate) validation: Validation,
    family: String,
    has_family: bool,
    typ: Option<MetricType>,
    has_help: bool,
    unit: Option<String>,
    samples_seen: bool,
    seen_names: FnvSet,
    seen_groups: FnvSet,
    in_group: bool,
    group: u64,
    group_ts: Option<f64>,
    hist: Hist,
}

/// `le` and `quantile` values: floats, not NaN, infinities spelt `+Inf`/`-Inf`.
fn parse_bound(s: &str) -> Option<f64> {
    let v = s.parse::<f64>().ok()?;
    if v.is_nan() || s.contains('_') {
        return None;
    }
    if v.is_infinite() && s != "+Inf" && s != "-Inf" {
        return None;
    }
    Some(v)
}

impl OmState {
    pub(crate) fn reset(&mut self) {
        self.family.clear();
        self.has_family = false;
        self.typ = None;
        self.has_help = false;
        self.unit = None;
        self.samples_seen = false;
        self.seen_names.clear();
        self.seen_groups.clear();
        self.in_group = false;
        self.hist = Hist::default();
    }

    fn start_family(&mut self, name: &str, typ: Option<MetricType>) {
        self.family.clear();
        self.family.push_str(name);
        self.has_family = true;
        self.typ = typ;
        self.has_help = false;
        self.unit = None;
        self.samples_seen = false;
        self.seen_groups.clear();
        self.in_group = false;
        self.hist = Hist::default();
    }

    fn end_family(&mut self) -> Result<(), ErrorKind> {
        if !self.has_family {
            return Ok(());
        }
        self.has_family = false;
        let typ = self.typ.unwrap_or(MetricType::Unknown);
        for suffix in std::iter::once(&"").chain(reserved(typ)) {
            if !self.seen_names.insert(hash_name(&self.family, suffix)) {
                return Err(ErrorKind::ClashingName(excerpt(&format!(
                    "{}{suffix}",
                    self.family
                ))));
            }
        }
        if let Some(unit) = self.unit.as_deref().filter(|u| !u.is_empty()) {
            let matches = self
                .family
                .strip_suffix(unit)
                .is_some_and(|f| f.ends_with('_'));
            if !matches {
                return Err(ErrorKind::UnitMismatch {
                    family: excerpt(&self.family),
                    unit: excerpt(unit),
                });
            }
            if matches!(typ, MetricType::Info | MetricType::StateSet) {
                return Err(ErrorKind::UnitNotAllowed(excerpt(&self.family)));
            }
        }
        if self.hist.active {
            self.hist.check(&self.family)?;
        }
        Ok(())
    }

    /// Switches to family `name` for a metadata line, checking order and repetition.
    fn metadata_family(&mut self, name: &str) -> Result<(), ErrorKind> {
        if self.has_family && self.family == name {
            if self.samples_seen {
                return Err(ErrorKind::MetadataAfterSamples(excerpt(name)));
            }
        } else {
            self.end_family()?;
            self.start_family(name, None);
        }
        Ok(())
    }

    /// A `# HELP` (`typ` = None) or `# TYPE` line.
    pub(crate) fn on_metadata(
        &mut self,
        kind: &'static str,
        name: &str,
        typ: Option<MetricType>,
    ) -> Result<(), ErrorKind> {
        if self.validation == Validation::Prometheus {
            return Ok(());
        }
        self.metadata_family(name)?;
        let dup = || {
            Err(ErrorKind::DuplicateMetadata {
                kind,
                family: excerpt(name),
            })
        };
        match typ {
            None => {
                if self.has_help {
                    return dup();
                }
                self.has_help = true;
            }
            Some(t) => {
                if self.typ.is_some() {
                    return dup();
                }
                self.typ = Some(t);
            }
        }
        Ok(())
    }

    /// A `# UNIT` line.
    pub(crate) fn on_unit(&mut self, name: &str, unit: &str) -> Result<(), ErrorKind> {
        if self.validation == Validation::Prometheus {
            return Ok(());
        }
        self.metadata_family(name)?;
        if self.unit.is_some() {
            return Err(ErrorKind::DuplicateMetadata {
                kind: "UNIT",
                family: excerpt(name),
            });
        }
        self.unit = Some(unit.to_owned());
        Ok(())
    }

    /// `# EOF`.
    pub(crate) fn on_eof(&mut self) -> Result<(), ErrorKind> {
        if self.validation == Validation::Prometheus {
            return Ok(());
        }
        self.end_family()
    }

    /// A sample line.
    pub(crate) fn on_sample(&mut self, s: &OmSample<'_>) -> Result<(), ErrorKind> {
        if self.validation == Validation::Prometheus {
            return Ok(());
        }
        let suffix = if self.has_family {
            s.name
                .strip_prefix(self.family.as_str())
                .and_then(Suffix::parse)
                .filter(|&x| allowed(self.typ, x))
        } else {
            None
        };
        let suffix = match suffix {
            Some(x) => x,
            None => {
                self.end_family()?;
                self.start_family(s.name, Some(MetricType::Unknown));
                Suffix::Bare
            }
        };
        self.samples_seen = true;
        let typ = self.typ.unwrap_or(MetricType::Unknown);
        self.check_value(typ, suffix, s)?;

        // Exemplars.
        if let Some(chars) = s.exemplar_chars {
            let ok = matches!(
                (typ, suffix),
                (MetricType::Counter, Suffix::Total)
                    | (
                        MetricType::Histogram | MetricType::GaugeHistogram,
                        Suffix::Bucket
                    )
            );
            if !ok {
                return Err(ErrorKind::ExemplarNotAllowed(excerpt(s.name)));
            }
            if chars > 128 {
                return Err(ErrorKind::ExemplarTooLong(chars));
            }
        }

        // Label groups: contiguous, with consistent timestamps.
        let skip: Option<&str> = match (typ, suffix) {
            (MetricType::Summary, Suffix::Bare) => Some("quantile"),
            (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => Some("le"),
            (MetricType::StateSet, _) => Some(self.family.as_str()),
            _ => None,
        };
        let group = if typ == MetricType::Info {
            0
        } else {
            // Order-independent: sum of per-label hashes.
            s.labels
                .iter()
                .filter(|l| Some(l.name) != skip)
                .fold(0u64, |acc, l| acc.wrapping_add(hash_label(l.name, l.value)))
        };
        if self.in_group && group == self.group {
            if s.ts_secs.is_some() != self.group_ts.is_some() {
                return Err(ErrorKind::MixedTimestamps(excerpt(s.name)));
            }
            if let (Some(prev), Some(ts)) = (self.group_ts, s.ts_secs)
                && ts < prev
                && typ != MetricType::Info
            {
                return Err(ErrorKind::TimestampBackwards(excerpt(s.name)));
            }
        } else if !self.seen_groups.insert(group) {
            return Err(ErrorKind::InterleavedGroup(excerpt(&self.family)));
        }
        self.in_group = true;
        self.group = group;
        self.group_ts = s.ts_secs;

        if matches!(typ, MetricType::Histogram | MetricType::GaugeHistogram) {
            self.track_histogram(group, suffix, s)?;
        }
        Ok(())
    }

    fn check_value(
        &self,
        typ: MetricType,
        suffix: Suffix,
        s: &OmSample<'_>,
    ) -> Result<(), ErrorKind> {
        let v = s.value;
        let bad_value = |rule| {
            Err(ErrorKind::InvalidValueForType {
                name: excerpt(s.name),
                value: v,
                rule,
            })
        };
        let bad_label = |label: &str, rule| {
            Err(ErrorKind::InvalidLabelForType {
                name: excerpt(s.name),
                label: excerpt(label),
                rule,
            })
        };
        let count_like = |rule| {
            if v.is_nan() || v < 0.0 {
                bad_value(rule)
            } else {
                Ok(())
            }
        };
        use MetricType as T;
        use Suffix as S;
        match (typ, suffix) {
            (T::Counter, S::Total) => count_like("counters must not be negative or NaN"),
            (T::Histogram | T::GaugeHistogram, S::Bucket) => {
                match s.labels.get("le") {
                    None => return bad_label("le", "is required on _bucket samples"),
                    Some(le) if parse_bound(le).is_none() => {
                        return bad_label("le", "must be a number (infinity spelt +Inf)");
                    }
                    Some(_) => {}
                }
                count_like("bucket counts must not be negative or NaN")
            }
            (T::Histogram | T::Summary, S::Count) | (T::GaugeHistogram, S::GCount) => {
                count_like("counts must not be negative or NaN")
            }
            (T::Histogram | T::Summary, S::Sum) => count_like("_sum must not be negative or NaN"),
            (T::GaugeHistogram, S::GSum) if v.is_nan() => bad_value("_gsum must not be NaN"),
            (T::Summary, S::Bare) => {
                match s.labels.get("quantile").map(parse_bound) {
                    None => return bad_label("quantile", "is required on summary quantiles"),
                    Some(Some(q)) if (0.0..=1.0).contains(&q) => {}
                    Some(_) => return bad_label("quantile", "must be a number in [0, 1]"),
                }
                if v < 0.0 {
                    return bad_value("quantile values must not be negative");
                }
                Ok(())
            }
            (T::StateSet, _) => {
                if s.labels.get(&self.family).is_none() {
                    return bad_label(
                        &self.family,
                        "(the family name) is required on stateset samples",
                    );
                }
                if v != 0.0 && v != 1.0 {
                    return bad_value("stateset values must be 0 or 1");
                }
                Ok(())
            }
            (T::Info, _) if v != 1.0 => bad_value("info values must be 1"),
            _ => Ok(()),
        }
    }

    fn track_histogram(
        &mut self,
        group: u64,
        suffix: Suffix,
        s: &OmSample<'_>,
    ) -> Result<(), ErrorKind> {
        if !self.hist.active || self.hist.group != group || self.hist.ts != s.ts_secs {
            if self.hist.active {
                self.hist.check(&self.family)?;
            }
            self.hist = Hist {
                active: true,
                group,
                ts: s.ts_secs,
                ..Hist::default()
            };
        }
        let bad = |rule| {
            Err(ErrorKind::InvalidHistogram {
                family: excerpt(&self.family),
                rule,
            })
        };
        match suffix {
            Suffix::Bucket => {
                let le = s.labels.get("le").and_then(parse_bound).unwrap_or(f64::NAN);
                if le < 0.0 {
                    self.hist.negative_buckets = true;
                }
                if self.hist.last_le.is_some_and(|prev| le <= prev) {
                    return bad("buckets must be in increasing order of le");
                }
                if s.value < self.hist.last_bucket_value {
                    return bad("bucket counts must not decrease");
                }
                self.hist.last_le = Some(le);
                self.hist.last_bucket_value = s.value;
            }
            Suffix::Count | Suffix::GCount => self.hist.count = Some(s.value),
            Suffix::Sum => self.hist.has_sum = true,
            Suffix::GSum => {
                self.hist.has_gsum = true;
                if s.value < 0.0 {
                    self.hist.negative_gsum = true;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
