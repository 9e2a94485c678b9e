//! Parsing, with vigil's workarounds for `promql-parser` where it differs
//! from Prometheus.
//!
//! - Backtick strings are fully raw in Prometheus, but the crate rejects a
//!   backslash sequence that is not a Go escape inside them (`` `\d+` ``).
//!   Such strings are rewritten to double-quoted strings with the backslashes
//!   escaped before parsing.
//! - `"\xNN"` (and octal) escapes are bytes in Go but code points in the
//!   crate (`"\xff"` becomes `ÿ`, `"\xc3\xa9"` becomes `Ã©`). Quoted
//!   strings with byte escapes are decoded here as Go decodes them and
//!   re-quoted; bytes that are not UTF-8 become U+FFFD, and the engine
//!   rejects label names containing U+FFFD as invalid UTF-8, as Prometheus
//!   rejects the raw bytes.

use promql_parser::parser::Expr;

use crate::engine::QueryError;

/// Parses a PromQL expression.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    let rewritten = rewrite_raw_strings(query);
    let rewritten = rewrite_byte_escapes(&rewritten);
    promql_parser::parser::parse(&rewritten).map_err(QueryError::Parse)
}

/// Parses a series selector (`up{job="api"}`, as in `match[]` API
/// parameters) into matchers with Prometheus 3 semantics.
pub fn parse_series_selector(input: &str) -> Result<Vec<vigil_model::Matcher>, QueryError> {
    match parse(input)? {
        Expr::VectorSelector(vs) => crate::eval::Evaluator::matchers(&vs),
        _ => Err(QueryError::BadData(format!(
            "invalid series selector {input:?}: not a vector selector"
        ))),
    }
}

/// The replacement character that stands for bytes that are not UTF-8.
pub(crate) const INVALID_UTF8_MARK: char = '\u{FFFD}';

/// Decodes a Go-quoted string body (without quotes) to bytes; `None` if it
/// has an escape this rewrite does not understand (the parser reports it).
fn go_unquote_bytes(body: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next()?;
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' | '\'' | '"' => out.push(e as u8),
            'x' => {
                let h: String = [chars.next()?, chars.next()?].iter().collect();
                out.push(u8::from_str_radix(&h, 16).ok()?);
            }
            '0'..='7' => {
                let o: String = [e, chars.next()?, chars.next()?].iter().collect();
                out.push(u8::from_str_radix(&o, 8).ok()?);
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let mut h = String::new();
                for _ in 0..n {
                    h.push(chars.next()?);
                }
                let ch = char::from_u32(u32::from_str_radix(&h, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
}

/// True when a quoted body has a `\xNN` or octal escape.
fn has_byte_escape(body: &str) -> bool {
    let b = body.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\\' {
            if b[i + 1] == b'x' || b[i + 1].is_ascii_digit() {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// Rewrites quoted strings with byte escapes so that they decode as in Go
/// (see the module docs).
fn rewrite_byte_escapes(q: &str) -> std::borrow::Cow<'_, str> {
    if !q.contains("\\x") && !q.contains("\\") {
        return std::borrow::Cow::Borrowed(q);
    }
    let mut out = String::with_capacity(q.len());
    let mut changed = false;
    let mut rest = q;
    while let Some(pos) = rest.find(['"', '\'', '`', '#']) {
        out.push_str(&rest[..pos]);
        let quote = rest[pos..].chars().next().unwrap_or('"');
        let after = &rest[pos + 1..];
        if quote == '#' {
            // A comment: copy to the end of the line.
            let end = after.find('\n').map_or(after.len(), |e| e + 1);
            out.push('#');
            out.push_str(&after[..end]);
            rest = &after[end..];
            continue;
        }
        // Find the closing quote (backslash escapes apply except in `...`).
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' && quote != '`' {
                escaped = true;
            } else if c == quote {
                end = Some(i);
                break;
            }
        }
        let Some(end) = end else {
            out.push_str(&rest[pos..]);
            rest = "";
            break;
        };
        let body = &after[..end];
        let literal = &rest[pos..pos + 1 + end + 1];
        match (quote != '`').then(|| go_unquote_bytes(body)).flatten() {
            // Byte escapes (`\xNN`, octal) are decoded as Go does: as bytes.
            Some(bytes) if has_byte_escape(body) => {
                changed = true;
                let lossy = String::from_utf8_lossy(&bytes);
                out.push('"');
                for c in lossy.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        _ => out.push(c),
                    }
                }
                out.push('"');
            }
            _ => out.push_str(literal),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if changed {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(q)
    }
}

/// Rewrites backtick strings that contain a backslash into equivalent
/// double-quoted strings.
fn rewrite_raw_strings(q: &str) -> std::borrow::Cow<'_, str> {
    if !q.contains('`') || !q.contains('\\') {
        return std::borrow::Cow::Borrowed(q);
    }
    let mut out = String::with_capacity(q.len() + 8);
    let mut chars = q.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(qc) => {
                out.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else if c == qc {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => {
                    quote = Some(c);
                    out.push(c);
                }
                '`' => {
                    let mut raw = String::new();
                    let mut closed = false;
                    for r in chars.by_ref() {
                        if r == '`' {
                            closed = true;
                            break;
                        }
                        raw.push(r);
                    }
                    if !closed {
                        out.push('`');
                        out.push_str(&raw);
                        break;
                    }
                    out.push('"');
                    for r in raw.chars() {
                        match r {
                            '\\' => out.push_str("\\\\"),
                            '"' => out.push_str("\\\""),
                            '\n' => out.push_str("\\n"),
                            _ => out.push(r),
                        }
                    }
                    out.push('"');
                }
                '#' => {
                    // A comment runs to the end of the line.
                    out.push(c);
                    for r in chars.by_ref() {
                        out.push(r);
                        if r == '\n' {
                            break;
                        }
                    }
                }
                _ => out.push(c),
            },
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_with_backslashes_parse() {
        // promql-parser rejects this as "unknown escape sequence 'd'".
        let e = parse(r"foo{a=~`\d+`}").unwrap();
        let Expr::VectorSelector(vs) = e else {
            panic!("a selector")
        };
        assert_eq!(vs.matchers.matchers[0].value, r"\d+");
        assert_eq!(
            rewrite_raw_strings(r#"x{a="\\d"} + y{b=~`a"\w`}"#),
            r#"x{a="\\d"} + y{b=~"a\"\\w"}"#
        );
    }

    #[test]
    fn byte_escapes_that_are_not_utf8_are_marked() {
        // promql-parser would decode "\xff" to 'ÿ', a valid label name.
        let e = parse(r#"label_replace(m, "\xff", "", "src", "(.*)")"#).unwrap();
        let Expr::Call(c) = e else { panic!("a call") };
        let Expr::StringLiteral(s) = c.args.args[1].as_ref() else {
            panic!("a string")
        };
        assert_eq!(s.val, INVALID_UTF8_MARK.to_string());
        // Valid UTF-8 written as bytes decodes as in Go: "é", not "Ã©".
        let e = parse(r#"m{a="\xc3\xa9"}"#).unwrap();
        let Expr::VectorSelector(vs) = e else {
            panic!("a selector")
        };
        assert_eq!(vs.matchers.matchers[0].value, "é");
    }

    #[test]
    fn parse_errors_are_typed() {
        assert!(matches!(parse("sum("), Err(QueryError::Parse(_))));
    }
}
