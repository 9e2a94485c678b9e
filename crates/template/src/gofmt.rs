//! Go's `fmt` and `strconv` float formatting for template values: `%v`,
//! `print`, `println` and `printf` with flags, width and precision.

use super::value::{SampleV, Value};

/// Decimal digits of |v| (no leading zeros, trailing zeros trimmed) and the
/// decimal point position: value = 0.d1d2d3... × 10^dp.
fn digits(v: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    if v == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        None => format!("{:e}", v.abs()),
        Some(n) => format!("{:.*e}", n.max(1) - 1, v.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return (Vec::new(), 0);
    }
    (d, exp + 1)
}

fn fmt_e(neg: bool, d: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push(d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.get(i).map_or('0', |&c| c as char));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
    out
}

fn fmt_f(neg: bool, d: &[u8], dp: i32, frac: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(d.get(i).map_or('0', |&c| c as char));
        }
    } else {
        out.push('0');
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac as i64 {
            let idx = i64::from(dp) + i;
            let c = if idx >= 0 {
                d.get(idx as usize).copied()
            } else {
                None
            };
            out.push(c.map_or('0', |c| c as char));
        }
    }
    out
}

/// `strconv.FormatFloat(v, verb, prec, 64)` for verbs e E f F g G;
/// `prec = None` is -1 (shortest). Infinities print as `+Inf`/`-Inf`.
pub(crate) fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let neg = v.is_sign_negative();
    match verb {
        'e' | 'E' => {
            let (d, dp) = match prec {
                None => digits(v, None),
                Some(p) => digits(v, Some(p + 1)),
            };
            let p = prec.unwrap_or(d.len().saturating_sub(1));
            fmt_e(neg, &d, dp, p, verb == 'E')
        }
        'f' | 'F' => match prec {
            Some(p) => {
                let s = format!("{:.*}", p, v.abs());
                if neg {
                    format!("-{s}")
                } else {
                    s
                }
            }
            None => {
                let (d, dp) = digits(v, None);
                let frac = (d.len() as i32 - dp).max(0) as usize;
                fmt_f(neg, &d, dp, frac)
            }
        },
        _ => {
            let shortest = prec.is_none();
            let mut p = prec.map_or(0, |p| p.max(1));
            let (d, dp) = digits(v, if shortest { None } else { Some(p) });
            let nd = d.len();
            if shortest {
                p = nd;
            }
            let mut eprec = p as i32;
            if eprec > nd as i32 && nd as i32 >= dp {
                eprec = nd as i32;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                let p = p.min(nd).max(1);
                return fmt_e(neg, &d, dp, p - 1, verb == 'G');
            }
            let p = if p as i32 > dp { nd } else { p };
            fmt_f(neg, &d, dp, (p as i32 - dp).max(0) as usize)
        }
    }
}

/// Parsed printf flags.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spec {
    pub minus: bool,
    pub plus: bool,
    pub sharp: bool,
    pub space: bool,
    pub zero: bool,
    pub width: Option<usize>,
    pub prec: Option<usize>,
}

impl Spec {
    /// Pads `s` to the width with spaces (or `pad_zero` zeros on the left).
    fn pad(&self, s: &str, pad_zero: bool) -> String {
        let n = s.chars().count();
        let Some(w) = self.width.filter(|&w| w > n) else {
            return s.to_string();
        };
        let fill = w - n;
        if self.minus {
            format!("{s}{}", " ".repeat(fill))
        } else if pad_zero {
            format!("{}{s}", "0".repeat(fill))
        } else {
            format!("{}{s}", " ".repeat(fill))
        }
    }
}

fn fmt_float_spec(v: f64, verb: char, spec: &Spec) -> String {
    let (verb, prec) = match verb {
        'v' => ('g', spec.prec),
        'f' | 'F' | 'e' | 'E' => (verb, Some(spec.prec.unwrap_or(6))),
        _ => (verb, spec.prec),
    };
    let mut num = format_float(v, verb, prec);
    if num == "NaN" {
        if spec.plus {
            num = "+NaN".into();
        } else if spec.space {
            num = " NaN".into();
        }
        return spec.pad(&num, false);
    }
    if num.ends_with("Inf") {
        if spec.space && !spec.plus && num.starts_with('+') {
            num.replace_range(0..1, " ");
        }
        return spec.pad(&num, false);
    }
    let (sign, body) = match num.strip_prefix('-') {
        Some(b) => ("-", b.to_string()),
        None if spec.plus => ("+", num.clone()),
        None if spec.space => (" ", num.clone()),
        None => ("", num.clone()),
    };
    let full = format!("{sign}{body}");
    if spec.zero && !spec.minus {
        if let Some(w) = spec.width {
            let n = full.chars().count();
            if w > n {
                return format!("{sign}{}{body}", "0".repeat(w - n));
            }
        }
    }
    spec.pad(&full, false)
}

