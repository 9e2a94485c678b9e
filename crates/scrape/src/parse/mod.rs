//! Exposition-format parsers: the Prometheus text format 0.0.4 (and its
//! 1.0.0 variant with quoted UTF-8 names) and OpenMetrics 1.0 text.
//!
//! Both parsers work over the whole response body as one `&str` and hand out
//! entries that borrow from it. A sample entry carries the series exactly as
//! written (`name{labels}`), which the scrape loop uses as its cache key: for
//! a series seen in an earlier scrape nothing is unescaped, allocated or
//! sorted. Labels are only built ([`Parser::labels`]) for series the cache
//! does not know. Escapes are undone lazily, and only when a backslash was
//! seen.
//!
//! Semantics follow Prometheus's `model/textparse` (`promparse.go`,
//! `openmetricsparse.go`): the same tokens, the same float syntax (Go's
//! `strconv.ParseFloat` without hex or underscores), NaN normalised to
//! Prometheus's "normal NaN" so that no scraped value is ever the stale
//! marker, OpenMetrics timestamps in float seconds truncated to
//! milliseconds, exemplars parsed and dropped, `# EOF` required. Any
//! malformed input is a [`ParseError`] with the 1-based line number; the
//! parsers never panic.
//!
//! One deliberate difference: the body must be valid UTF-8 as a whole
//! (Prometheus checks only label values and help texts).

use std::borrow::Cow;
use std::fmt;

use vigil_model::{LabelError, Labels, METRIC_NAME};

mod float;
mod om;
mod prom;
pub mod write;

pub use float::parse_go_float;

/// The NaN Prometheus stores for a scraped `NaN` (`value.NormalNaN`), so
/// that a scraped NaN never collides with the stale marker.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// The exposition formats this crate parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The Prometheus text format (`text/plain; version=0.0.4`, and `1.0.0`
    /// with quoted names).
    PrometheusText,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
}

/// The `Accept` header vigil sends, as Prometheus 3 does with its default
/// `scrape_protocols` (OpenMetrics 1.0.0 and 0.0.1, then the text format
/// 1.0.0 and 0.0.4) and UTF-8 names allowed.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// Why a `Content-Type` selects no parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentTypeError {
    /// The target sent no `Content-Type` and no fallback is configured.
    #[error("non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target")]
    Blank,
    /// The target sent a media type vigil does not parse.
    #[error("received unsupported Content-Type {0:?} and no fallback_scrape_protocol specified for target")]
    Unsupported(String),
}

impl Format {
    /// Picks the parser for a response's `Content-Type`, as Prometheus's
    /// `textparse.New` does: `application/openmetrics-text` is OpenMetrics,
    /// `text/plain` the text format; a blank or unknown type falls back to
    /// `fallback` when one is configured and is an error otherwise.
    pub fn from_content_type(
        content_type: Option<&str>,
        fallback: Option<Format>,
    ) -> Result<Format, ContentTypeError> {
        let ct = content_type.unwrap_or("").trim();
        if ct.is_empty() {
            return fallback.ok_or(ContentTypeError::Blank);
        }
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Ok(Format::OpenMetrics)
        } else if media.eq_ignore_ascii_case("text/plain") {
            Ok(Format::PrometheusText)
        } else {
            fallback.ok_or_else(|| ContentTypeError::Unsupported(ct.to_string()))
        }
    }
}

/// A metric family's type, from a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info` (OpenMetrics).
    Info,
    /// `stateset` (OpenMetrics).
    StateSet,
    /// `untyped` in the text format, `unknown` in OpenMetrics.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name the Prometheus API uses for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// Does OpenMetrics give this type `_created` series?
    pub(crate) fn has_created(self) -> bool {
        matches!(
            self,
            MetricType::Counter | MetricType::Summary | MetricType::Histogram
        )
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sample line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleEntry<'a> {
    /// The series exactly as written: the metric name and the label block.
    /// Two lines with the same text are the same series.
    pub series: &'a str,
    /// The value (a scraped NaN is [`NORMAL_NAN_BITS`]).
    pub value: f64,
    /// The timestamp in milliseconds, when the line has one.
    pub timestamp: Option<i64>,
}

