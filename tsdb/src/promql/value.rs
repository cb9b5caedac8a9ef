//! Query results in Prometheus's value types, serialized in the shape of the Prometheus HTTP
//! API's `data` object: `{"resultType":"vector","result":[{"metric":{…},"value":[t,"v"]}]}`.
//!
//! As in Prometheus, sample values are strings (`"1.5"`, `"+Inf"`, `"-Inf"`, `"NaN"`) and
//! timestamps are seconds as a JSON number with millisecond precision. Floats print in the
//! shortest form that reads back to the same value, without an exponent, like Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)`.

use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use sightline_core::labels::Labels;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (the metric name is absent after most functions and operators).
    pub metric: Labels,
    /// Timestamp in milliseconds: the evaluation time.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// One series of a range vector or range-query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub metric: Labels,
    /// `(timestamp ms, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

/// A PromQL value: what a query returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number with its evaluation time (ms).
    Scalar {
        /// Timestamp in milliseconds.
        t: i64,
        /// The value.
        v: f64,
    },
    /// A string literal with its evaluation time (ms).
    String {
        /// Timestamp in milliseconds.
        t: i64,
        /// The value.
        v: String,
    },
    /// An instant vector: at most one sample per label set.
    Vector(Vec<Sample>),
    /// A range vector (from an instant query of a matrix selector) or the result of a range
    /// query, sorted by labels.
    Matrix(Vec<Series>),
}

impl Value {
    /// Prometheus's name of the type: `scalar`, `string`, `vector` or `matrix`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Formats a float as Prometheus does in JSON: `+Inf`, `-Inf`, `NaN`, else the shortest
/// round-tripping decimal.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

/// `[seconds, "value"]`.
struct Point<'a>(i64, &'a str);

impl Serialize for Point<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(2))?;
        // Prometheus writes whole seconds without a fraction (`1700000000`, not `…0.0`).
        if self.0 % 1000 == 0 {
            seq.serialize_element(&(self.0 / 1000))?;
        } else {
            seq.serialize_element(&(self.0 as f64 / 1000.0))?;
        }
        seq.serialize_element(self.1)?;
        seq.end()
    }
}

/// A label set as a JSON object.
struct Metric<'a>(&'a Labels);

impl Serialize for Metric<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for label in self.0 {
            map.serialize_entry(&label.name, &label.value)?;
        }
        map.end()
    }
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut st = serializer.serialize_struct("Sample", 2)?;
        st.serialize_field("metric", &Metric(&self.metric))?;
        st.serialize_field("value", &Point(self.t, &format_value(self.v)))?;
        st.end()
    }
}

struct Points<'a>(&'a [(i64, f64)]);

impl Serialize for Points<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for &(t, v) in self.0 {
            seq.serialize_element(&Point(t, &format_value(v)))?;
        }
        seq.end()
    }
}

impl Serialize for Series {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut st = serializer.serialize_struct("Series", 2)?;
        st.serialize_field("metric", &Metric(&self.metric))?;
        st.serialize_field("values", &Points(&self.points))?;
        st.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut st = serializer.serialize_struct("Value", 2)?;
        st.serialize_field("resultType", self.type_name())?;
        match self {
            Value::Scalar { t, v } => {
                st.serialize_field("result", &Point(*t, &format_value(*v)))?;
            }
            Value::String { t, v } => st.serialize_field("result", &Point(*t, v))?,
            Value::Vector(samples) => st.serialize_field("result", samples)?,
            Value::Matrix(series) => st.serialize_field("result", series)?,
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_prometheus_shape() {
        let v = Value::Vector(vec![Sample {
            metric: Labels::from_pairs([("job", "a")]),
            t: 1_500,
            v: f64::INFINITY,
        }]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1.5,"+Inf"]}]}"#
        );
        let s = Value::Scalar { t: 0, v: 0.25 };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"resultType":"scalar","result":[0,"0.25"]}"#
        );
        let m = Value::Matrix(vec![Series {
            metric: Labels::new(),
            points: vec![(1000, 1.0), (2000, f64::NAN)],
        }]);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"NaN"]]}]}"#
        );
    }
}
