//! Choosing the parser from a scrape response's `Content-Type`, as Prometheus 3 does
//! (`model/textparse`'s `extractMediaType`): `application/openmetrics-text` (any version)
//! is OpenMetrics, `text/plain` (any version) is the text format; a missing, unparsable or
//! unsupported media type (including the protobuf format, which we never ask for) uses the
//! configured `fallback_scrape_protocol`, and fails the scrape when there is none.
//! Prometheus 2 always fell back to the text format: pass
//! `Some(Format::PrometheusText)` for that behaviour.

use super::Format;

/// The `Accept` header to send on scrapes: OpenMetrics 1.0.0 first, then OpenMetrics 0.0.1,
/// then the text format, as Prometheus sends it (without protobuf).
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;q=0.5,\
application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The format chosen for a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The parser to use.
    pub format: Format,
    /// Set when the fallback was used: why (for the target's health, as a warning).
    pub fallback_reason: Option<ContentTypeError>,
}

/// Why a `Content-Type` could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentTypeError {
    /// No `Content-Type` header (or an empty one).
    #[error("target sent no Content-Type and no fallback_scrape_protocol is configured")]
    Missing,
    /// The header is not a media type.
    #[error("cannot parse the target's Content-Type and no fallback_scrape_protocol is configured")]
    Unparsable,
    /// A media type we do not parse (e.g. protobuf or text/html).
    #[error("unsupported Content-Type from target and no fallback_scrape_protocol is configured")]
    Unsupported,
}

/// Picks the format for a response with `content_type`, using `fallback` (the
/// `fallback_scrape_protocol`) when it is missing, unparsable or unsupported.
///
/// ```
/// use sightline_scraper::exposition::{negotiate, Format};
/// let n = negotiate(Some("application/openmetrics-text; version=1.0.0; charset=utf-8"), None);
/// assert_eq!(n.unwrap().format, Format::OpenMetrics);
/// let n = negotiate(None, Some(Format::PrometheusText)).unwrap();
/// assert_eq!(n.format, Format::PrometheusText);
/// assert!(n.fallback_reason.is_some());
/// assert!(negotiate(Some("text/html"), None).is_err());
/// ```
pub fn negotiate(
    content_type: Option<&str>,
    fallback: Option<Format>,
) -> Result<Negotiated, ContentTypeError> {
    let reason = match content_type.map(str::trim).filter(|s| !s.is_empty()) {
        None => ContentTypeError::Missing,
        Some(ct) => match media_type(ct) {
            None => ContentTypeError::Unparsable,
            Some(mt) if mt.eq_ignore_ascii_case("application/openmetrics-text") => {
                return Ok(Negotiated {
                    format: Format::OpenMetrics,
                    fallback_reason: None,
                });
            }
            Some(mt) if mt.eq_ignore_ascii_case("text/plain") => {
                return Ok(Negotiated {
                    format: Format::PrometheusText,
                    fallback_reason: None,
                });
            }
            Some(_) => ContentTypeError::Unsupported,
        },
    };
    match fallback {
        Some(format) => Ok(Negotiated {
            format,
            fallback_reason: Some(reason),
        }),
        None => Err(reason),
    }
}

/// The `type/subtype` of a media type, if it has that shape (RFC 7231 tokens) and its
/// parameters are `name=value` pairs.
fn media_type(ct: &str) -> Option<&str> {
    let mut parts = ct.split(';');
    let mt = parts.next()?.trim();
    let (t, s) = mt.split_once('/')?;
    let token = |x: &str| {
        !x.is_empty()
            && x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(t) || !token(s) {
        return None;
    }
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (k, _) = p.split_once('=')?;
        if !token(k.trim()) {
            return None;
        }
    }
    Some(mt)
}
