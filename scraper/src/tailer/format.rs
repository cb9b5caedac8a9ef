//! Container log line formats: CRI (containerd, CRI-O) and Docker's json-file driver.
//!
//! CRI, as the kubelet writes it (<https://github.com/kubernetes/design-proposals-archive/blob/main/node/kubelet-cri-logging.md>):
//! `<RFC3339Nano time> <stdout|stderr> <P|F>[:more tags] <content>`; `P` marks a fragment of
//! a longer line, the next `F` closes it. Docker json-file: one object per line,
//! `{"log":"...\n","stream":"stdout","time":"..."}`; a `log` without a trailing `\n` is a
//! fragment of a line that goes on in the next object.
//!
//! Edge cases decided: a CRI line with an empty content may lack the final space; a line
//! that is neither format (plain files outside Kubernetes) is taken as it is, stamped with
//! the time it was read; a reassembled line longer than the cap is cut at the cap (on a
//! character boundary) and the rest of it is skipped, as Promtail's `max_partial_line_size`
//! with truncation does.

use chrono::DateTime;

/// One physical line of a log file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The time the runtime wrote, in Unix nanoseconds; `None` for plain lines.
    pub timestamp_ns: Option<i64>,
    /// `stdout` or `stderr`; `None` for plain lines.
    pub stream: Option<String>,
    /// The line goes on in the next physical line.
    pub partial: bool,
    /// The content (without the runtime's framing and trailing newline).
    pub content: std::borrow::Cow<'a, str>,
}

fn rfc3339_ns(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|time| time.timestamp_nanos_opt())
}

/// Parses a CRI line; `None` when the line is not in CRI format.
pub fn parse_cri(line: &str) -> Option<Parsed<'_>> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let (tags, content) = rest.split_once(' ').unwrap_or((rest, ""));
    let partial = match tags.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return None,
    };
    Some(Parsed {
        timestamp_ns: Some(rfc3339_ns(time)?),
        stream: Some(stream.to_owned()),
        partial,
        content: content.into(),
    })
}

#[derive(serde::Deserialize)]
struct DockerLine {
    log: String,
    #[serde(default)]
    stream: String,
    time: String,
}

/// Parses a Docker json-file line; `None` when the line is not such an object.
pub fn parse_docker(line: &str) -> Option<Parsed<'static>> {
    let object: DockerLine = serde_json::from_str(line).ok()?;
    let (content, partial) = match object.log.strip_suffix('\n') {
        Some(content) => (content.to_owned(), false),
        None => (object.log, true),
    };
    Some(Parsed {
        timestamp_ns: Some(rfc3339_ns(&object.time)?),
        stream: (!object.stream.is_empty()).then_some(object.stream),
        partial,
        content: content.into(),
    })
}

/// Parses a line in whichever format it is in: Docker JSON, CRI, or plain text.
pub fn parse_any(line: &str) -> Parsed<'_> {
    let parsed = if line.starts_with('{') {
        parse_docker(line)
    } else {
        None
    };
    parsed.or_else(|| parse_cri(line)).unwrap_or(Parsed {
        timestamp_ns: None,
        stream: None,
        partial: false,
        content: line.into(),
    })
}

/// Appends `fragment` to `line` without letting it grow past `cap` bytes (0 = no cap);
/// returns whether anything had to be cut.
pub fn append_capped(line: &mut String, fragment: &str, cap: usize) -> bool {
    if cap == 0 || line.len() + fragment.len() <= cap {
        line.push_str(fragment);
        return false;
    }
    let mut room = cap.saturating_sub(line.len());
    while room > 0 && !fragment.is_char_boundary(room) {
        room -= 1;
    }
    line.push_str(&fragment[..room]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_full_partial_and_empty() {
        let full = parse_cri("2024-01-02T03:04:05.123456789Z stdout F hello world").unwrap();
        assert_eq!(full.timestamp_ns, Some(1_704_164_645_123_456_789));
        assert_eq!(full.stream.as_deref(), Some("stdout"));
        assert!(!full.partial);
        assert_eq!(full.content, "hello world");
        let partial = parse_cri("2024-01-02T03:04:05+01:00 stderr P part").unwrap();
        assert!(partial.partial);
        assert_eq!(partial.stream.as_deref(), Some("stderr"));
        assert_eq!(
            parse_cri("2024-01-02T03:04:05Z stdout F").unwrap().content,
            ""
        );
        assert!(parse_cri("not a cri line at all").is_none());
        assert!(parse_cri("2024-01-02T03:04:05Z stdin F x").is_none());
    }

    #[test]
    fn docker_lines_and_fallback() {
        let line = r#"{"log":"hi\n","stream":"stderr","time":"2024-01-02T03:04:05.5Z"}"#;
        let parsed = parse_docker(line).unwrap();
        assert_eq!(parsed.content, "hi");
        assert!(!parsed.partial);
        assert_eq!(parsed.timestamp_ns, Some(1_704_164_645_500_000_000));
        let fragment = r#"{"log":"hal","stream":"stdout","time":"2024-01-02T03:04:05Z"}"#;
        assert!(parse_any(fragment).partial);
        let plain = parse_any("{not json");
        assert_eq!(
            (plain.content.as_ref(), plain.timestamp_ns),
            ("{not json", None)
        );
    }

    #[test]
    fn cap_cuts_on_char_boundary() {
        let mut line = String::from("ab");
        assert!(append_capped(&mut line, "cdé", 5));
        assert_eq!(line, "abcd");
        assert!(!append_capped(&mut line, "", 5));
    }
}
