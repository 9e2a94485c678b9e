//! The small grammars of the test-script language (FORMAT.md §1 and §4):
//! durations, bare numbers, Go string literals and series descriptions.

use vigil_model::Labels;

/// One element of an expanded value sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeqValue {
    /// `_`: takes a slot, writes nothing.
    Omitted,
    /// A float (the stale marker included).
    Float(f64),
    /// A native-histogram element `{{…}}`. The runner does not model
    /// histograms, so only its presence is kept.
    Histogram,
}

/// A parsed series description: a label set and its expanded values.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesDesc {
    /// The label set (`__name__` included when given).
    pub labels: Labels,
    /// The expanded value sequence.
    pub values: Vec<SeqValue>,
}

/// Parses a Prometheus `model.ParseDuration` string into milliseconds:
/// `^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$` with at least one
/// unit, or the bare `0`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: i64 = s[start..pos]
            .parse()
            .map_err(|_| format!("not a valid duration string: {s:?}"))?;
        let ustart = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &s[ustart..pos];
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("not a valid duration string: {s:?}"));
        };
        if idx < next_unit {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        next_unit = idx + 1;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
    }
    Ok(total)
}

/// Parses a bare number line as the harness does: Go `strconv.ParseInt(s, 0,
/// 64)` first, then `strconv.ParseFloat(s, 64)`.
pub fn parse_number(s: &str) -> Result<f64, String> {
    if let Some(i) = parse_go_int(s) {
        return Ok(i as f64);
    }
    parse_go_float(s).ok_or_else(|| format!("error parsing number: {s:?}"))
}

/// Go `ParseInt(s, 0, 64)`: optional sign, then `0x`/`0o`/`0b` prefixes or a
/// leading `0` for octal. Underscores are accepted only after a base prefix.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    let digits = if prefixed {
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if mag > i64::MAX as u64 + 1 {
            return None;
        }
        Some((mag as i64).wrapping_neg())
    } else {
        i64::try_from(mag).ok()
    }
}

/// Go `ParseFloat(s, 64)` for the decimal forms and `inf`/`infinity`/`nan`
/// (any case, optional sign). Out-of-range values are errors, as in Go.
fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    if !special {
        // Only the decimal forms: digits, one '.', an exponent.
        let ok = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            && body.bytes().any(|b| b.is_ascii_digit());
        if !ok {
            return None;
        }
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() && !special {
        return None;
    }
    Some(v)
}

