//! The series notation of Prometheus's PromQL test scripts and of promtool's rule unit
//! tests (`input_series`, `exp_samples`): a series descriptor (`metric{a="b"}`) and expanding
//! values (`1+2x3` is 1 3 5 7, `5x2` is 5 5 5, `_` an empty slot, `_x3` three, `stale` a
//! staleness marker). Shared by the PromQL fixture runner and `sightline test rules`.

use promql_parser::parser::Expr;
use sightline_core::labels::{Labels, METRIC_NAME};

use super::STALE_NAN_BITS;

/// Parses a float as Go's `strconv.ParseFloat` accepts the scripts' values.
pub fn parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let (sign, body) = match lower.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, lower.strip_prefix('+').unwrap_or(&lower)),
    };
    let v = match body {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => return Some(f64::NAN),
        b if b.starts_with("0x") => i64::from_str_radix(&b[2..], 16).ok()? as f64,
        b => {
            if !b.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                return None;
            }
            b.parse().ok()?
        }
    };
    Some(sign * v)
}

/// One expanded value: a number, a staleness marker, or an empty slot.
#[derive(Debug, Clone, Copy)]
pub enum Slot {
    /// A sample value (a staleness marker is a NaN with its bits).
    Value(f64),
    /// No sample in this slot.
    Empty,
}

/// Expands the scripts' value notation (`1+2x3`, `_x2`, `stale`, …).
pub fn parse_values(items: &str) -> Result<Vec<Slot>, String> {
    if items.contains("{{") {
        return Err("native histogram".to_owned());
    }
    let mut out = Vec::new();
    for item in items.split_whitespace() {
        if item == "_" {
            out.push(Slot::Empty);
            continue;
        }
        if item == "stale" {
            out.push(Slot::Value(f64::from_bits(STALE_NAN_BITS)));
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad item {item}"))?;
            out.extend(std::iter::repeat_n(Slot::Empty, n));
            continue;
        }
        // `AxK` repetition wins over a hex literal: `0x59` is 0 repeated 60 times.
        let repeat = item
            .rfind('x')
            .filter(|&x| x > 0 && item[x + 1..].chars().all(|c| c.is_ascii_digit()))
            .filter(|&x| x + 1 < item.len());
        let Some(xpos) = repeat else {
            match parse_float(item) {
                Some(v) => {
                    out.push(Slot::Value(v));
                    continue;
                }
                None => return Err(format!("bad item {item}")),
            }
        };
        let times: i64 = item[xpos + 1..]
            .parse()
            .map_err(|_| format!("bad item {item}"))?;
        let head = &item[..xpos];
        // Find the operator splitting `A+B` / `A-B` (not an exponent sign, not a leading sign).
        let bytes = head.as_bytes();
        let mut split = None;
        for i in 1..bytes.len() {
            if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                split = Some(i);
            }
        }
        let (start, inc) = match split {
            Some(i) => {
                let a = parse_float(&head[..i]).ok_or(format!("bad item {item}"))?;
                let b = parse_float(&head[i + 1..]).ok_or(format!("bad item {item}"))?;
                (a, if bytes[i] == b'-' { -b } else { b })
            }
            None => (parse_float(head).ok_or(format!("bad item {item}"))?, 0.0),
        };
        if head == "stale" {
            return Err(format!("bad item {item}"));
        }
        let mut v = start;
        for _ in 0..=times {
            out.push(Slot::Value(v));
            v += inc;
        }
    }
    Ok(out)
}

/// The label set a series descriptor names.
pub fn parse_labels(selector: &str) -> Result<Labels, String> {
    let compact: String = selector.chars().filter(|c| !c.is_whitespace()).collect();
    if compact == "{}" {
        return Ok(Labels::new());
    }
    let expr =
        promql_parser::parser::parse(selector).map_err(|e| format!("series {selector}: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("series {selector}: not a selector"));
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(name) = vs.name {
        pairs.push((METRIC_NAME.to_owned(), name));
    }
    for m in vs.matchers.matchers {
        pairs.push((m.name, m.value));
    }
    Ok(Labels::from_pairs(pairs))
}
