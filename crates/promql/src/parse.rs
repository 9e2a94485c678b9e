//! Parsing, with vigil's workarounds for `promql-parser` where it differs
//! from Prometheus.
//!
//! - Backtick strings are fully raw in Prometheus, but the crate rejects a
//!   backslash sequence that is not a Go escape inside them (`` `\d+` ``).
//!   Such strings are rewritten to double-quoted strings with the backslashes
//!   escaped before parsing.

use promql_parser::parser::Expr;

use crate::engine::QueryError;

/// Parses a PromQL expression.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    let rewritten = rewrite_raw_strings(query);
    promql_parser::parser::parse(&rewritten).map_err(QueryError::Parse)
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
    fn parse_errors_are_typed() {
        assert!(matches!(parse("sum("), Err(QueryError::Parse(_))));
    }
}
