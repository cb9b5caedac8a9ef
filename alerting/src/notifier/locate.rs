//! Finding where a node of the config file is, for problems found after parsing (a route
//! naming a receiver that does not exist) and for warnings.
//!
//! yaml_serde reports positions only with errors, filling in the node being read when a
//! visitor fails. So the file is read again with a seed that walks down a path and fails on
//! arrival; the error's position is the node's. A path that leaves the document stops at the
//! deepest node that exists. Reading costs one parse per located node, which only happens for
//! a broken config or an integration we warn about.
//!
//! `rulefmt` has the same walk privately; the two could move into `sightline_core::yaml`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step from a node to a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Into the value of this key of a mapping.
    Key(&'static str),
    /// Into this element of a sequence.
    Index(usize),
}

/// The 1-based line and column of the node at `path` in `text`.
pub(crate) fn locate(text: &str, path: &[Step]) -> Option<(usize, usize)> {
    match Walk(path).deserialize(yaml_serde::Deserializer::from_str(text)) {
        Ok(arrived) => match arrived {},
        Err(error) => error.location().map(|at| (at.line(), at.column())),
    }
}

/// Never built: the walk always ends in an error.
enum Arrived {}

fn arrived<E: de::Error>() -> E {
    E::custom("arrived")
}

struct Walk<'p>(&'p [Step]);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Arrived;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Arrived, D::Error> {
        match self.0.first() {
            None => deserializer.deserialize_any(Here),
            Some(Step::Index(_)) => deserializer.deserialize_seq(self),
            Some(Step::Key(_)) => deserializer.deserialize_map(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Arrived;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or sequence on the way to a node")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arrived, A::Error> {
        let Some((Step::Index(wanted), rest)) = self.0.split_first() else {
            return Err(arrived());
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(arrived());
            }
        }
        match seq.next_element_seed(Walk(rest))? {
            Some(arrived) => match arrived {},
            None => Err(arrived()),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Arrived, A::Error> {
        let Some((Step::Key(wanted), rest)) = self.0.split_first() else {
            return Err(arrived());
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == *wanted {
                match map.next_value_seed(Walk(rest))? {}
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(arrived())
    }
}

/// Fails on whatever node it is given.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = Arrived;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing (the walk ends here)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_and_elements() {
        let text = "a:\n  b: [x, y]\n  c:\n    - d: 1\n    - d: 2\n";
        assert_eq!(
            locate(text, &[Step::Key("a"), Step::Key("b")]),
            Some((2, 6))
        );
        assert_eq!(
            locate(text, &[Step::Key("a"), Step::Key("b"), Step::Index(1)]),
            Some((2, 10))
        );
        assert_eq!(
            locate(
                text,
                &[
                    Step::Key("a"),
                    Step::Key("c"),
                    Step::Index(1),
                    Step::Key("d")
                ]
            ),
            Some((5, 10))
        );
    }
}
