//! Alertmanager's label matchers: `severity="critical"`, `job=~"api|web"`,
//! `env!=prod`, `{a="b", c!~"d.*"}`.
//!
//! The syntax is Alertmanager's (`pkg/labels/parse.go` and the UTF-8
//! `matcher/parse` parser): an optional pair of braces around a
//! comma-separated list; each matcher is a label name (bare or
//! double-quoted), an operator (`=`, `!=`, `=~`, `!~`) and a value, either
//! double-quoted with Go escapes or bare up to the next `,` or `}` with
//! surrounding spaces trimmed. Regexes are fully anchored (`^(?:re)$`), as
//! in Alertmanager; matching itself is vigil-model's [`vigil_model::Matcher`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigil_model::matcher::{MatchOp, Matcher as ModelMatcher};
use vigil_model::Labels;

/// A matcher could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherParseError {
    /// Nothing that looks like `name op value`.
    #[error("bad matcher format: {0:?}")]
    BadFormat(String),
    /// A name without an operator.
    #[error("missing operator in matcher {0:?}")]
    MissingOperator(String),
    /// A quoted string that does not end.
    #[error("unterminated quoted string in {0:?}")]
    Unterminated(String),
    /// A label name that is empty.
    #[error("empty label name in matcher {0:?}")]
    EmptyName(String),
    /// A regex that does not compile.
    #[error("invalid regular expression in matcher {input:?}: {message}")]
    BadRegex {
        /// The matcher as written.
        input: String,
        /// What the regex compiler said.
        message: String,
    },
    /// Text after a closing brace, or an opening brace without a closing one.
    #[error("unbalanced braces in {0:?}")]
    Braces(String),
}

/// The matching operator, as Alertmanager spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MatchType {
    /// `=`
    #[serde(rename = "=")]
    Equal,
    /// `!=`
    #[serde(rename = "!=")]
    NotEqual,
    /// `=~`
    #[serde(rename = "=~")]
    Regexp,
    /// `!~`
    #[serde(rename = "!~")]
    NotRegexp,
}

impl MatchType {
    fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }

    /// Whether the operator is `=~` or `!~`.
    pub fn is_regex(self) -> bool {
        matches!(self, MatchType::Regexp | MatchType::NotRegexp)
    }

    /// Whether the operator is `!=` or `!~`.
    pub fn is_negative(self) -> bool {
        matches!(self, MatchType::NotEqual | MatchType::NotRegexp)
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One label matcher.
#[derive(Clone)]
pub struct Matcher {
    name: String,
    op: MatchType,
    value: String,
    inner: ModelMatcher,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}
impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Matcher {
    /// Alertmanager's `Matcher.String()`: the name, the operator and the
    /// value as a Go-quoted string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            f.write_str(&go_quote(&self.name))?;
        }
        write!(f, "{}{}", self.op, go_quote(&self.value))
    }
}

fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Quotes a string the way Go's `strconv.Quote` does for printable text.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Matcher {
    /// Builds a matcher; fails only for a regex that does not compile.
    pub fn new(
        name: impl Into<String>,
        op: MatchType,
        value: impl Into<String>,
    ) -> Result<Matcher, MatcherParseError> {
        let name = name.into();
        let value = value.into();
        let mop = match op {
            MatchType::Equal => MatchOp::Equal,
            MatchType::NotEqual => MatchOp::NotEqual,
            MatchType::Regexp => MatchOp::Regex,
            MatchType::NotRegexp => MatchOp::NotRegex,
        };
        let inner = ModelMatcher::new(mop, name.clone(), value.clone()).map_err(|e| {
            MatcherParseError::BadRegex {
                input: format!("{name}{op}{}", go_quote(&value)),
                message: e.to_string(),
            }
        })?;
        Ok(Matcher {
            name,
            op,
            value,
            inner,
        })
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchType {
        self.op
    }

    /// The value or pattern.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the label set satisfies the matcher (a missing label is the
    /// empty string).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.inner.matches(labels.get_or_empty(&self.name))
    }

    /// Whether the matcher accepts the value `v`.
    pub fn matches_value(&self, v: &str) -> bool {
        self.inner.matches(v)
    }

    /// Parses one matcher, e.g. `severity="critical"`.
    pub fn parse(s: &str) -> Result<Matcher, MatcherParseError> {
        let mut list = parse_matchers(s)?;
        if list.len() != 1 {
            return Err(MatcherParseError::BadFormat(s.to_string()));
        }
        Ok(list.remove(0))
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A list of matchers that must all match; Alertmanager's `labels.Matchers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// Whether every matcher matches the label set (true when empty).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    /// Sorts as Alertmanager does: by name, then value, then operator.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.value.cmp(&b.value))
                .then_with(|| a.op.cmp(&b.op))
        });
    }

    /// Whether there are no matchers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Matchers {
    /// Alertmanager's `Matchers.String()`: `{a="b",c=~"d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// The `matchers:` list of a route or inhibit rule: a list of strings,
/// each holding one or more matchers.
impl<'de> Deserialize<'de> for Matchers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        let mut out = Vec::new();
        for line in &lines {
            out.extend(parse_matchers(line).map_err(serde::de::Error::custom)?);
        }
        Ok(Matchers(out))
    }
}

impl Serialize for Matchers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<String> = self.0.iter().map(|m| m.to_string()).collect();
        v.serialize(s)
    }
}

