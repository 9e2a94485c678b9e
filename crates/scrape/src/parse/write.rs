//! A small exposition writer: the inverse of the parsers, used by the
//! round-trip property tests, the fuzz target and test exporters.

use std::fmt::Write as _;

use vigil_model::{Labels, METRIC_NAME};

use super::{is_label_char, is_label_start, is_metric_char, is_metric_start, Format, MetricType};

/// Escapes a label value (or a quoted name): `\` `"` and line breaks.
pub fn escape_label_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes a help text for `format` (the text format leaves `"` alone).
pub fn escape_help(s: &str, format: Format, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Formats a value so that both parsers read back the same bits (NaN
/// aside, which they normalise).
pub fn format_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Debug prints the shortest text that reads back exactly, with an
        // exponent for very large and small magnitudes.
        let _ = write!(out, "{v:?}");
    }
}

fn is_plain_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_metric_start(b[0]) && b.iter().all(|&c| is_metric_char(c))
}

fn is_plain_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_label_start(b[0]) && b.iter().all(|&c| is_label_char(c))
}

fn quoted(s: &str, out: &mut String) {
    out.push('"');
    escape_label_value(s, out);
    out.push('"');
}

/// Writes one sample line. Names that are not classic identifiers are
/// quoted (`{"my.metric","a.b"="x"}`). `timestamp` is milliseconds; for
/// OpenMetrics it is written as seconds.
pub fn write_sample(
    out: &mut String,
    format: Format,
    labels: &Labels,
    value: f64,
    timestamp: Option<i64>,
) {
    let name = labels.get(METRIC_NAME).unwrap_or("");
    let plain = is_plain_metric_name(name);
    let mut first = true;
    if plain {
        out.push_str(name);
    } else {
        out.push('{');
        quoted(name, out);
        first = false;
    }
    for l in labels.iter().filter(|l| l.name != METRIC_NAME) {
        if first {
            out.push('{');
            first = false;
        } else {
            out.push(',');
        }
        if is_plain_label_name(l.name) {
            out.push_str(l.name);
        } else {
            quoted(l.name, out);
        }
        out.push('=');
        quoted(l.value, out);
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    format_value(value, out);
    if let Some(t) = timestamp {
        match format {
            Format::PrometheusText => {
                let _ = write!(out, " {t}");
            }
            Format::OpenMetrics => {
                let sign = if t < 0 { "-" } else { "" };
                let a = t.unsigned_abs();
                let _ = write!(out, " {sign}{}.{:03}", a / 1000, a % 1000);
            }
        }
    }
    out.push('\n');
}

/// Writes a `# HELP` line.
pub fn write_help(out: &mut String, format: Format, metric: &str, help: &str) {
    out.push_str("# HELP ");
    write_meta_name(out, metric);
    out.push(' ');
    escape_help(help, format, out);
    out.push('\n');
}

/// Writes a `# TYPE` line (`untyped` for [`MetricType::Unknown`] in the
/// text format).
pub fn write_type(out: &mut String, format: Format, metric: &str, kind: MetricType) {
    out.push_str("# TYPE ");
    write_meta_name(out, metric);
    out.push(' ');
    if format == Format::PrometheusText && kind == MetricType::Unknown {
        out.push_str("untyped");
    } else {
        out.push_str(kind.as_str());
    }
    out.push('\n');
}

fn write_meta_name(out: &mut String, metric: &str) {
    if is_plain_metric_name(metric) {
        out.push_str(metric);
    } else {
        quoted(metric, out);
    }
}

/// Ends an OpenMetrics exposition.
pub fn write_eof(out: &mut String) {
    out.push_str("# EOF\n");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use vigil_model::Labels;

    use super::*;
    use crate::parse::{Entry, ParseOptions, Parser, NORMAL_NAN_BITS};

    /// A sample: label pairs (the name aside), value, timestamp.
    type TestSample = (Vec<(String, String)>, f64, Option<i64>);

    /// One family: a name, help, type and samples.
    #[derive(Debug, Clone)]
    struct Family {
        name: String,
        help: String,
        samples: Vec<TestSample>,
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
            any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        ]
    }

    fn label_name() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z_][a-zA-Z0-9_]{0,8}", any::<String>()]
            .prop_filter("valid", |s| !s.is_empty() && s != METRIC_NAME)
    }

    fn family(om: bool) -> impl Strategy<Value = Family> {
        let ts = if om {
            // OpenMetrics writes seconds; only whole seconds survive the
            // float round trip exactly (as in Prometheus).
            prop::option::of((-1_000_000_000i64..4_000_000_000).prop_map(|s| s * 1000)).boxed()
        } else {
            // The text format's timestamps are digits only: no sign.
            prop::option::of(0..=i64::MAX).boxed()
        };
        (
            name(),
            any::<String>(),
            prop::collection::vec(
                (
                    prop::collection::vec((label_name(), any::<String>()), 0..4),
                    any::<f64>(),
                    ts,
                ),
                1..4,
            ),
        )
            .prop_map(|(name, help, samples)| Family {
                name,
                help,
                samples,
            })
    }

    /// Writes `families` in `format`, parses them back and compares
    /// everything: labels, value bits (NaN as Prometheus's normal NaN),
    /// timestamps and help texts.
    fn check_round_trip(format: Format, families: &[Family]) {
        let mut out = String::new();
        let mut expected = Vec::new();
        for f in families {
            write_help(&mut out, format, &f.name, &f.help);
            write_type(&mut out, format, &f.name, MetricType::Gauge);
            for (labels, v, t) in &f.samples {
                let mut pairs = labels.clone();
                pairs.push((METRIC_NAME.to_string(), f.name.clone()));
                let l = Labels::from_pairs(pairs);
                write_sample(&mut out, format, &l, *v, *t);
                expected.push((l, *v, *t));
            }
        }
        if format == Format::OpenMetrics {
            write_eof(&mut out);
        }
        let mut p = Parser::from_str(&out, format, ParseOptions::default());
        let mut got = Vec::new();
        let mut helps = Vec::new();
        loop {
            match p.next() {
                Ok(Some(Entry::Sample(s))) => got.push((p.labels().unwrap(), s.value, s.timestamp)),
                Ok(Some(Entry::Help { metric, help })) => {
                    helps.push((metric.into_owned(), help.into_owned()))
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("{e} in {out:?}"),
            }
        }
        assert_eq!(got.len(), expected.len(), "{out:?}");
        for ((gl, gv, gt), (el, ev, et)) in got.iter().zip(&expected) {
            assert_eq!(gl, el, "{out:?}");
            assert_eq!(gt, et, "{out:?}");
            if ev.is_nan() {
                assert_eq!(gv.to_bits(), NORMAL_NAN_BITS);
            } else {
                assert_eq!(gv.to_bits(), ev.to_bits(), "{out:?}");
            }
        }
        // In the text format a help of blanks only reads back as empty (the
        // lexer takes trailing blanks for separators, as Prometheus's does).
        let want: Vec<_> = families
            .iter()
            .map(|f| {
                let blank = f.help.bytes().all(|b| b == b' ' || b == b'\t');
                let help = if format == Format::PrometheusText && blank {
                    String::new()
                } else {
                    f.help.clone()
                };
                (f.name.clone(), help)
            })
            .collect();
        assert_eq!(helps, want, "{out:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn text_format_round_trips(fams in prop::collection::vec(family(false), 1..4)) {
            check_round_trip(Format::PrometheusText, &fams);
        }

        #[test]
        fn openmetrics_round_trips(fams in prop::collection::vec(family(true), 1..4)) {
            check_round_trip(Format::OpenMetrics, &fams);
        }

        #[test]
        fn parsers_never_panic(input in any::<Vec<u8>>()) {
            for format in [Format::PrometheusText, Format::OpenMetrics] {
                let mut p = Parser::new(&input, format, ParseOptions::default());
                while let Ok(Some(_)) = p.next() {
                    let _ = p.labels();
                }
            }
        }
    }

    #[test]
    fn pinned_cases() {
        // A help text that starts with a blank keeps it (one separator is
        // dropped), and an empty help survives in both formats.
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            check_round_trip(
                format,
                &[Family {
                    name: "a".into(),
                    help: " x\\n\"".into(),
                    samples: vec![(vec![("b".into(), "\"\\\n".into())], -0.0, None)],
                }],
            );
            // Found by proptest: a help of blanks only (empty on read in
            // the text format).
            check_round_trip(
                format,
                &[Family {
                    name: "b".into(),
                    help: " ".into(),
                    samples: vec![(vec![], 0.0, Some(1000))],
                }],
            );
            check_round_trip(
                format,
                &[Family {
                    name: "x.y".into(),
                    help: String::new(),
                    samples: vec![(vec![("a b".into(), "c".into())], 1e300, Some(0))],
                }],
            );
        }
    }
}