/// Unquotes a Go/PromQL string literal: `"…"` or `'…'` with Go escapes, or
/// `` `…` `` raw. Invalid UTF-8 produced by `\x`/octal escapes is replaced
/// lossily (Rust strings cannot hold it).
pub fn unquote(s: &str) -> Result<String, String> {
    let err = || format!("invalid string literal {s:?}");
    let q = s.chars().next().ok_or_else(err)?;
    if s.len() < 2 || !s.ends_with(q) || !matches!(q, '"' | '\'' | '`') {
        return Err(err());
    }
    let inner = &s[1..s.len() - 1];
    if q == '`' {
        if inner.contains('`') {
            return Err(err());
        }
        return Ok(inner.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == q || c == '\n' {
            return Err(err());
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next().ok_or_else(err)?;
        let simple = match e {
            'a' => Some(0x07u8),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '\'' | '"' if e == q => Some(e as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let mut take_hex = |n: usize| -> Result<u32, String> {
            let mut v = 0u32;
            for _ in 0..n {
                let d = chars.next().and_then(|c| c.to_digit(16)).ok_or_else(err)?;
                v = v * 16 + d;
            }
            Ok(v)
        };
        match e {
            'x' => out.push(take_hex(2)? as u8),
            'u' | 'U' => {
                let v = take_hex(if e == 'u' { 4 } else { 8 })?;
                let c = char::from_u32(v).ok_or_else(err)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars.next().and_then(|c| c.to_digit(8)).ok_or_else(err)?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err(err());
                }
                out.push(v as u8);
            }
            _ => return Err(err()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Byte length of the quoted literal starting at `s[0]` (a quote char).
fn quoted_len(s: &str) -> Result<usize, String> {
    let b = s.as_bytes();
    let q = b[0];
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(format!("unterminated string in {s:?}"))
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Splits a series description into its label-set text and the rest.
fn split_metric(line: &str) -> Result<(&str, &str), String> {
    let b = line.as_bytes();
    let mut i = 0;
    if i < b.len() && is_name_start(b[i]) {
        while i < b.len() && is_name_char(b[i]) {
            i += 1;
        }
        // A label set may follow, possibly after spaces; `{{` starts a
        // histogram value instead.
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'{' && b.get(j + 1) != Some(&b'{') {
            i = j;
        } else {
            return Ok((&line[..i], &line[i..]));
        }
    }
    if i >= b.len() || b[i] != b'{' {
        return Err(format!("expected a metric name or label set in {line:?}"));
    }
    i += 1;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i += quoted_len(&line[i..])?,
            b'}' => return Ok((&line[..=i], &line[i + 1..])),
            _ => i += 1,
        }
    }
    Err(format!("unterminated label set in {line:?}"))
}

/// Parses a label-set text: `name`, `name{l="v", …}`, `{l="v", …}`, with
/// quoted names (`{"metric.name", "label x"="v"}`). Only `=` is allowed.
pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let b = text.as_bytes();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    if i > 0 {
        pairs.push(("__name__".into(), text[..i].to_string()));
    }
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i == b.len() {
        if pairs.is_empty() {
            return Err("empty metric".into());
        }
        return Ok(Labels::from_pairs(pairs));
    }
    if b[i] != b'{' {
        return Err(format!("unexpected {:?} in label set {text:?}", &text[i..]));
    }
    i += 1;
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            return Err(format!("unterminated label set {text:?}"));
        }
        if b[i] == b'}' {
            i += 1;
            break;
        }
        // A name: identifier or quoted string.
        let name = if matches!(b[i], b'"' | b'\'' | b'`') {
            let n = quoted_len(&text[i..])?;
            let s = unquote(&text[i..i + n])?;
            i += n;
            (s, true)
        } else if is_name_start(b[i]) {
            let st = i;
            while i < b.len() && is_name_char(b[i]) {
                i += 1;
            }
            (text[st..i].to_string(), false)
        } else {
            return Err(format!("unexpected {:?} in label set {text:?}", &text[i..]));
        };
        skip_ws(&mut i);
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && matches!(b[i], b'~' | b'=') {
                return Err(format!("only = matchers are allowed in {text:?}"));
            }
            skip_ws(&mut i);
            if i >= b.len() || !matches!(b[i], b'"' | b'\'' | b'`') {
                return Err(format!("expected a quoted label value in {text:?}"));
            }
            let n = quoted_len(&text[i..])?;
            let v = unquote(&text[i..i + n])?;
            i += n;
            pairs.push((name.0, v));
        } else if i < b.len() && b[i] == b'!' {
            return Err(format!("only = matchers are allowed in {text:?}"));
        } else if name.1 {
            // A bare quoted string is the metric name.
            pairs.push(("__name__".into(), name.0));
        } else {
            return Err(format!("expected '=' after label {:?} in {text:?}", name.0));
        }
        skip_ws(&mut i);
        if i < b.len() && b[i] == b',' {
            i += 1;
        } else if i < b.len() && b[i] != b'}' {
            return Err(format!("unexpected {:?} in label set {text:?}", &text[i..]));
        }
    }
    skip_ws(&mut i);
    if i != b.len() {
        return Err(format!("trailing {:?} after label set", &text[i..]));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Splits the value part on whitespace, keeping `{{ … }}` spans whole.
fn value_tokens(s: &str) -> Result<Vec<&str>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let st = i;
        while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
            if b[i] == b'{' && b.get(i + 1) == Some(&b'{') {
                let end = s[i..]
                    .find("}}")
                    .ok_or_else(|| format!("unterminated histogram in {s:?}"))?;
                i += end + 2;
            } else {
                i += 1;
            }
        }
        out.push(&s[st..i]);
    }
    Ok(out)
}

/// Parses an unsigned decimal repeat count.
fn parse_count(s: &str) -> Result<usize, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid repeat count {s:?}"));
    }
    s.parse().map_err(|_| format!("invalid repeat count {s:?}"))
}