/// One entry of an exposition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Entry<'a> {
    /// A `# HELP` line.
    Help {
        /// The metric family.
        metric: Cow<'a, str>,
        /// The help text, unescaped.
        help: Cow<'a, str>,
    },
    /// A `# TYPE` line.
    Type {
        /// The metric family.
        metric: Cow<'a, str>,
        /// Its type.
        kind: MetricType,
    },
    /// An OpenMetrics `# UNIT` line.
    Unit {
        /// The metric family.
        metric: Cow<'a, str>,
        /// The unit.
        unit: &'a str,
    },
    /// A comment (text format only).
    Comment,
    /// A sample; its labels come from [`Parser::labels`].
    Sample(SampleEntry<'a>),
}

/// What is wrong with an exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The body is not valid UTF-8.
    InvalidUtf8,
    /// A line starts with something that is neither a metric name, `{` nor
    /// `#` (a blank line, in OpenMetrics).
    ExpectedStart,
    /// `# HELP`, `# TYPE` or `# UNIT` without a metric name.
    ExpectedMetricName,
    /// No separator between the metric name and the text of a metadata line.
    ExpectedMetadataText,
    /// A `# TYPE` with an unknown type.
    InvalidMetricType,
    /// A `# UNIT` whose unit is not a suffix of the metric name.
    UnitNotSuffix,
    /// An OpenMetrics comment that is not HELP, TYPE, UNIT or EOF.
    InvalidComment,
    /// Expected a label name (or `}`).
    ExpectedLabelName,
    /// Expected `=` after a label name.
    ExpectedEqual,
    /// Expected a quoted label value.
    ExpectedLabelValue,
    /// Expected `,` or `}` after a label value.
    ExpectedCommaOrBrace,
    /// A quoted string does not end on its line.
    UnterminatedString,
    /// A label block names the metric twice.
    MetricNameTwice,
    /// A series without a metric name.
    MissingMetricName,
    /// Expected a value after the series.
    ExpectedValue,
    /// The value is not a float.
    InvalidValue,
    /// The timestamp is not valid.
    InvalidTimestamp,
    /// Something other than a timestamp or the end of the line after the
    /// value.
    ExpectedTimestampOrEnd,
    /// An exemplar is malformed.
    InvalidExemplar,
    /// OpenMetrics data that does not end with `# EOF`.
    MissingEof,
    /// Data after OpenMetrics `# EOF`.
    DataAfterEof,
}

impl ParseErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ParseErrorKind::InvalidUtf8 => "invalid UTF-8",
            ParseErrorKind::ExpectedStart => "expected a metric name, '{' or '#'",
            ParseErrorKind::ExpectedMetricName => "expected a metric name after HELP, TYPE or UNIT",
            ParseErrorKind::ExpectedMetadataText => "expected a space after the metric name",
            ParseErrorKind::InvalidMetricType => "invalid metric type",
            ParseErrorKind::UnitNotSuffix => "unit is not a suffix of the metric name",
            ParseErrorKind::InvalidComment => {
                "invalid comment (OpenMetrics allows only HELP, TYPE, UNIT and EOF)"
            }
            ParseErrorKind::ExpectedLabelName => "expected a label name",
            ParseErrorKind::ExpectedEqual => "expected '=' after the label name",
            ParseErrorKind::ExpectedLabelValue => "expected a quoted label value",
            ParseErrorKind::ExpectedCommaOrBrace => "expected ',' or '}' after the label value",
            ParseErrorKind::UnterminatedString => "unterminated quoted string",
            ParseErrorKind::MetricNameTwice => "metric name set twice",
            ParseErrorKind::MissingMetricName => "series has no metric name",
            ParseErrorKind::ExpectedValue => "expected a value after the metric",
            ParseErrorKind::InvalidValue => "invalid value",
            ParseErrorKind::InvalidTimestamp => "invalid timestamp",
            ParseErrorKind::ExpectedTimestampOrEnd => "expected a timestamp or the end of the line",
            ParseErrorKind::InvalidExemplar => "invalid exemplar",
            ParseErrorKind::MissingEof => "data does not end with # EOF",
            ParseErrorKind::DataAfterEof => "unexpected data after # EOF",
        }
    }
}

