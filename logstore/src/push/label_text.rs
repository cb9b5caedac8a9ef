//! The label string of a protobuf push stream: `{app="checkout", env="homelab"}`.
//!
//! Loki's `StreamAdapter.labels` holds a label set in Prometheus notation, as Go's label
//! printing writes it (values quoted with `strconv.Quote`). This parser reads that notation:
//! `{`, then `name="value"` pairs separated by `,` (a trailing comma is allowed), then `}`,
//! with any whitespace between tokens.
//!
//! Edge cases decided:
//!
//! * Only `=` is allowed between a name and its value: this is a label set, not a selector.
//! * Values may be quoted with `"`, `'` or backticks (raw, no escapes), as in PromQL/LogQL.
//!   Escapes are Go's: `\a \b \f \n \r \t \v \\ \' \" \xHH \NNN \uHHHH \UHHHHHHHH`; the
//!   unescaped bytes must be UTF-8.
//! * A name is any run of characters other than whitespace, `=`, `,`, braces and quotes, so
//!   that `{foo-bar="x"}` parses and validation can then name the invalid label name instead
//!   of failing with a syntax error.
//! * Repeated names are returned as they are; the caller decides (a push rejects the stream).

use std::fmt;

use sightline_core::labels::Labels;

/// Why a label string cannot be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelTextError {
    /// Byte offset in the label string where parsing stopped.
    pub offset: usize,
    /// What was expected or found there.
    pub problem: &'static str,
}

impl fmt::Display for LabelTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.problem, self.offset)
    }
}

impl std::error::Error for LabelTextError {}

/// Parses a label string such as `{a="b", c="d"}` into name/value pairs in written order.
pub fn parse_label_text(text: &str) -> Result<Vec<(String, String)>, LabelTextError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    parser.parse()
}