fn fmt_int(v: i64, verb: char, spec: &Spec) -> String {
    let neg = v < 0;
    let u = v.unsigned_abs();
    let mut digits = match verb {
        'b' => format!("{u:b}"),
        'o' | 'O' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        _ => u.to_string(),
    };
    let sign_len = usize::from(neg || spec.plus || spec.space);
    if let Some(p) = spec.prec {
        if p == 0 && u == 0 {
            return spec.pad("", false);
        }
        if digits.len() < p {
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        }
    } else if spec.zero && !spec.minus {
        if let Some(w) = spec.width {
            let p = w.saturating_sub(sign_len);
            if digits.len() < p {
                digits = format!("{}{digits}", "0".repeat(p - digits.len()));
            }
        }
    }
    let prefix = match verb {
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        'b' if spec.sharp => "0b",
        'o' if spec.sharp && !digits.starts_with('0') => "0",
        'O' => "0o",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    spec.pad(&format!("{sign}{prefix}{digits}"), false)
}

/// `strconv.Quote`.
pub(crate) fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || (ascii_only && !c.is_ascii()) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune`.
fn quote_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '"' => "'\"'".to_string(),
        c => {
            let q = quote(&c.to_string(), false);
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

fn fmt_str(s: &str, verb: char, spec: &Spec) -> Option<String> {
    let s: String = match spec.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    let out = match verb {
        's' | 'v' => s,
        'q' => {
            if spec.sharp && !s.contains('`') && !s.chars().any(|c| c.is_control() && c != '\t') {
                format!("`{s}`")
            } else {
                quote(&s, spec.plus)
            }
        }
        'x' | 'X' => {
            let mut out = String::new();
            for (i, b) in s.bytes().enumerate() {
                if spec.space && i > 0 {
                    out.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    out.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    out.push_str(&format!("{b:02x}"));
                } else {
                    out.push_str(&format!("{b:02X}"));
                }
            }
            out
        }
        _ => return None,
    };
    Some(spec.pad(&out, false))
}

