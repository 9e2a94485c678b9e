//! The Prometheus text format, 0.0.4 and 1.0.0 (quoted UTF-8 names), as
//! Prometheus's `promparse.go` and `promlex.l` read it: spaces and tabs
//! between tokens, comments, `# HELP` and `# TYPE`, blank lines, an optional
//! integer millisecond timestamp.

use std::borrow::Cow;

use super::{
    float::parse_go_float, is_label_char, is_label_start, is_metric_char, is_metric_start, scan,
    scan_quoted, unescape, Entry, MetricType, ParseError, ParseErrorKind, SampleEntry, SeriesSpans,
    Span,
};

#[derive(Debug)]
pub(crate) struct PromParser<'a> {
    pub(crate) input: &'a str,
    pos: usize,
    /// Where the entry returned last begins.
    pub(crate) entry_start: usize,
    pub(crate) series: SeriesSpans,
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl<'a> PromParser<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        PromParser {
            input,
            pos: 0,
            entry_start: 0,
            series: SeriesSpans::default(),
        }
    }

    fn err(&self, pos: usize, kind: ParseErrorKind) -> ParseError {
        ParseError::at(self.input, pos, kind)
    }

    fn skip_blanks(&mut self) {
        self.pos = scan(self.input.as_bytes(), self.pos, is_blank);
    }

    /// The end of the current line (the index of its `\n`, or the end).
    fn line_end(&self, from: usize) -> usize {
        let b = self.input.as_bytes();
        b[from.min(b.len())..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |i| from + i)
    }

    pub(crate) fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let b = self.input.as_bytes();
        loop {
            self.skip_blanks();
            let Some(&c) = b.get(self.pos) else {
                return Ok(None);
            };
            self.entry_start = self.pos;
            match c {
                b'\n' => self.pos += 1,
                b'#' => {
                    if let Some(e) = self.comment()? {
                        return Ok(Some(e));
                    }
                }
                b'{' => return self.sample(None).map(Some),
                c if is_metric_start(c) => {
                    let start = self.pos;
                    let end = scan(b, start, is_metric_char);
                    self.pos = end;
                    return self.sample(Some(Span::new(start, end, false))).map(Some);
                }
                _ => return Err(self.err(self.pos, ParseErrorKind::ExpectedStart)),
            }
        }
    }

    /// A line starting with `#`: HELP, TYPE or a plain comment. Returns
    /// `None` never: comments are entries too (kept for symmetry).
    fn comment(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let b = self.input.as_bytes();
        let hash = self.pos;
        let end = self.line_end(hash);
        let mut p = hash + 1;
        if p < end && is_blank(b[p]) {
            p = scan(b, p, is_blank);
            let rest = &b[p..end];
            let kw = if rest.starts_with(b"HELP") {
                Some(true)
            } else if rest.starts_with(b"TYPE") {
                Some(false)
            } else {
                None
            };
            if let Some(is_help) = kw {
                let after = p + 4;
                if after < end && is_blank(b[after]) {
                    self.pos = scan(b, after, is_blank);
                    return self.metadata(is_help, end).map(Some);
                }
            }
        }
        self.pos = (end + 1).min(b.len());
        Ok(Some(Entry::Comment))
    }

    /// The metric name and text of a HELP or TYPE line; `self.pos` is at
    /// the name, `end` is the line end.
    fn metadata(&mut self, is_help: bool, end: usize) -> Result<Entry<'a>, ParseError> {
        let input = self.input;
        let b = input.as_bytes();
        let name_pos = self.pos;
        let (name, after) = match b.get(name_pos) {
            Some(b'"') => {
                let (span, after) = scan_quoted(input, name_pos, false)?;
                (span.text(input), after)
            }
            Some(&c) if is_metric_start(c) => {
                let e = scan(b, name_pos, is_metric_char);
                (Cow::Borrowed(&input[name_pos..e]), e)
            }
            _ => return Err(self.err(name_pos, ParseErrorKind::ExpectedMetricName)),
        };
        // The text is the rest of the line after one separating blank
        // (Prometheus drops exactly one character there).
        let rest = &input[after..end];
        let text = if rest.bytes().all(is_blank) {
            ""
        } else if is_blank(rest.as_bytes()[0]) {
            &rest[1..]
        } else {
            return Err(self.err(after, ParseErrorKind::ExpectedMetadataText));
        };
        self.pos = (end + 1).min(b.len());
        if is_help {
            let help = if text.contains('\\') {
                Cow::Owned(unescape(text, false))
            } else {
                Cow::Borrowed(text)
            };
            Ok(Entry::Help { metric: name, help })
        } else {
            let kind = match text {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "summary" => MetricType::Summary,
                "untyped" => MetricType::Unknown,
                _ => {
                    return Err(self.err(after, ParseErrorKind::InvalidMetricType));
                }
            };
            Ok(Entry::Type { metric: name, kind })
        }
    }

    /// A sample line; `self.pos` is after the metric name (or at `{`).
    fn sample(&mut self, name: Option<Span>) -> Result<Entry<'a>, ParseError> {
        let input = self.input;
        let b = input.as_bytes();
        let start = name.map_or(self.pos, |n| n.start);
        self.series.clear();
        self.series.name = name;
        let mut series_end = self.pos;
        if name.is_some() {
            self.skip_blanks();
        }
        if b.get(self.pos) == Some(&b'{') {
            self.labels()?;
            series_end = self.pos;
        }
        if self.series.name.is_none() {
            return Err(self.err(start, ParseErrorKind::MissingMetricName));
        }
        self.skip_blanks();
        let vstart = self.pos;
        let vend = scan(b, vstart, |c| !matches!(c, b'{' | b' ' | b'\t' | b'\n'));
        if vend == vstart {
            return Err(self.err(vstart, ParseErrorKind::ExpectedValue));
        }
        let value = parse_go_float(&input[vstart..vend])
            .ok_or_else(|| self.err(vstart, ParseErrorKind::InvalidValue))?;
        self.pos = vend;
        self.skip_blanks();
        let mut timestamp = None;
        match b.get(self.pos) {
            None => {}
            Some(b'\n') => self.pos += 1,
            Some(c) if c.is_ascii_digit() => {
                let tstart = self.pos;
                let tend = scan(b, tstart, |c| c.is_ascii_digit());
                let t: i64 = input[tstart..tend]
                    .parse()
                    .map_err(|_| self.err(tstart, ParseErrorKind::InvalidTimestamp))?;
                timestamp = Some(t);
                self.pos = tend;
                self.skip_blanks();
                match b.get(self.pos) {
                    None => {}
                    Some(b'\n') => self.pos += 1,
                    Some(_) => {
                        return Err(self.err(self.pos, ParseErrorKind::ExpectedTimestampOrEnd))
                    }
                }
            }
            Some(_) => return Err(self.err(self.pos, ParseErrorKind::ExpectedTimestampOrEnd)),
        }
        Ok(Entry::Sample(SampleEntry {
            series: &input[start..series_end],
            value,
            timestamp,
        }))
    }

    /// The label block; `self.pos` is at `{`. Leaves `self.pos` after `}`.
    fn labels(&mut self) -> Result<(), ParseError> {
        let input = self.input;
        let b = input.as_bytes();
        self.pos += 1;
        loop {
            self.skip_blanks();
            let tok = self.pos;
            let (name, quoted) = match b.get(tok) {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'"') => {
                    let (span, after) = scan_quoted(input, tok, true)?;
                    self.pos = after;
                    (span, true)
                }
                Some(&c) if is_label_start(c) => {
                    let e = scan(b, tok, is_label_char);
                    self.pos = e;
                    (Span::new(tok, e, false), false)
                }
                _ => return Err(self.err(tok, ParseErrorKind::ExpectedLabelName)),
            };
            self.skip_blanks();
            let next = b.get(self.pos).copied();
            if quoted && matches!(next, Some(b',') | Some(b'}')) {
                // A lone quoted string is the metric name.
                if self.series.name.is_some() {
                    return Err(self.err(tok, ParseErrorKind::MetricNameTwice));
                }
                self.series.name = Some(name);
                if next == Some(b',') {
                    self.pos += 1;
                }
                continue;
            }
            if next != Some(b'=') {
                return Err(self.err(self.pos, ParseErrorKind::ExpectedEqual));
            }
            self.pos += 1;
            self.skip_blanks();
            if b.get(self.pos) != Some(&b'"') {
                return Err(self.err(self.pos, ParseErrorKind::ExpectedLabelValue));
            }
            let (value, after) = scan_quoted(input, self.pos, true)?;
            self.pos = after;
            self.series.labels.push((name, value));
            self.skip_blanks();
            if b.get(self.pos) == Some(&b',') {
                self.pos += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::{Entry, Format, ParseErrorKind, ParseOptions, Parser, NORMAL_NAN_BITS};
    use vigil_model::labels;

    fn all(input: &str) -> Vec<(Entry<'_>, Option<vigil_model::Labels>)> {
        let mut p = Parser::from_str(input, Format::PrometheusText, ParseOptions::default());
        let mut out = Vec::new();
        while let Some(e) = p.next().unwrap() {
            let l = matches!(e, Entry::Sample(_)).then(|| p.labels().unwrap());
            out.push((e, l));
        }
        out
    }

    fn err(input: &str) -> (usize, ParseErrorKind) {
        let mut p = Parser::from_str(input, Format::PrometheusText, ParseOptions::default());
        loop {
            match p.next() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{input:?} parsed"),
                Err(e) => return (e.line, e.kind),
            }
        }
    }

    #[test]
    fn parses_a_full_exposition() {
        let input = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# 	TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25",} 7.424100000000001e-05
go_gc_duration_seconds_count 99
# Hello there.
 # Another comment
# HELP nohelp1
# HELP help2 escape \ \n \\ \" \x chars
nohelp2 1
go_gc_duration_seconds { quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile = "2.0" a = "b" } 8.3835e-05
testmetric{_label="\"bar\""} 1
testmetric{label="\"bar\""} 1
testmetric{le="10"} 1
nan NaN
inf +Inf	  1234
neg -Inf
with_ts{a="b"} 1 -
"#;
        // The last line is malformed on purpose; check everything before it.
        let mut p = Parser::from_str(input, Format::PrometheusText, ParseOptions::default());
        let mut n = 0;
        let mut samples = Vec::new();
        let mut helps = Vec::new();
        let e = loop {
            match p.next() {
                Ok(Some(Entry::Sample(s))) => {
                    samples.push((p.labels().unwrap(), s.value, s.timestamp, s.series))
                }
                Ok(Some(Entry::Help { metric, help })) => {
                    helps.push((metric.into_owned(), help.into_owned()))
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("must fail on the last line"),
                Err(e) => break e,
            }
            n += 1;
        };
        assert_eq!(e.line, 19);
        assert_eq!(e.kind, ParseErrorKind::ExpectedTimestampOrEnd);
        assert!(n > 10);
        assert_eq!(
            helps,
            vec![
                (
                    "go_gc_duration_seconds".to_string(),
                    "A summary of the GC invocation durations.".to_string()
                ),
                ("nohelp1".to_string(), String::new()),
                (
                    "help2".to_string(),
                    "escape \\ \n \\ \\\" \\x chars".to_string()
                ),
            ]
        );
        assert_eq!(
            samples[0].0,
            labels!("__name__" => "go_gc_duration_seconds", "quantile" => "0")
        );
        assert_eq!(samples[0].3, r#"go_gc_duration_seconds{quantile="0"}"#);
        assert_eq!(samples[1].1, 7.424100000000001e-05);
        assert_eq!(
            samples[2].0,
            labels!("__name__" => "go_gc_duration_seconds_count")
        );
        assert_eq!(samples[3].0, labels!("__name__" => "nohelp2"));
        assert_eq!(
            samples[4].0,
            labels!("__name__" => "go_gc_duration_seconds", "quantile" => "1.0", "a" => "b")
        );
        assert_eq!(
            samples[5].0,
            labels!("__name__" => "go_gc_duration_seconds", "quantile" => "2.0", "a" => "b")
        );
        assert_eq!(
            samples[6].0,
            labels!("__name__" => "testmetric", "_label" => "\"bar\"")
        );
        assert_eq!(samples[9].1.to_bits(), NORMAL_NAN_BITS);
        assert_eq!(samples[10].1, f64::INFINITY);
        assert_eq!(samples[10].2, Some(1234));
        assert_eq!(samples[11].1, f64::NEG_INFINITY);
    }

    #[test]
    fn types_and_quoted_utf8_names() {
        let input = "# TYPE \"my.metric\" counter\n{\"my.metric\",\"a.b\"=\"x\"} 1 1000\n# TYPE u untyped\nu 2";
        let got = all(input);
        assert_eq!(
            got[0].0,
            Entry::Type {
                metric: "my.metric".into(),
                kind: crate::parse::MetricType::Counter
            }
        );
        assert_eq!(
            got[1].1,
            Some(labels!("__name__" => "my.metric", "a.b" => "x"))
        );
        match &got[1].0 {
            Entry::Sample(s) => {
                assert_eq!(s.timestamp, Some(1000));
                assert_eq!(s.series, "{\"my.metric\",\"a.b\"=\"x\"}");
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(got[3].1, Some(labels!("__name__" => "u")));
    }

    #[test]
    fn label_values_unescape_and_may_hold_newlines() {
        let got = all("m{a=\"x\\ny\",b=\"q\\\\\\\"\",c=\"raw\nline\"} 1\n");
        assert_eq!(
            got[0].1,
            Some(labels!("__name__" => "m", "a" => "x\ny", "b" => "q\\\"", "c" => "raw\nline"))
        );
    }

    #[test]
    fn malformed_lines_report_line_and_reason() {
        for (input, line, kind) in [
            ("a 1\n$ 2\n", 2, ParseErrorKind::ExpectedStart),
            ("a\n", 1, ParseErrorKind::ExpectedValue),
            ("a{b=\"c\"}\n", 1, ParseErrorKind::ExpectedValue),
            ("a x\n", 1, ParseErrorKind::InvalidValue),
            ("a 0x10\n", 1, ParseErrorKind::InvalidValue),
            ("a 1_0\n", 1, ParseErrorKind::InvalidValue),
            ("a 1 2 3\n", 1, ParseErrorKind::ExpectedTimestampOrEnd),
            ("a 1 1.5\n", 1, ParseErrorKind::ExpectedTimestampOrEnd),
            (
                "a 1 99999999999999999999\n",
                1,
                ParseErrorKind::InvalidTimestamp,
            ),
            ("a{b} 1\n", 1, ParseErrorKind::ExpectedEqual),
            ("a{b=c} 1\n", 1, ParseErrorKind::ExpectedLabelValue),
            ("a{b=\"c} 1\n", 1, ParseErrorKind::UnterminatedString),
            ("a{1=\"c\"} 1\n", 1, ParseErrorKind::ExpectedLabelName),
            ("{b=\"c\"} 1\n", 1, ParseErrorKind::MissingMetricName),
            ("{\"a\",\"b\"} 1\n", 1, ParseErrorKind::MetricNameTwice),
            ("a{\"b\"} 1\n", 1, ParseErrorKind::MetricNameTwice),
            ("# TYPE a blah\n", 1, ParseErrorKind::InvalidMetricType),
            ("# TYPE a counter \n", 1, ParseErrorKind::InvalidMetricType),
            ("# TYPE a  counter\n", 1, ParseErrorKind::InvalidMetricType),
            ("# TYPE 1a counter\n", 1, ParseErrorKind::ExpectedMetricName),
            ("# HELP a-b x\n", 1, ParseErrorKind::ExpectedMetadataText),
            (
                "x 1\n\n\ny{a=\"b\"} 1 2 3",
                4,
                ParseErrorKind::ExpectedTimestampOrEnd,
            ),
        ] {
            assert_eq!(err(input), (line, kind), "{input:?}");
        }
    }

    #[test]
    fn duplicate_labels_fail_when_building() {
        let mut p = Parser::from_str(
            "a{b=\"1\",b=\"2\"} 1\n",
            Format::PrometheusText,
            ParseOptions::default(),
        );
        assert!(matches!(p.next(), Ok(Some(Entry::Sample(_)))));
        assert!(p.labels().is_err());
    }

    #[test]
    fn empty_and_comment_only_inputs() {
        assert!(all("").is_empty());
        assert!(all("\n\n  \n").is_empty());
        assert_eq!(all("#\n#x\n# HELP\n").len(), 3);
        // No trailing newline on the last line is fine.
        assert_eq!(all("a 1").len(), 1);
    }
}
