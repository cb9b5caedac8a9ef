//! Finding where a node of a YAML document is, for problems found after parsing (a rule
//! naming a label twice, a route naming a receiver that does not exist) and for warnings.
//!
//! yaml_serde reports positions only with errors: it fills in the position of the node being
//! read when a visitor fails. So the text is read again with a seed that walks down a path
//! and fails on arrival; the error carries the node's position. A step that does not exist (a
//! key that came from a merge) stops at the deepest node that does. Each located node costs
//! one parse, which only happens for a broken file or a warning.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step from a node to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'s> {
    /// Into the value of this key of a mapping.
    Key(&'s str),
    /// Into this element of a sequence.
    Index(usize),
    /// To this key of a mapping (the key itself, not its value); always the last step.
    KeyItself(&'s str),
}

/// Never built: the walk always ends in an error.
enum Arrived {}

/// The 1-based line and column of the node at `steps` in `text`, or of the deepest node on
/// the way that exists.
pub fn locate(text: &str, steps: &[Step<'_>]) -> Option<(usize, usize)> {
    match Walk(steps).deserialize(yaml_serde::Deserializer::from_str(text)) {
        Ok(arrived) => match arrived {},
        Err(error) => error.location().map(|at| (at.line(), at.column())),
    }
}

fn arrived<E: de::Error>() -> E {
    E::custom("arrived")
}

struct Walk<'p, 's>(&'p [Step<'s>]);

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = Arrived;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Arrived, D::Error> {
        match self.0.first() {
            None => deserializer.deserialize_any(Here),
            Some(Step::Index(_)) => deserializer.deserialize_seq(self),
            Some(Step::Key(_) | Step::KeyItself(_)) => deserializer.deserialize_map(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
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
        match self.0.split_first() {
            Some((Step::Key(wanted), rest)) => {
                while let Some(key) = map.next_key::<String>()? {
                    if key == *wanted {
                        match map.next_value_seed(Walk(rest))? {}
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Err(arrived())
            }
            Some((Step::KeyItself(wanted), _)) => {
                while map.next_key_seed(KeyIs(wanted))?.is_some() {
                    map.next_value::<IgnoredAny>()?;
                }
                Err(arrived())
            }
            _ => Err(arrived()),
        }
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

/// Reads a mapping key, failing (at the key's position) when it is the wanted one.
struct KeyIs<'s>(&'s str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        if key == self.0 {
            Err(arrived())
        } else {
            Ok(())
        }
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