struct Cursor<'a> {
    src: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    /// A double-quoted string with Go escapes; the cursor is on the quote.
    fn quoted(&mut self) -> Result<String, MatcherParseError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(MatcherParseError::Unterminated(self.src.to_string()));
            };
            self.pos += 1;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(MatcherParseError::Unterminated(self.src.to_string()));
                    };
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        other => {
                            // Go's Unquote rejects unknown escapes; regexes
                            // written as `"\d+"` are common enough in the
                            // wild that Alertmanager's classic parser keeps
                            // the backslash, and so do we.
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// Parses a matcher list: `{a="b", c=~"d"}`, `a=b,c!=d` or one matcher.
/// An empty list (`{}` or blank) is allowed.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherParseError> {
    let mut c = Cursor {
        src: s,
        chars: s.chars().collect(),
        pos: 0,
    };
    c.skip_ws();
    let braced = c.eat('{');
    let mut out = Vec::new();
    loop {
        c.skip_ws();
        match c.peek() {
            None => {
                if braced {
                    return Err(MatcherParseError::Braces(s.to_string()));
                }
                return Ok(out);
            }
            Some('}') if braced => {
                c.pos += 1;
                c.skip_ws();
                if c.peek().is_some() {
                    return Err(MatcherParseError::Braces(s.to_string()));
                }
                return Ok(out);
            }
            Some(',') if !out.is_empty() => {
                // A trailing comma is accepted, as Alertmanager does.
                c.pos += 1;
                continue;
            }
            _ => {}
        }
        out.push(parse_one(&mut c)?);
        c.skip_ws();
        match c.peek() {
            Some(',') => c.pos += 1,
            Some('}') if braced => {}
            None => {}
            Some(_) => return Err(MatcherParseError::BadFormat(s.to_string())),
        }
    }
}

fn parse_one(c: &mut Cursor<'_>) -> Result<Matcher, MatcherParseError> {
    let src = c.src.to_string();
    let name = if c.peek() == Some('"') {
        c.quoted()?
    } else {
        let start = c.pos;
        while c.peek().is_some_and(|ch| {
            !matches!(ch, '=' | '!' | '~' | ',' | '{' | '}' | '"') && !ch.is_whitespace()
        }) {
            c.pos += 1;
        }
        c.chars[start..c.pos].iter().collect()
    };
    if name.is_empty() {
        return Err(MatcherParseError::EmptyName(src));
    }
    c.skip_ws();
    let op = match (c.peek(), c.chars.get(c.pos + 1).copied()) {
        (Some('='), Some('~')) => {
            c.pos += 2;
            MatchType::Regexp
        }
        (Some('='), _) => {
            c.pos += 1;
            MatchType::Equal
        }
        (Some('!'), Some('=')) => {
            c.pos += 2;
            MatchType::NotEqual
        }
        (Some('!'), Some('~')) => {
            c.pos += 2;
            MatchType::NotRegexp
        }
        _ => return Err(MatcherParseError::MissingOperator(src)),
    };
    c.skip_ws();
    let value = if c.peek() == Some('"') {
        c.quoted()?
    } else {
        let start = c.pos;
        while c.peek().is_some_and(|ch| ch != ',' && ch != '}') {
            c.pos += 1;
        }
        let raw: String = c.chars[start..c.pos].iter().collect();
        raw.trim().to_string()
    };
    Matcher::new(name, op, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn parses_alertmanager_forms() {
        let m = parse_matchers(r#"{a="b", c=~"d.*",e!=f , g!~ "h"}"#).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].to_string(), r#"a="b""#);
        assert_eq!(m[1].op(), MatchType::Regexp);
        assert_eq!(m[2].value(), "f");
        assert_eq!(m[3].to_string(), r#"g!~"h""#);
        let m = Matcher::parse("severity = critical").unwrap();
        assert_eq!(m.value(), "critical");
        let m = Matcher::parse(r#""service name"="a \"q\"""#).unwrap();
        assert_eq!(m.name(), "service name");
        assert_eq!(m.value(), "a \"q\"");
        assert_eq!(m.to_string(), r#""service name"="a \"q\"""#);
        assert!(parse_matchers("{}").unwrap().is_empty());
        assert_eq!(Matcher::parse("foo=").unwrap().value(), "");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "foo", "=bar", r#"a="b"#, "{a=b", "a=b}", "a=~(", "{a=b} x", "a b=c",
        ] {
            assert!(parse_matchers(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn regexes_are_anchored() {
        let m = Matcher::parse("job=~api").unwrap();
        assert!(m.matches(&l(&[("job", "api")])));
        assert!(!m.matches(&l(&[("job", "api-2")])));
        assert!(!m.matches(&l(&[("job", "my-api")])));
        let m = Matcher::parse(r#"job!~"a|b""#).unwrap();
        assert!(m.matches(&l(&[("job", "c")])));
        assert!(!m.matches(&l(&[("job", "a")])));
        let m = Matcher::parse("missing=\"\"").unwrap();
        assert!(m.matches(&l(&[("job", "c")])));
    }

    #[test]
    fn string_form_sorts_like_alertmanager() {
        let mut ms = Matchers(parse_matchers("b=1,a=~2,a=1").unwrap());
        ms.sort();
        assert_eq!(ms.to_string(), r#"{a="1",a=~"2",b="1"}"#);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_matchers(&s);
        }
    }
}