/// A malformed exposition: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {}{}", .kind.describe(), fmt_near(.near))]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// The offending text (at most 48 characters), for the message.
    pub near: String,
}

fn fmt_near(near: &str) -> String {
    if near.is_empty() {
        String::new()
    } else {
        format!(" near {near:?}")
    }
}

impl ParseError {
    /// An error at byte `pos` of `input`, quoting the text from there to the
    /// end of the line.
    pub(crate) fn at(input: &str, pos: usize, kind: ParseErrorKind) -> ParseError {
        let pos = pos.min(input.len());
        let line = 1 + input.as_bytes()[..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        let rest = input.get(pos..).unwrap_or("");
        let rest = rest.split('\n').next().unwrap_or("");
        let near: String = rest.chars().take(48).collect();
        ParseError { line, kind, near }
    }
}

/// A byte range of the input, with whether it holds a backslash escape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize, escaped: bool) -> Span {
        Span {
            start,
            end,
            escaped,
        }
    }

    /// The text, with label-value escapes (`\\`, `\"`, `\n`) undone.
    pub(crate) fn text<'a>(&self, input: &'a str) -> Cow<'a, str> {
        let s = input.get(self.start..self.end).unwrap_or("");
        if self.escaped {
            Cow::Owned(unescape(s, true))
        } else {
            Cow::Borrowed(s)
        }
    }
}

/// Undoes `\\`, `\n` and (when `quotes`) `\"`, left to right, leaving any
/// other backslash sequence as it is, like Go's `strings.Replacer` in
/// Prometheus's parsers.
pub(crate) fn unescape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let mut look = chars.clone();
        match look.next() {
            Some('\\') => {
                out.push('\\');
                chars = look;
            }
            Some('n') => {
                out.push('\n');
                chars = look;
            }
            Some('"') if quotes => {
                out.push('"');
                chars = look;
            }
            _ => out.push('\\'),
        }
    }
    out
}

/// The name and labels of the current sample, as spans into the input.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesSpans {
    /// The metric name; `None` until seen (a `{"name"}` block may set it).
    pub name: Option<Span>,
    pub labels: Vec<(Span, Span)>,
}

impl SeriesSpans {
    pub(crate) fn clear(&mut self) {
        self.name = None;
        self.labels.clear();
    }

    fn labels(&self, input: &str) -> Result<Labels, LabelError> {
        let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> =
            Vec::with_capacity(self.labels.len() + 1);
        if let Some(n) = self.name {
            pairs.push((Cow::Borrowed(METRIC_NAME), n.text(input)));
        }
        for (n, v) in &self.labels {
            pairs.push((n.text(input), v.text(input)));
        }
        Labels::try_from_pairs(pairs)
    }
}

/// Options for [`Parser::new`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Skip OpenMetrics `_created` series of counters, summaries and
    /// histograms instead of reporting them as samples. Off by default, as in
    /// Prometheus (where it follows the created-timestamp ingestion flag).
    pub skip_created_series: bool,
}

/// A parser over one exposition body.
#[derive(Debug)]
pub struct Parser<'a> {
    inner: Inner<'a>,
}

