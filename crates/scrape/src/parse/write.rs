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
