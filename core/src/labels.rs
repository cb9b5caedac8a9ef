//! Label sets: the identity of a metric series or a log stream.
//!
//! A [`Labels`] value is a list of name/value pairs sorted by name with unique names, the
//! order Prometheus keeps them in, so that equal sets compare and hash equal and printing is
//! stable. The metric name is the `__name__` label. Storage engines keep their own compact
//! (interned) copies; this type is for passing label sets between crates.

use std::fmt;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One name/value pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// The label name.
    pub name: String,
    /// The label value; never empty inside a [`Labels`] (an empty value means "absent").
    pub value: String,
}

/// A set of labels sorted by name, with unique names and no empty values.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// The empty set.
    pub const fn new() -> Labels {
        Labels(Vec::new())
    }

    /// Builds a set from pairs in any order. Pairs with an empty value are dropped (Prometheus
    /// treats them as absent); for a repeated name the last pair wins.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Labels
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut labels: Vec<Label> = pairs
            .into_iter()
            .map(|(name, value)| Label {
                name: name.into(),
                value: value.into(),
            })
            .collect();
        // A stable sort keeps repeated names in input order, so keeping the last one of each
        // run makes the last pair win.
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut deduplicated: Vec<Label> = Vec::with_capacity(labels.len());
        for label in labels {
            match deduplicated.last_mut() {
                Some(last) if last.name == label.name => *last = label,
                _ => deduplicated.push(label),
            }
        }
        deduplicated.retain(|label| !label.value.is_empty());
        Labels(deduplicated)
    }

    /// The value of `name`, if the set has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|label| label.name.as_str().cmp(name))
            .ok()
            .map(|index| self.0[index].value.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// How many labels the set has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `name` to `value`, or removes it when `value` is empty.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .0
            .binary_search_by(|label| label.name.as_str().cmp(name))
        {
            Ok(index) if value.is_empty() => {
                self.0.remove(index);
            }
            Ok(index) => value.clone_into(&mut self.0[index].value),
            Err(_) if value.is_empty() => {}
            Err(index) => self.0.insert(
                index,
                Label {
                    name: name.to_owned(),
                    value: value.to_owned(),
                },
            ),
        }
    }

    /// A copy without the labels whose names `drop` returns true for.
    pub fn without(&self, mut drop: impl FnMut(&str) -> bool) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|label| !drop(&label.name))
                .cloned()
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Prometheus's notation: `{__name__="up", job="node"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, label) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", label.name, label.value)?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_sorted_deduplicated_and_empty_values_dropped() {
        let labels =
            Labels::from_pairs([("job", "a"), ("__name__", "up"), ("x", ""), ("job", "b")]);
        let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "job"]);
        assert_eq!(labels.get("job"), Some("b"));
        assert_eq!(labels.metric_name(), Some("up"));
        assert_eq!(labels.get("x"), None);
        assert_eq!(labels.to_string(), r#"{__name__="up", job="b"}"#);
    }

    #[test]
    fn set_inserts_replaces_and_removes() {
        let mut labels = Labels::from_pairs([("b", "2")]);
        labels.set("a", "1");
        labels.set("c", "3");
        labels.set("b", "two");
        assert_eq!(
            labels,
            Labels::from_pairs([("a", "1"), ("b", "two"), ("c", "3")])
        );
        labels.set("b", "");
        labels.set("zzz", "");
        assert_eq!(labels, Labels::from_pairs([("a", "1"), ("c", "3")]));
        assert_eq!(
            labels.without(|name| name == "a"),
            Labels::from_pairs([("c", "3")])
        );
    }
}