#[derive(Debug)]
enum Inner<'a> {
    Prom(prom::PromParser<'a>),
    Om(om::OpenMetricsParser<'a>),
    Failed(Option<ParseError>),
}

impl<'a> Parser<'a> {
    /// A parser for `body` in `format`. A body that is not UTF-8 yields its
    /// error from the first [`next`](Self::next).
    pub fn new(body: &'a [u8], format: Format, options: ParseOptions) -> Parser<'a> {
        let input = match std::str::from_utf8(body) {
            Ok(s) => s,
            Err(e) => {
                let valid = &body[..e.valid_up_to()];
                let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
                return Parser {
                    inner: Inner::Failed(Some(ParseError {
                        line,
                        kind: ParseErrorKind::InvalidUtf8,
                        near: String::new(),
                    })),
                };
            }
        };
        Parser::from_str(input, format, options)
    }

    /// A parser for `input` in `format`.
    pub fn from_str(input: &'a str, format: Format, options: ParseOptions) -> Parser<'a> {
        let inner = match format {
            Format::PrometheusText => Inner::Prom(prom::PromParser::new(input)),
            Format::OpenMetrics => Inner::Om(om::OpenMetricsParser::new(input, options)),
        };
        Parser { inner }
    }

    /// The next entry; `Ok(None)` at the end. After an error the parser is
    /// done and keeps returning `Ok(None)`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let r = match &mut self.inner {
            Inner::Prom(p) => p.next(),
            Inner::Om(p) => p.next(),
            Inner::Failed(e) => return e.take().map_or(Ok(None), Err),
        };
        if r.is_err() {
            self.inner = Inner::Failed(None);
        }
        r
    }

    /// The labels (`__name__` included) of the sample [`next`](Self::next)
    /// returned last. Fails for repeated label names.
    pub fn labels(&self) -> Result<Labels, LabelError> {
        match &self.inner {
            Inner::Prom(p) => p.series.labels(p.input),
            Inner::Om(p) => p.series.labels(p.input),
            Inner::Failed(_) => Ok(Labels::empty()),
        }
    }

    /// The byte offset in the input where the entry [`next`](Self::next)
    /// returned last begins (the start of its line, for a sample). Callers
    /// that report problems of their own with an entry (a missing
    /// timestamp, say) count lines up to it; the parser does not count
    /// lines on its hot path.
    pub fn entry_offset(&self) -> usize {
        match &self.inner {
            Inner::Prom(p) => p.entry_start,
            Inner::Om(p) => p.entry_start,
            Inner::Failed(_) => 0,
        }
    }

    /// The metric name of the sample [`next`](Self::next) returned last.
    pub fn metric_name(&self) -> Cow<'a, str> {
        let (spans, input) = match &self.inner {
            Inner::Prom(p) => (&p.series, p.input),
            Inner::Om(p) => (&p.series, p.input),
            Inner::Failed(_) => return Cow::Borrowed(""),
        };
        spans.name.map_or(Cow::Borrowed(""), |s| s.text(input))
    }
}

// ---- shared lexing helpers -------------------------------------------------

/// Character classes of name bytes, one table lookup each on the hot path.
const CLASS_LABEL_START: u8 = 1;
const CLASS_LABEL: u8 = 2;
const CLASS_METRIC_START: u8 = 4;
const CLASS_METRIC: u8 = 8;

static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let alpha = c.is_ascii_alphabetic();
        let digit = c.is_ascii_digit();
        let mut v = 0;
        if alpha || c == b'_' {
            v |= CLASS_LABEL_START | CLASS_LABEL | CLASS_METRIC_START | CLASS_METRIC;
        }
        if digit {
            v |= CLASS_LABEL | CLASS_METRIC;
        }
        if c == b':' {
            v |= CLASS_METRIC_START | CLASS_METRIC;
        }
        t[i] = v;
        i += 1;
    }
    t
};

#[inline]
pub(crate) fn is_metric_start(b: u8) -> bool {
    CLASSES[b as usize] & CLASS_METRIC_START != 0
}

#[inline]
pub(crate) fn is_metric_char(b: u8) -> bool {
    CLASSES[b as usize] & CLASS_METRIC != 0
}

#[inline]
pub(crate) fn is_label_start(b: u8) -> bool {
    CLASSES[b as usize] & CLASS_LABEL_START != 0
}

#[inline]
pub(crate) fn is_label_char(b: u8) -> bool {
    CLASSES[b as usize] & CLASS_LABEL != 0
}

