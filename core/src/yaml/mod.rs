//! Reading YAML files so that every error names `file:line:col`, like promtool.
//!
//! Parsing uses `yaml_serde` (the maintained fork of serde_yaml). Syntax errors, unknown keys
//! (every config struct denies them) and type errors carry the position yaml_serde reports.
//! Semantic checks that look at one section — a relabel rule's action and target, a rule's
//! `record` and `alert` — implement [`Check`] and are deserialized through [`checked`] or
//! [`checked_each`], so their errors point at that section instead of at the whole file.

mod locate;

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use locate::{Step, locate};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};

/// Where in a source file something is: a path and, when known, a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as the user named it.
    pub file: PathBuf,
    /// 1-based line and column, when the parser knows them.
    pub line_column: Option<(usize, usize)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_column {
            Some((line, column)) => write!(f, "{}:{line}:{column}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// One problem found after parsing (several are reported at once), and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, and the line and column of the node at fault.
    pub location: Location,
    /// What is wrong, naming the section and the fix.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// A YAML source that could not be read or does not match its schema.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be read at all.
    #[error("{}: cannot read file: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not valid YAML, or not valid for the schema.
    #[error("{location}: {message}")]
    Invalid {
        /// Where the problem is.
        location: Location,
        /// What is wrong, naming the key path when there is one.
        message: String,
    },
}

impl SourceError {
    /// An error about `file` as a whole, for checks that span several sections.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        SourceError::Invalid {
            location: Location {
                file: file.to_owned(),
                line_column: None,
            },
            message: message.into(),
        }
    }
}

/// Reads and parses the YAML file at `path`.
pub fn from_file<T: DeserializeOwned>(path: &Path) -> Result<T, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_owned(),
        source,
    })?;
    from_str(path, &text)
}

/// Parses `text`, naming `file` in errors.
pub fn from_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, SourceError> {
    yaml_serde::from_str(text).map_err(|error| {
        let line_column = error.location().map(|l| (l.line(), l.column()));
        let mut message = error.to_string();
        // yaml_serde writes the position into the message; it goes in front instead.
        if let Some((line, column)) = line_column {
            message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
        }
        SourceError::Invalid {
            location: Location {
                file: file.to_owned(),
                line_column,
            },
            message,
        }
    })
}

/// A section that checks its own invariants right after it is read.
pub trait Check {
    /// Returns a message naming the problem and the fix, or `Ok` when the section is valid.
    fn check(&self) -> Result<(), String>;
}

/// Deserializes a mapping into `T` and runs [`Check::check`] while the parser still knows the
/// mapping's position. Use as `#[serde(deserialize_with = "yaml::checked")]`.
pub fn checked<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Check,
{
    struct CheckedVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Check> Visitor<'de> for CheckedVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let value = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
            value.check().map_err(de::Error::custom)?;
            Ok(value)
        }
    }
    deserializer.deserialize_map(CheckedVisitor(PhantomData))
}

/// Deserializes a string and converts it with `parse`, raising a failure while the parser
/// still knows the value's position (an error raised after deserializing would point at the
/// enclosing mapping instead).
pub fn from_string<'de, D, T, F>(
    deserializer: D,
    expecting: &'static str,
    parse: F,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    struct StringVisitor<F>(&'static str, F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for StringVisitor<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(StringVisitor(expecting, parse))
}

/// Like [`checked`] for a list: each element is checked at its own position.
pub fn checked_each<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Check,
{
    checked_list(deserializer, |_| Ok(()))
}

/// Like [`checked_each`], then runs `check_list` over the whole list, whose failure points at
/// the list (for rules across elements, such as unique names).
pub fn checked_list<'de, D, T>(
    deserializer: D,
    check_list: fn(&[T]) -> Result<(), String>,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Check,
{
    struct Element<T>(T);
    impl<'de, T: Deserialize<'de> + Check> Deserialize<'de> for Element<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            checked(deserializer).map(Element)
        }
    }
    struct ListVisitor<T>(fn(&[T]) -> Result<(), String>);
    impl<'de, T: Deserialize<'de> + Check> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(Element(value)) = seq.next_element()? {
                list.push(value);
            }
            (self.0)(&list).map_err(de::Error::custom)?;
            Ok(list)
        }
    }
    deserializer.deserialize_seq(ListVisitor(check_list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(deserialize_with = "checked_each")]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        low: u32,
        high: u32,
    }

    impl Check for Item {
        fn check(&self) -> Result<(), String> {
            if self.low > self.high {
                return Err(format!("low {} is above high {}", self.low, self.high));
            }
            Ok(())
        }
    }

    fn error_of(text: &str) -> String {
        match from_str::<Doc>(Path::new("doc.yml"), text) {
            Ok(doc) => panic!("expected an error, got {doc:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn valid_document_parses() {
        let doc: Doc = from_str(Path::new("doc.yml"), "items:\n  - {low: 1, high: 2}\n").unwrap();
        assert_eq!((doc.items[0].low, doc.items[0].high), (1, 2));
    }

    #[test]
    fn unknown_key_names_its_position() {
        let message = error_of("items:\n  - low: 1\n    high: 2\n    hgih: 3\n");
        assert!(
            message.starts_with("doc.yml:4:5: items[0]: unknown field `hgih`"),
            "{message}"
        );
    }

    #[test]
    fn check_failure_points_at_the_element() {
        let message = error_of("items:\n  - low: 1\n    high: 2\n  - low: 5\n    high: 2\n");
        assert_eq!(message, "doc.yml:4:5: items[1]: low 5 is above high 2");
    }

    #[test]
    fn syntax_error_has_a_position() {
        let message = error_of("items: [\n");
        assert!(message.starts_with("doc.yml:2:1: "), "{message}");
    }
}
