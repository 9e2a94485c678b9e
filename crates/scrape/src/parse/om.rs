//! OpenMetrics 1.0 text, as Prometheus's `openmetricsparse.go` and
//! `openmetricslex.l` read it: single spaces between tokens, no blank lines
//! and no free comments, `# HELP`, `# TYPE`, `# UNIT`, float-second
//! timestamps, exemplars (parsed, checked and dropped) and a mandatory
//! `# EOF` with nothing after it.

use std::borrow::Cow;

use super::{
    float::parse_go_float, is_label_char, is_label_start, is_metric_char, is_metric_start, scan,
    scan_quoted, Entry, MetricType, ParseError, ParseErrorKind, ParseOptions, SampleEntry,
    SeriesSpans, Span,
};

#[derive(Debug)]
pub(crate) struct OpenMetricsParser<'a> {
    pub(crate) input: &'a str,
    pos: usize,
    /// Where the entry returned last begins.
    pub(crate) entry_start: usize,
    pub(crate) series: SeriesSpans,
    /// Scratch spans for exemplar labels.
    exemplar: SeriesSpans,
    /// The type from the last `# TYPE` line (for `_created` skipping).
    mtype: MetricType,
    options: ParseOptions,
    done: bool,
}

impl<'a> OpenMetricsParser<'a> {
    pub(crate) fn new(input: &'a str, options: ParseOptions) -> Self {
        OpenMetricsParser {
            input,
            pos: 0,
            entry_start: 0,
            series: SeriesSpans::default(),
            exemplar: SeriesSpans::default(),
            mtype: MetricType::Unknown,
            options,
            done: false,
        }
    }

    fn err(&self, pos: usize, kind: ParseErrorKind) -> ParseError {
        ParseError::at(self.input, pos, kind)
    }