/// Formats one value with a verb, or `None` for a verb the type lacks.
fn fmt_value(v: &Value, verb: char, spec: &Spec, depth: usize) -> Option<String> {
    if verb == 'T' {
        return Some(spec.pad(v.type_name(), false));
    }
    if let Some(s) = v.stringer() {
        if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') {
            return fmt_str(&s, verb, spec);
        }
    }
    match v {
        Value::Nil => (verb == 'v').then(|| spec.pad("<nil>", false)),
        Value::Bool(b) => {
            matches!(verb, 'v' | 't').then(|| spec.pad(if *b { "true" } else { "false" }, false))
        }
        Value::Int(i) => match verb {
            'v' | 'd' | 'b' | 'o' | 'O' | 'x' | 'X' => Some(fmt_int(*i, verb, spec)),
            'c' => Some(spec.pad(
                &char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
                false,
            )),
            'q' => Some(spec.pad(
                &quote_rune(char::from_u32(*i as u32).unwrap_or('\u{fffd}')),
                false,
            )),
            'U' => Some(spec.pad(&format!("U+{:04X}", *i), false)),
            _ => None,
        },
        Value::Float(f) => match verb {
            'v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' => Some(fmt_float_spec(*f, verb, spec)),
            _ => None,
        },
        Value::Str(s) => fmt_str(s, verb, spec),
        Value::Time(_) | Value::Duration(_) | Value::ZTime(..) => None,
        Value::Kv(_) | Value::Pairs(_) => None,
        Value::Pair(p) => {
            let plain = Spec::default();
            let (n, v) = (fmt_str(&p.0, verb, &plain)?, fmt_str(&p.1, verb, &plain)?);
            Some(spec.pad(
                &if spec.plus {
                    format!("{{Name:{n} Value:{v}}}")
                } else {
                    format!("{{{n} {v}}}")
                },
                false,
            ))
        }
        Value::List(l) => {
            let plain = Spec::default();
            if depth > 100 {
                return Some("[...]".to_string());
            }
            let mut parts = Vec::with_capacity(l.len());
            for x in l.iter() {
                parts.push(
                    fmt_value(x, verb, &plain, depth + 1).unwrap_or_else(|| bad_verb(x, verb)),
                );
            }
            Some(spec.pad(&format!("[{}]", parts.join(" ")), false))
        }
        Value::StrMap(m) => {
            let plain = Spec::default();
            let mut parts = Vec::with_capacity(m.len());
            for (k, val) in m.iter() {
                parts.push(format!(
                    "{}:{}",
                    fmt_str(k, verb, &plain)?,
                    fmt_str(val, verb, &plain)?
                ));
            }
            Some(spec.pad(&format!("map[{}]", parts.join(" ")), false))
        }
        Value::AnyMap(m) => {
            let plain = Spec::default();
            let mut parts = Vec::with_capacity(m.len());
            for (k, val) in m.iter() {
                let vs =
                    fmt_value(val, verb, &plain, depth + 1).unwrap_or_else(|| bad_verb(val, verb));
                parts.push(format!("{}:{vs}", fmt_str(k, verb, &plain)?));
            }
            Some(spec.pad(&format!("map[{}]", parts.join(" ")), false))
        }
        Value::Sample(s) => {
            let body = sample_struct(s, verb, spec.plus, depth)?;
            Some(spec.pad(&format!("&{body}"), false))
        }
        Value::Samples(v) => {
            let mut parts = Vec::with_capacity(v.len());
            for s in v.iter() {
                parts.push(format!(
                    "&{}",
                    sample_struct(s, verb, spec.plus, depth + 1)?
                ));
            }
            Some(spec.pad(&format!("[{}]", parts.join(" ")), false))
        }
        Value::Root(r) => {
            let plain = Spec::default();
            let l = fmt_value(&Value::StrMap(r.labels.clone()), verb, &plain, depth + 1)?;
            let el = fmt_value(
                &Value::StrMap(r.external_labels.clone()),
                verb,
                &plain,
                depth + 1,
            )?;
            let u = fmt_str(&r.external_url, verb, &plain)?;
            let val = fmt_value(&Value::Float(r.value), verb, &plain, depth + 1)
                .unwrap_or_else(|| bad_verb(&Value::Float(r.value), verb));
            let body = if spec.plus {
                format!("{{Labels:{l} ExternalLabels:{el} ExternalURL:{u} Value:{val}}}")
            } else {
                format!("{{{l} {el} {u} {val}}}")
            };
            Some(spec.pad(&body, false))
        }
    }
}

fn sample_struct(s: &SampleV, verb: char, plus: bool, depth: usize) -> Option<String> {
    let plain = Spec::default();
    let l = fmt_value(&Value::StrMap(s.labels.clone()), verb, &plain, depth + 1)?;
    let v = fmt_value(&Value::Float(s.value), verb, &plain, depth + 1)
        .unwrap_or_else(|| bad_verb(&Value::Float(s.value), verb));
    Some(if plus {
        format!("{{Labels:{l} Value:{v}}}")
    } else {
        format!("{{{l} {v}}}")
    })
}

fn bad_verb(v: &Value, verb: char) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        v => format!("%!{verb}({}={})", v.type_name(), sprint_one(v)),
    }
}

/// `fmt.Sprint` of one value (`%v`).
pub(crate) fn sprint_one(v: &Value) -> String {
    fmt_value(v, 'v', &Spec::default(), 0).unwrap_or_default()
}

/// How a template action prints its final value (Go's `printValue`):
/// a missing value is `<no value>`, pointers to structs print the struct.
pub(crate) fn print_value(v: &Value) -> String {
    match v {
        Value::Nil => "<no value>".to_string(),
        Value::Sample(s) => sample_struct(s, 'v', false, 0).unwrap_or_default(),
        v => sprint_one(v),
    }
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Value::Str(_));
        if i > 0 && !is_str && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&sprint_one(a));
    }
    out
}

/// `fmt.Sprintln`: always spaces, and a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out: Vec<String> = args.iter().map(sprint_one).collect::<Vec<_>>();
    let mut s = std::mem::take(&mut out).join(" ");
    s.push('\n');
    s
}

const TOO_LARGE: usize = 1_000_000;