/// The end of the run of bytes from `pos` satisfying `f`.
#[inline]
pub(crate) fn scan(b: &[u8], mut pos: usize, f: impl Fn(u8) -> bool) -> usize {
    while pos < b.len() && f(b[pos]) {
        pos += 1;
    }
    pos
}

/// Scans a quoted string starting at the `"` at `pos`. Returns the span of
/// its contents and the position after the closing quote. A backslash escapes
/// the next byte, which may not be a line break; raw line breaks inside are
/// allowed only when `newlines`.
pub(crate) fn scan_quoted(
    input: &str,
    pos: usize,
    newlines: bool,
) -> Result<(Span, usize), ParseError> {
    let b = input.as_bytes();
    let start = pos + 1;
    let mut i = start;
    let mut escaped = false;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok((Span::new(start, i, escaped), i + 1)),
            b'\\' => {
                if i + 1 >= b.len() || b[i + 1] == b'\n' {
                    break;
                }
                escaped = true;
                i += 2;
            }
            b'\n' if !newlines => break,
            _ => i += 1,
        }
    }
    Err(ParseError::at(
        input,
        pos,
        ParseErrorKind::UnterminatedString,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_classes_are_prometheus_names() {
        for c in 0..=255u8 {
            let a = c.is_ascii_alphabetic() || c == b'_';
            let d = c.is_ascii_digit();
            assert_eq!(is_label_start(c), a, "{c}");
            assert_eq!(is_label_char(c), a || d, "{c}");
            assert_eq!(is_metric_start(c), a || c == b':', "{c}");
            assert_eq!(is_metric_char(c), a || d || c == b':', "{c}");
        }
    }

    #[test]
    fn content_types_pick_parsers_as_prometheus() {
        let f = |ct| Format::from_content_type(Some(ct), None);
        assert_eq!(
            f("text/plain; version=0.0.4; charset=utf-8"),
            Ok(Format::PrometheusText)
        );
        assert_eq!(
            f("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Ok(Format::OpenMetrics)
        );
        assert_eq!(f("TEXT/PLAIN"), Ok(Format::PrometheusText));
        assert_eq!(f(""), Err(ContentTypeError::Blank));
        assert!(matches!(
            f("text/html"),
            Err(ContentTypeError::Unsupported(_))
        ));
        assert_eq!(
            Format::from_content_type(None, Some(Format::PrometheusText)),
            Ok(Format::PrometheusText)
        );
        assert_eq!(
            Format::from_content_type(Some("application/json"), Some(Format::OpenMetrics)),
            Ok(Format::OpenMetrics)
        );
    }

    #[test]
    fn unescape_matches_go_replacer() {
        assert_eq!(unescape(r#"a\\b\nc\"d\x"#, true), "a\\b\nc\"d\\x");
        assert_eq!(unescape(r#"\\n"#, true), "\\n");
        assert_eq!(unescape(r#"\"#, true), "\\");
        assert_eq!(unescape(r#"\""#, false), "\\\"");
    }

    #[test]
    fn entry_offsets_point_at_the_entry() {
        let body = "# TYPE a counter\na_total 1 10\n# EOF\n";
        let mut p = Parser::from_str(body, Format::OpenMetrics, ParseOptions::default());
        assert!(matches!(p.next(), Ok(Some(Entry::Type { .. }))));
        assert_eq!(p.entry_offset(), 0);
        assert!(matches!(p.next(), Ok(Some(Entry::Sample(_)))));
        assert_eq!(p.entry_offset(), 17);
        let body = "\n  a 1\n";
        let mut p = Parser::from_str(body, Format::PrometheusText, ParseOptions::default());
        assert!(matches!(p.next(), Ok(Some(Entry::Sample(_)))));
        assert_eq!(p.entry_offset(), 3);
    }

    #[test]
    fn invalid_utf8_reports_its_line() {
        let body = b"a 1\nb 2\n\xff 3\n";
        let mut p = Parser::new(body, Format::PrometheusText, ParseOptions::default());
        let e = p.next().unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.kind, ParseErrorKind::InvalidUtf8);
        assert_eq!(p.next(), Ok(None));
    }
}