    /// Consumes `c` at the current position or fails with `kind`; the end
    /// of input where a line break is due is a missing `# EOF`.
    fn expect(&mut self, c: u8, kind: ParseErrorKind) -> Result<(), ParseError> {
        match self.input.as_bytes().get(self.pos) {
            Some(&x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            None => Err(self.err(self.pos, ParseErrorKind::MissingEof)),
            Some(_) => Err(self.err(self.pos, kind)),
        }
    }

    pub(crate) fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let b = self.input.as_bytes();
            let Some(&c) = b.get(self.pos) else {
                return Err(self.err(self.pos, ParseErrorKind::MissingEof));
            };
            self.entry_start = self.pos;
            let entry = match c {
                b'#' => self.comment()?,
                b'{' => self.sample(None)?,
                c if is_metric_start(c) => {
                    let start = self.pos;
                    let end = scan(b, start, is_metric_char);
                    self.pos = end;
                    self.sample(Some(Span::new(start, end, false)))?
                }
                _ => return Err(self.err(self.pos, ParseErrorKind::ExpectedStart)),
            };
            match entry {
                Some(Entry::Sample(s)) if self.skip_created() => {
                    let _ = s;
                    continue;
                }
                Some(e) => return Ok(Some(e)),
                None => continue,
            }
        }
    }

    fn skip_created(&self) -> bool {
        self.options.skip_created_series
            && self.mtype.has_created()
            && self
                .series
                .name
                .is_some_and(|n| n.text(self.input).ends_with("_created"))
    }

    /// `# HELP`, `# TYPE`, `# UNIT` or `# EOF`. `None` after `# EOF`.
    fn comment(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let input = self.input;
        let b = input.as_bytes();
        let start = self.pos;
        let rest = &b[start..];
        if rest.starts_with(b"# EOF") {
            let mut end = start + 5;
            if b.get(end) == Some(&b'\n') {
                end += 1;
            }
            if end != b.len() {
                return Err(self.err(end.min(b.len()), ParseErrorKind::DataAfterEof));
            }
            self.pos = end;
            self.done = true;
            return Ok(None);
        }
        let kind = if rest.starts_with(b"# HELP ") {
            0
        } else if rest.starts_with(b"# TYPE ") {
            1
        } else if rest.starts_with(b"# UNIT ") {
            2
        } else {
            return Err(self.err(start, ParseErrorKind::InvalidComment));
        };
        self.pos = start + 7;
        let name_pos = self.pos;
        let (name, name_end) = match b.get(name_pos) {
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
        if b.get(name_end) != Some(&b' ') {
            return Err(self.err(name_end, ParseErrorKind::ExpectedMetadataText));
        }
        let text_start = name_end + 1;
        let Some(nl) = b[text_start..].iter().position(|&c| c == b'\n') else {
            return Err(self.err(text_start, ParseErrorKind::MissingEof));
        };
        let text = &input[text_start..text_start + nl];
        self.pos = text_start + nl + 1;
        match kind {
            0 => {
                let help = Span::new(text_start, text_start + nl, text.contains('\\'));
                Ok(Some(Entry::Help {
                    metric: name,
                    help: help.text(input),
                }))
            }
            1 => {
                let t = match text {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "gaugehistogram" => MetricType::GaugeHistogram,
                    "summary" => MetricType::Summary,
                    "info" => MetricType::Info,
                    "stateset" => MetricType::StateSet,
                    "unknown" => MetricType::Unknown,
                    _ => return Err(self.err(text_start, ParseErrorKind::InvalidMetricType)),
                };
                self.mtype = t;
                Ok(Some(Entry::Type {
                    metric: name,
                    kind: t,
                }))
            }
            _ => {
                if !text.is_empty() {
                    let ok = name.len() > text.len()
                        && name.ends_with(text)
                        && name.as_bytes()[name.len() - text.len() - 1] == b'_';
                    if !ok {
                        return Err(self.err(text_start, ParseErrorKind::UnitNotSuffix));
                    }
                }
                Ok(Some(Entry::Unit {
                    metric: name,
                    unit: text,
                }))
            }
        }
    }

    fn sample(&mut self, name: Option<Span>) -> Result<Option<Entry<'a>>, ParseError> {
        let input = self.input;
        let b = input.as_bytes();
        let start = name.map_or(self.pos, |n| n.start);
        self.series.clear();
        self.series.name = name;
        if b.get(self.pos) == Some(&b'{') {
            let mut spans = std::mem::take(&mut self.series);
            let r = self.labels(&mut spans, false);
            self.series = spans;
            r?;
        }
        let series_end = self.pos;
        if self.series.name.is_none() {
            return Err(self.err(start, ParseErrorKind::MissingMetricName));
        }
        let value = self.value(ParseErrorKind::ExpectedValue)?;
        let mut timestamp = None;
        match b.get(self.pos) {
            Some(b'\n') => self.pos += 1,
            Some(b' ') if b.get(self.pos + 1) == Some(&b'#') => self.exemplar()?,
            Some(b' ') => {
                let ts_start = self.pos + 1;
                if b.get(ts_start) == Some(&b'c') {
                    // OpenMetrics 2.0's ` ct@...` start time is not 1.0.
                    return Err(self.err(ts_start, ParseErrorKind::ExpectedTimestampOrEnd));
                }
                let ts = self.float_token(ParseErrorKind::InvalidTimestamp)?;
                if !ts.is_finite() {
                    return Err(self.err(ts_start, ParseErrorKind::InvalidTimestamp));
                }
                timestamp = Some((ts * 1000.0) as i64);
                match b.get(self.pos) {
                    Some(b'\n') => self.pos += 1,
                    Some(b' ') if b.get(self.pos + 1) == Some(&b'#') => self.exemplar()?,
                    None => return Err(self.err(self.pos, ParseErrorKind::MissingEof)),
                    Some(_) => {
                        return Err(self.err(self.pos, ParseErrorKind::ExpectedTimestampOrEnd))
                    }
                }
            }
            None => return Err(self.err(self.pos, ParseErrorKind::MissingEof)),
            Some(_) => return Err(self.err(self.pos, ParseErrorKind::ExpectedTimestampOrEnd)),
        }
        Ok(Some(Entry::Sample(SampleEntry {
            series: &input[start..series_end],
            value,
            timestamp,
        })))
    }

    /// ` value`: a space and a float token.
    fn value(&mut self, kind: ParseErrorKind) -> Result<f64, ParseError> {
        let b = self.input.as_bytes();
        match b.get(self.pos) {
            Some(b' ') => {}
            None => return Err(self.err(self.pos, ParseErrorKind::MissingEof)),
            Some(_) => return Err(self.err(self.pos, kind)),
        }
        self.float_token(kind)
    }

    /// The float token after the space at `self.pos`.
    fn float_token(&mut self, kind: ParseErrorKind) -> Result<f64, ParseError> {
        let b = self.input.as_bytes();
        let start = self.pos + 1;
        let end = scan(b, start, |c| c != b' ' && c != b'\n');
        if end == start {
            return Err(self.err(start, kind));
        }
        let kind = if kind == ParseErrorKind::ExpectedValue {
            ParseErrorKind::InvalidValue
        } else {
            kind
        };
        let v = parse_go_float(&self.input[start..end]).ok_or_else(|| self.err(start, kind))?;
        self.pos = end;
        Ok(v)
    }

    /// ` # {labels} value [timestamp]\n`, checked and dropped.
    fn exemplar(&mut self) -> Result<(), ParseError> {
        let b = self.input.as_bytes();
        if !b[self.pos..].starts_with(b" # {") {
            return Err(self.err(self.pos, ParseErrorKind::InvalidExemplar));
        }
        self.pos += 3;
        let mut spans = std::mem::take(&mut self.exemplar);
        spans.clear();
        let r = self.labels(&mut spans, true);
        self.exemplar = spans;
        r?;
        self.value(ParseErrorKind::InvalidExemplar)?;
        match b.get(self.pos) {
            Some(b'\n') => {
                self.pos += 1;
                Ok(())
            }
            Some(b' ') => {
                let ts_pos = self.pos + 1;
                let ts = self.float_token(ParseErrorKind::InvalidExemplar)?;
                if !ts.is_finite() {
                    return Err(self.err(ts_pos, ParseErrorKind::InvalidExemplar));
                }
                self.expect(b'\n', ParseErrorKind::InvalidExemplar)
            }
            None => Err(self.err(self.pos, ParseErrorKind::MissingEof)),
            Some(_) => Err(self.err(self.pos, ParseErrorKind::InvalidExemplar)),
        }
    }

    /// A label block at `{` into `spans`; for exemplars a lone quoted name
    /// is an error. Leaves `self.pos` after `}`.
    fn labels(&mut self, spans: &mut SeriesSpans, exemplar: bool) -> Result<(), ParseError> {
        let input = self.input;
        let b = input.as_bytes();
        self.pos += 1;
        loop {
            let tok = self.pos;
            let (name, quoted) = match b.get(tok) {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'"') => {
                    let (span, after) = scan_quoted(input, tok, false)?;
                    self.pos = after;
                    (span, true)
                }
                Some(&c) if is_label_start(c) => {
                    let e = scan(b, tok, is_label_char);
                    self.pos = e;
                    (Span::new(tok, e, false), false)
                }
                None => return Err(self.err(tok, ParseErrorKind::MissingEof)),
                _ => return Err(self.err(tok, ParseErrorKind::ExpectedLabelName)),
            };
            let next = b.get(self.pos).copied();
            if matches!(next, Some(b',') | Some(b'}')) {
                if !quoted || exemplar {
                    return Err(self.err(self.pos, ParseErrorKind::ExpectedEqual));
                }
                if spans.name.is_some() {
                    return Err(self.err(tok, ParseErrorKind::MetricNameTwice));
                }
                spans.name = Some(name);
                if next == Some(b',') {
                    self.pos += 1;
                }
                continue;
            }
            self.expect(b'=', ParseErrorKind::ExpectedEqual)?;
            if b.get(self.pos) != Some(&b'"') {
                return Err(self.err(self.pos, ParseErrorKind::ExpectedLabelValue));
            }
            let (value, after) = scan_quoted(input, self.pos, false)?;
            self.pos = after;
            spans.labels.push((name, value));
            match b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                None => return Err(self.err(self.pos, ParseErrorKind::MissingEof)),
                Some(_) => return Err(self.err(self.pos, ParseErrorKind::ExpectedCommaOrBrace)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::{
        Entry, Format, MetricType, ParseErrorKind, ParseOptions, Parser, NORMAL_NAN_BITS,
    };
    use vigil_model::{labels, Labels};

    type Got = (Vec<(Labels, f64, Option<i64>)>, Vec<String>);

    fn parse(input: &str, opts: ParseOptions) -> Result<Got, (usize, ParseErrorKind)> {
        let mut p = Parser::from_str(input, Format::OpenMetrics, opts);
        let mut samples = Vec::new();
        let mut meta = Vec::new();
        loop {
            match p.next() {
                Ok(Some(Entry::Sample(s))) => {
                    samples.push((p.labels().unwrap(), s.value, s.timestamp))
                }
                Ok(Some(Entry::Help { metric, help })) => {
                    meta.push(format!("help {metric} {help}"))
                }
                Ok(Some(Entry::Type { metric, kind })) => {
                    meta.push(format!("type {metric} {kind}"))
                }
                Ok(Some(Entry::Unit { metric, unit })) => {
                    meta.push(format!("unit {metric} {unit}"))
                }
                Ok(Some(e)) => panic!("{e:?}"),
                Ok(None) => return Ok((samples, meta)),
                Err(e) => return Err((e.line, e.kind)),
            }
        }
    }

    const FULL: &str = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
# UNIT go_gc_duration_seconds seconds
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25",} 7.424100000000001e-05
go_gc_duration_seconds_sum 0.0
go_gc_duration_seconds_created 1520872607.123
# HELP nohelp1 
# HELP help2 escape \ \n \\ \" \x chars
# TYPE foo counter
foo_total 17.0 1520879607.789 # {id="counter-test"} 5
foo_created 1520872607.123
# TYPE bar histogram
bar_bucket{le="+Inf"} 17 # {a="b"} 1 1520879607.789
bar_count 17
# TYPE nan gauge
nan NaN
{"quoted.name",a="1"} 1
# EOF
"#;

    #[test]
    fn parses_a_full_exposition() {
        let (samples, meta) = parse(FULL, ParseOptions::default()).unwrap();
        assert_eq!(
            meta[0],
            "help go_gc_duration_seconds A summary of the GC invocation durations."
        );
        assert_eq!(meta[2], "unit go_gc_duration_seconds seconds");
        assert_eq!(meta[3], "help nohelp1 ");
        assert_eq!(meta[4], "help help2 escape \\ \n \\ \" \\x chars");
        assert_eq!(samples.len(), 10);
        assert_eq!(
            samples[0].0,
            labels!("__name__" => "go_gc_duration_seconds", "quantile" => "0")
        );
        assert_eq!(
            samples[3].0,
            labels!("__name__" => "go_gc_duration_seconds_created")
        );
        assert_eq!(
            samples[4],
            (
                labels!("__name__" => "foo_total"),
                17.0,
                Some(1520879607789)
            )
        );
        assert_eq!(samples[5].0, labels!("__name__" => "foo_created"));
        assert_eq!(
            samples[6].0,
            labels!("__name__" => "bar_bucket", "le" => "+Inf")
        );
        assert_eq!(samples[8].1.to_bits(), NORMAL_NAN_BITS);
        assert_eq!(
            samples[9].0,
            labels!("__name__" => "quoted.name", "a" => "1")
        );
    }

    #[test]
    fn created_series_can_be_skipped() {
        let opts = ParseOptions {
            skip_created_series: true,
        };
        let (samples, _) = parse(FULL, opts).unwrap();
        let names: Vec<_> = samples
            .iter()
            .map(|s| s.0.metric_name().unwrap().to_string())
            .collect();
        assert!(!names.contains(&"foo_created".to_string()));
        assert!(!names.contains(&"go_gc_duration_seconds_created".to_string()));
        assert_eq!(samples.len(), 8);
        // A gauge's _created is an ordinary series.
        let (s, _) = parse("# TYPE g gauge\ng_created 1\n# EOF\n", opts).unwrap();
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn eof_rules() {
        assert!(parse("# EOF", ParseOptions::default()).is_ok());
        assert!(parse("a 1\n# EOF\n", ParseOptions::default()).is_ok());
        assert_eq!(
            parse("", ParseOptions::default()),
            Err((1, ParseErrorKind::MissingEof))
        );
        assert_eq!(
            parse("a 1\n", ParseOptions::default()),
            Err((2, ParseErrorKind::MissingEof))
        );
        assert_eq!(
            parse("a 1", ParseOptions::default()),
            Err((1, ParseErrorKind::MissingEof))
        );
        assert_eq!(
            parse("# EOF\na 1\n", ParseOptions::default()),
            Err((2, ParseErrorKind::DataAfterEof))
        );
        assert_eq!(
            parse("# EOF\n\n", ParseOptions::default()),
            Err((2, ParseErrorKind::DataAfterEof))
        );
    }

    #[test]
    fn malformed_lines_report_line_and_reason() {
        use ParseErrorKind::*;
        for (input, line, kind) in [
            ("a 1\n\n# EOF\n", 2, ExpectedStart),
            ("a  1\n# EOF\n", 1, ExpectedValue),
            ("a 1 \n# EOF\n", 1, InvalidTimestamp),
            ("a\t1\n# EOF\n", 1, ExpectedValue),
            ("a {b=\"c\"} 1\n# EOF\n", 1, InvalidValue),
            ("a{b=\"c\", d=\"e\"} 1\n# EOF\n", 1, ExpectedLabelName),
            ("a{b=\"c\" d=\"e\"} 1\n# EOF\n", 1, ExpectedCommaOrBrace),
            ("a{b=\"c\nd\"} 1\n# EOF\n", 1, UnterminatedString),
            ("a{b} 1\n# EOF\n", 1, ExpectedEqual),
            ("# comment\n# EOF\n", 1, InvalidComment),
            ("#HELP a b\n# EOF\n", 1, InvalidComment),
            ("# HELP a\n# EOF\n", 1, ExpectedMetadataText),
            ("# TYPE a untyped\n# EOF\n", 1, InvalidMetricType),
            ("# UNIT a_seconds bytes\n# EOF\n", 1, UnitNotSuffix),
            ("# UNIT seconds seconds\n# EOF\n", 1, UnitNotSuffix),
            ("a 1 NaN\n# EOF\n", 1, InvalidTimestamp),
            ("a 1 +Inf\n# EOF\n", 1, InvalidTimestamp),
            ("a 1 ct@5\n# EOF\n", 1, ExpectedTimestampOrEnd),
            ("a 1 # {\"x\"} 1\n# EOF\n", 1, ExpectedEqual),
            ("a 1 # {x=\"y\"}\n# EOF\n", 1, InvalidExemplar),
            ("a 1 # {x=\"y\"} 1 NaN\n# EOF\n", 1, InvalidExemplar),
            ("a 1 # x\n# EOF\n", 1, InvalidExemplar),
            ("a 1 1 2\n# EOF\n", 1, ExpectedTimestampOrEnd),
            ("x 1\ny 2\nz{", 3, MissingEof),
        ] {
            assert_eq!(
                parse(input, ParseOptions::default()).map(|_| ()),
                Err((line, kind)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn timestamps_are_float_seconds_truncated_to_ms() {
        let (s, _) = parse(
            "a 1 1.0019\nb 1 -1.5\nc 1 1e3\n# EOF\n",
            ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(s[0].2, Some(1001));
        assert_eq!(s[1].2, Some(-1500));
        assert_eq!(s[2].2, Some(1_000_000));
    }

    #[test]
    fn type_names() {
        let (_, meta) = parse(
            "# TYPE a gaugehistogram\n# TYPE b info\n# TYPE c stateset\n# TYPE d unknown\n# EOF\n",
            ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(
            meta,
            vec![
                "type a gaugehistogram",
                "type b info",
                "type c stateset",
                "type d unknown"
            ]
        );
        let _ = MetricType::Counter;
    }
}
