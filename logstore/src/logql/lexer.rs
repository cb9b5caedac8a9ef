//! The LogQL tokenizer: turns query text into tokens that remember their byte offset, so that
//! every parse error can name a line and column as Loki does
//! (`parse error at line 1, col 12: …`).
//!
//! Decided here: numbers, durations (`5m`, `1h30m`, `250ms`) and byte sizes (`10KB`, `1.5MiB`)
//! all start with a digit and are one [`TokenKind::Value`] token whose text the parser
//! interprets where it knows which one it expects. Strings are Go strings: `"…"` with Go's
//! escapes, or raw `` `…` ``.

use super::error::Error;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// A name: label names, keywords, function names.
    Ident(String),
    /// A quoted string, unescaped.
    Str(String),
    /// Text starting with a digit: a number, a duration or a byte size.
    Value(String),
    /// A flag such as `--strict`, without the dashes.
    Flag(String),
    /// An operator or punctuation, as written (`|=`, `!~`, `{`, `>=`, …).
    Symbol(&'static str),
    /// The end of the text.
    End,
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub kind: TokenKind,
    /// Byte offset of its first character in the query.
    pub offset: usize,
}

/// Symbols, longest first so that `|=` wins over `|`.
const SYMBOLS: [&str; 28] = [
    "|=", "|~", "!=", "!~", "=~", "==", ">=", "<=", "|", "=", ">", "<", "{", "}", "(", ")", "[",
    "]", ",", "+", "-", "*", "/", "%", "^", "!", ".", ":",
];

/// Splits `query` into tokens, ending with [`TokenKind::End`].
pub fn tokenize(query: &str) -> Result<Vec<Token>, Error> {
    let bytes = query.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        if c.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        if c == b'#' {
            // A comment runs to the end of the line.
            while at < bytes.len() && bytes[at] != b'\n' {
                at += 1;
            }
            continue;
        }
        let start = at;
        let kind = if c == b'"' || c == b'`' {
            let (text, end) = string(query, at)?;
            at = end;
            TokenKind::Str(text)
        } else if c.is_ascii_digit() {
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'.') {
                at += 1;
            }
            TokenKind::Value(query[start..at].to_owned())
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            TokenKind::Ident(query[start..at].to_owned())
        } else if c == b'-'
            && bytes.get(at + 1) == Some(&b'-')
            && bytes.get(at + 2).is_some_and(u8::is_ascii_alphabetic)
        {
            at += 2;
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'-') {
                at += 1;
            }
            TokenKind::Flag(query[start + 2..at].to_owned())
        } else if let Some(symbol) = SYMBOLS.iter().find(|s| query[at..].starts_with(**s)) {
            at += symbol.len();
            TokenKind::Symbol(symbol)
        } else {
            let found = query[at..].chars().next().unwrap_or('?');
            return Err(Error::parse(
                query,
                at,
                format!("syntax error: unexpected character {found:?}"),
            ));
        };
        tokens.push(Token {
            kind,
            offset: start,
        });
    }
    tokens.push(Token {
        kind: TokenKind::End,
        offset: query.len(),
    });
    Ok(tokens)
}

/// A quoted string starting at `start`: its unescaped text and the offset after it.
fn string(query: &str, start: usize) -> Result<(String, usize), Error> {
    let quote = query.as_bytes()[start];
    let mut out = String::new();
    let mut chars = query[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        let at = start + 1 + i;
        if c == quote as char {
            return Ok((out, at + 1));
        }
        if quote == b'"' && c == '\\' {
            let Some((_, escaped)) = chars.next() else {
                break;
            };
            match escaped {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                '\\' | '"' | '\'' => out.push(escaped),
                'x' | 'u' | 'U' => {
                    let digits = match escaped {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let mut code = 0u32;
                    for _ in 0..digits {
                        let digit = chars
                            .next()
                            .and_then(|(_, d)| d.to_digit(16))
                            .ok_or_else(|| Error::parse(query, at, "invalid escape in string"))?;
                        code = code * 16 + digit;
                    }
                    out.push(
                        char::from_u32(code)
                            .ok_or_else(|| Error::parse(query, at, "invalid escape in string"))?,
                    );
                }
                other => {
                    return Err(Error::parse(
                        query,
                        at,
                        format!("invalid escape \\{other} in string"),
                    ));
                }
            }
            continue;
        }
        if quote == b'"' && c == '\n' {
            break;
        }
        out.push(c);
    }
    Err(Error::parse(query, start, "unterminated string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_values_and_flags() {
        let kinds: Vec<TokenKind> = tokenize(r#"{a=~"x\"y"} |= `\w` | logfmt --strict [5m]"#)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                TokenKind::Symbol("{"),
                TokenKind::Ident("a".into()),
                TokenKind::Symbol("=~"),
                TokenKind::Str("x\"y".into()),
                TokenKind::Symbol("}"),
                TokenKind::Symbol("|="),
                TokenKind::Str("\\w".into()),
                TokenKind::Symbol("|"),
                TokenKind::Ident("logfmt".into()),
                TokenKind::Flag("strict".into()),
                TokenKind::Symbol("["),
                TokenKind::Value("5m".into()),
                TokenKind::Symbol("]"),
                TokenKind::End,
            ]
        );
    }

    #[test]
    fn unterminated_string_names_its_position() {
        let error = tokenize("{a=\"b}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "parse error at line 1, col 4: unterminated string"
        );
    }
}