/// Writes a label set in the notation [`parse_label_text`] reads, escaping values the way
/// Go's `strconv.Quote` does for the characters that need it.
pub fn format_label_text(labels: &Labels) -> String {
    let mut out = String::with_capacity(
        2 + labels
            .iter()
            .map(|l| l.name.len() + l.value.len() + 5)
            .sum::<usize>(),
    );
    out.push('{');
    for (index, label) in labels.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        out.push_str(&label.name);
        out.push_str("=\"");
        for c in label.value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, problem: &'static str) -> LabelTextError {
        LabelTextError {
            offset: self.pos,
            problem,
        }
    }

    fn skip_whitespace(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, problem: &'static str) -> Result<(), LabelTextError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(problem))
        }
    }

    fn parse(&mut self) -> Result<Vec<(String, String)>, LabelTextError> {
        self.expect(b'{', "expected '{' to open the label set")?;
        let mut pairs = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let name = self.name()?;
            self.expect(b'=', "expected '=' after the label name")?;
            self.skip_whitespace();
            let value = self.value()?;
            pairs.push((name.to_owned(), value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}' after a label value")),
            }
        }
        self.skip_whitespace();
        if self.pos != self.bytes.len() {
            return Err(self.error("unexpected text after '}'"));
        }
        Ok(pairs)
    }

    fn name(&mut self) -> Result<&'a str, LabelTextError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b"=,{}\"'`!~".contains(&b) {
                break;
            }
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error("expected a label name"));
        }
        // Stops are ASCII, so both ends are character boundaries.
        Ok(&self.text[start..self.pos])
    }

    fn value(&mut self) -> Result<String, LabelTextError> {
        let Some(quote) = self.peek() else {
            return Err(self.error("expected a quoted label value"));
        };
        if !matches!(quote, b'"' | b'\'' | b'`') {
            return Err(self.error("expected a quoted label value"));
        }
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes before the closing quote.
        while let Some(b) = self.peek() {
            if b == quote {
                let value = self.text[start..self.pos].to_owned();
                self.pos += 1;
                return Ok(value);
            }
            if b == b'\\' && quote != b'`' {
                break;
            }
            self.pos += 1;
        }
        if self.peek().is_none() {
            return Err(self.error("unterminated label value"));
        }
        let mut out: Vec<u8> = self.bytes[start..self.pos].to_vec();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("unterminated label value"));
            };
            self.pos += 1;
            if b == quote {
                break;
            }
            if b != b'\\' {
                out.push(b);
                continue;
            }
            let Some(escape) = self.peek() else {
                return Err(self.error("unterminated label value"));
            };
            self.pos += 1;
            match escape {
                b'a' => out.push(0x07),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(0x0b),
                b'\\' | b'"' | b'\'' => out.push(escape),
                b'x' => {
                    let byte = self.hex(2)?;
                    out.push(u8::try_from(byte).map_err(|_| self.error("bad \\x escape"))?);
                }
                b'0'..=b'7' => {
                    let mut value = u32::from(escape - b'0');
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                self.pos += 1;
                            }
                            _ => return Err(self.error("octal escape needs three digits")),
                        }
                    }
                    out.push(
                        u8::try_from(value)
                            .map_err(|_| self.error("octal escape is above \\377"))?,
                    );
                }
                b'u' | b'U' => {
                    let digits = if escape == b'u' { 4 } else { 8 };
                    let code = self.hex(digits)?;
                    let c = char::from_u32(code)
                        .ok_or_else(|| self.error("escape is not a Unicode scalar value"))?;
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                }
                _ => return Err(self.error("unknown escape sequence")),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("label value is not valid UTF-8"))
    }

    fn hex(&mut self, digits: usize) -> Result<u32, LabelTextError> {
        let mut value = 0u32;
        for _ in 0..digits {
            let digit = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("expected a hex digit in an escape"))?;
            value = value * 16 + digit;
            self.pos += 1;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        match parse_label_text(text) {
            Ok(pairs) => pairs,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_prometheus_notation() {
        assert_eq!(
            pairs(r#"{app="checkout", env="homelab", namespace="shop"}"#),
            owned(&[
                ("app", "checkout"),
                ("env", "homelab"),
                ("namespace", "shop")
            ])
        );
        assert_eq!(pairs("{}"), owned(&[]));
        assert_eq!(
            pairs(" { a = 'x' , b=`c\\d`, } "),
            owned(&[("a", "x"), ("b", "c\\d")])
        );
        assert_eq!(pairs(r#"{bad-name="v"}"#), owned(&[("bad-name", "v")]));
    }

    #[test]
    fn unescapes_go_quoting() {
        assert_eq!(
            pairs(r#"{a="say \"hi\" \\ bye", b="tab\there\nnl", c="\u00e9\U0001F680\x41\101"}"#),
            owned(&[
                ("a", r#"say "hi" \ bye"#),
                ("b", "tab\there\nnl"),
                ("c", "é🚀AA"),
            ])
        );
        assert_eq!(pairs(r#"{a="\xc3\xa9"}"#), owned(&[("a", "é")]));
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "",
            "a=\"b\"",
            "{a}",
            "{a=b}",
            "{a!=\"b\"}",
            "{a=\"b\"",
            "{a=\"b\" c=\"d\"}",
            "{=\"b\"}",
            "{a=\"b\\q\"}",
            "{a=\"\\xff\"}",
            "{a=\"b\"} x",
            "{a=\"\\ud800\"}",
        ] {
            assert!(parse_label_text(text).is_err(), "{text:?} should not parse");
        }
        let err = parse_label_text("{a=b}").err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("expected a quoted label value at byte 3".to_owned())
        );
    }

    #[test]
    fn format_round_trips() {
        let labels = Labels::from_pairs([
            ("job", "say \"hi\" \\ bye"),
            ("team", "équipe-日本"),
            ("ctl", "a\u{1}b\nc\t"),
        ]);
        let text = format_label_text(&labels);
        assert_eq!(Labels::from_pairs(pairs(&text)), labels);
    }
}