/// Scans a series value at the start of `s` (a signed number, Inf/NaN, or
/// `stale`), returning it and the remaining text.
fn scan_value(s: &str) -> Result<(f64, &str), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let rest = &s[i..];
    let lower = rest.to_ascii_lowercase();
    for (word, v) in [("inf", f64::INFINITY), ("nan", f64::NAN)] {
        if lower.starts_with(word) {
            let after = &rest[3..];
            // A following letter would make it an identifier; `x` is only a
            // repeat when followed by a digit.
            if after
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && !(after.starts_with('x') && after[1..].starts_with(|c: char| c.is_ascii_digit()))
            {
                return Err(format!("invalid value {s:?}"));
            }
            return Ok((if neg { -v } else { v }, after));
        }
    }
    if i == 0 && lower.starts_with("stale") {
        return Ok((vigil_model::stale_nan(), &rest[5..]));
    }
    // Decimal number: digits [. digits] [e [+-] digits]; no hex.
    let st = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == st || &s[st..i] == "." {
        return Err(format!("invalid value {s:?}"));
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let ds = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > ds {
            i = j;
        }
    }
    let v: f64 = s[st..i]
        .parse()
        .map_err(|_| format!("invalid value {s:?}"))?;
    Ok((if neg { -v } else { v }, &s[i..]))
}

/// Expands one value item (FORMAT.md §4 table) onto `out`.
fn expand_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if item == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n = parse_count(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
        return Ok(());
    }
    if item.starts_with("{{") {
        // {{h}} | {{h}}xN | {{h1}}(+|-){{h2}}xN
        let end = item.find("}}").ok_or("unterminated histogram")? + 2;
        let rest = &item[end..];
        let n = if rest.is_empty() {
            0
        } else if let Some(n) = rest.strip_prefix('x') {
            parse_count(n)?
        } else if rest.starts_with("+{{") || rest.starts_with("-{{") {
            let e2 = rest.find("}}").ok_or("unterminated histogram")? + 2;
            let n = rest[e2..]
                .strip_prefix('x')
                .ok_or_else(|| format!("expected xN in {item:?}"))?;
            parse_count(n)?
        } else {
            return Err(format!("invalid histogram item {item:?}"));
        };
        out.extend(std::iter::repeat_n(SeqValue::Histogram, n + 1));
        return Ok(());
    }
    let (a, rest) = scan_value(item)?;
    if rest.is_empty() {
        out.push(SeqValue::Float(a));
        return Ok(());
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n = parse_count(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Float(a), n + 1));
        return Ok(());
    }
    if rest.starts_with(['+', '-']) {
        let (step, rest2) = scan_value(rest)?;
        let n = rest2
            .strip_prefix('x')
            .ok_or_else(|| format!("expected xN after the step in {item:?}"))?;
        let n = parse_count(n)?;
        let mut cur = a;
        out.push(SeqValue::Float(cur));
        for _ in 0..n {
            cur += step;
            out.push(SeqValue::Float(cur));
        }
        return Ok(());
    }
    Err(format!("invalid value item {item:?}"))
}

/// Parses a whole series description line.
pub fn parse_series_desc(line: &str) -> Result<SeriesDesc, String> {
    let (metric, rest) = split_metric(line)?;
    let labels = parse_labels(metric)?;
    let mut values = Vec::new();
    for tok in value_tokens(rest)? {
        expand_item(tok, &mut values)?;
    }
    Ok(SeriesDesc { labels, values })
}