fn parse_num(b: &[u8], i: &mut usize) -> Option<usize> {
    let start = *i;
    let mut n: usize = 0;
    while *i < b.len() && b[*i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(usize::from(b[*i] - b'0'));
        *i += 1;
    }
    (*i > start).then_some(n)
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let b = format.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut arg_num = 0;
    let mut reordered = false;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i] != b'%' {
            i += 1;
        }
        out.push_str(&format[start..i]);
        if i >= b.len() {
            break;
        }
        i += 1; // skip %
        let mut spec = Spec::default();
        while i < b.len() {
            match b[i] {
                b'#' => spec.sharp = true,
                b'0' => spec.zero = !spec.minus,
                b'+' => spec.plus = true,
                b'-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                b' ' => spec.space = true,
                _ => break,
            }
            i += 1;
        }
        // Argument index [n].
        let arg_index = |i: &mut usize, arg_num: &mut usize| -> bool {
            if *i < b.len() && b[*i] == b'[' {
                let mut j = *i + 1;
                if let Some(n) = parse_num(b, &mut j) {
                    if j < b.len() && b[j] == b']' && n >= 1 {
                        *arg_num = n - 1;
                        *i = j + 1;
                        return true;
                    }
                }
                // Bad index: skip to ']' and mark as bad.
                while *i < b.len() && b[*i] != b']' {
                    *i += 1;
                }
                *i = (*i + 1).min(b.len());
                *arg_num = usize::MAX;
                return true;
            }
            false
        };
        if arg_index(&mut i, &mut arg_num) {
            reordered = true;
        }
        let mut bad_width = false;
        if i < b.len() && b[i] == b'*' {
            i += 1;
            match args.get(arg_num) {
                Some(Value::Int(w)) if w.unsigned_abs() as usize <= TOO_LARGE => {
                    if *w < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(w.unsigned_abs() as usize);
                }
                _ => bad_width = true,
            }
            arg_num = arg_num.saturating_add(1);
        } else if let Some(w) = parse_num(b, &mut i) {
            if w > TOO_LARGE {
                bad_width = true;
            } else {
                spec.width = Some(w);
            }
        }
        if bad_width {
            out.push_str("%!(BADWIDTH)");
        }
        let mut bad_prec = false;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            if arg_index(&mut i, &mut arg_num) {
                reordered = true;
            }
            if i < b.len() && b[i] == b'*' {
                i += 1;
                match args.get(arg_num) {
                    Some(Value::Int(p)) if *p >= 0 && (*p as usize) <= TOO_LARGE => {
                        spec.prec = Some(*p as usize)
                    }
                    _ => bad_prec = true,
                }
                arg_num = arg_num.saturating_add(1);
            } else {
                let p = parse_num(b, &mut i).unwrap_or(0);
                if p > TOO_LARGE {
                    bad_prec = true;
                } else {
                    spec.prec = Some(p);
                }
            }
        }
        if bad_prec {
            out.push_str("%!(BADPREC)");
        }
        if arg_index(&mut i, &mut arg_num) {
            reordered = true;
        }
        let Some(verb) = format[i..].chars().next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += verb.len_utf8();
        if verb == '%' {
            out.push('%');
            continue;
        }
        if arg_num == usize::MAX {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
            continue;
        }
        let Some(arg) = args.get(arg_num) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        arg_num += 1;
        out.push_str(&fmt_value(arg, verb, &spec, 0).unwrap_or_else(|| bad_verb(arg, verb)));
    }
    if !reordered && arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[arg_num..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_string(),
                a => format!("{}={}", a.type_name(), sprint_one(a)),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g4(v: f64) -> String {
        format_float(v, 'g', Some(4))
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(sprint_one(&Value::Float(1.0)), "1");
        assert_eq!(sprint_one(&Value::Float(1.5)), "1.5");
        assert_eq!(sprint_one(&Value::Float(1234567.0)), "1.234567e+06");
        assert_eq!(sprint_one(&Value::Float(123456.0)), "123456");
        assert_eq!(sprint_one(&Value::Float(0.0001)), "0.0001");
        assert_eq!(sprint_one(&Value::Float(0.00001)), "1e-05");
        assert_eq!(sprint_one(&Value::Float(-0.0)), "-0");
        assert_eq!(sprint_one(&Value::Float(f64::INFINITY)), "+Inf");
        assert_eq!(sprint_one(&Value::Float(f64::NAN)), "NaN");
        assert_eq!(
            sprint_one(&Value::Float(1.8446744073709552e19)),
            "1.8446744073709552e+19"
        );
        assert_eq!(g4(0.0), "0");
        assert_eq!(g4(1.0), "1");
        assert_eq!(g4(1.234567), "1.235");
        assert_eq!(g4(120.00000000000001), "120");
        assert_eq!(g4(123456.0), "1.235e+05");
        assert_eq!(g4(1234.0), "1234");
        assert_eq!(g4(12345.0), "1.234e+04");
        assert_eq!(g4(0.00012345), "0.0001234");
        assert_eq!(g4(0.000012345), "1.234e-05");
        assert_eq!(g4(9.223372036854776), "9.223");
        assert_eq!(g4(-22.222), "-22.22");
        assert_eq!(g4(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(0.0, 'e', Some(6)), "0.000000e+00");
        assert_eq!(format_float(1234.5678, 'e', Some(2)), "1.23e+03");
        assert_eq!(format_float(1e-300, 'e', Some(1)), "1.0e-300");
        assert_eq!(format_float(2.5, 'f', Some(0)), "2");
        assert_eq!(format_float(-1.0, 'f', Some(2)), "-1.00");
    }

    #[test]
    fn printf_like_go() {
        let f = |fmt: &str, args: &[Value]| sprintf(fmt, args);
        assert_eq!(f("%.2f", &[Value::Float(3720.01)]), "3720.01");
        assert_eq!(f("%0.2f", &[Value::Float(3720.0101)]), "3720.01");
        assert_eq!(f("%d", &[Value::Int(42)]), "42");
        assert_eq!(
            f(
                "%5d|%-5d|%05d",
                &[Value::Int(42), Value::Int(42), Value::Int(-42)]
            ),
            "   42|42   |-0042"
        );
        assert_eq!(
            f(
                "%x %X %o %b %#x",
                &[
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5),
                    Value::Int(255)
                ]
            ),
            "ff FF 10 101 0xff"
        );
        assert_eq!(
            f("%s and %v", &[Value::str("a"), Value::Bool(true)]),
            "a and true"
        );
        assert_eq!(f("%q", &[Value::str("a\"b\n")]), "\"a\\\"b\\n\"");
        assert_eq!(f("%t", &[Value::Bool(false)]), "false");
        assert_eq!(f("%e", &[Value::Float(1234.5678)]), "1.234568e+03");
        assert_eq!(f("%g", &[Value::Float(1234.5678)]), "1234.5678");
        assert_eq!(
            f(
                "%8.3f|%-8.3f|%+.1f|%08.2f",
                &[
                    Value::Float(3.25),
                    Value::Float(3.25),
                    Value::Float(2.0),
                    Value::Float(-3.25)
                ]
            ),
            "   3.250|3.250   |+2.0|-0003.25"
        );
        assert_eq!(f("%6.2f%%", &[Value::Float(99.5)]), " 99.50%");
        assert_eq!(f("%x", &[Value::str("hi")]), "6869");
        assert_eq!(
            f(
                "%10s|%-4s|%.2s",
                &[Value::str("abc"), Value::str("ab"), Value::str("abc")]
            ),
            "       abc|ab  |ab"
        );
        assert_eq!(f("%v", &[Value::Nil]), "<nil>");
        assert_eq!(
            f("%T %T", &[Value::Float(1.0), Value::str("")]),
            "float64 string"
        );
        // Go's error forms.
        assert_eq!(f("%d", &[Value::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(f("%f", &[Value::Int(3)]), "%!f(int=3)");
        assert_eq!(f("%s", &[Value::Int(3)]), "%!s(int=3)");
        assert_eq!(f("%d", &[Value::Nil]), "%!d(<nil>)");
        assert_eq!(f("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            f("%d", &[Value::Int(1), Value::str("x")]),
            "1%!(EXTRA string=x)"
        );
        assert_eq!(f("abc%", &[]), "abc%!(NOVERB)");
        assert_eq!(f("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]), "2 1");
        assert_eq!(f("%*d", &[Value::Int(4), Value::Int(7)]), "   7");
        assert_eq!(f("%.*f", &[Value::Int(1), Value::Float(2.25)]), "2.2");
        assert_eq!(f("%99999999d", &[Value::Int(1)]), "%!(BADWIDTH)1");
        assert_eq!(
            f(
                "%c|%U|%q",
                &[Value::Int(65), Value::Int(0x1F600), Value::Int(120)]
            ),
            "A|U+1F600|'x'"
        );
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(sprint(&[Value::Int(1), Value::Int(2)]), "1 2");
        assert_eq!(
            sprint(&[
                Value::str("a"),
                Value::Int(1),
                Value::Int(2),
                Value::str("b")
            ]),
            "a1 2b"
        );
        assert_eq!(sprintln(&[Value::str("a"), Value::Int(1)]), "a 1\n");
    }
}
