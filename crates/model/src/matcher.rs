//! Label matchers: `=`, `!=`, `=~`, `!~`, with Prometheus 3 semantics.
//!
//! Regexes are fully anchored and `.` matches newlines: a pattern `re` is
//! compiled as `^(?s:re)$`, as Prometheus 3 does. Go's RE2 treats `\d`, `\w`,
//! `\s` and `\b` as ASCII classes while Rust's `regex` makes them Unicode
//! classes, so patterns are first rewritten to the ASCII forms
//! ([`translate_go_regex`]).
//!
//! Like Prometheus's `FastRegexMatcher`, common shapes skip the regex engine:
//! `.*` matches everything, `.+` everything non-empty, a plain literal is an
//! equality test, an alternation of literals (`a|b|c`) is a set lookup, and
//! `lit.*`, `.*lit` and `.*lit.*` are prefix, suffix and substring tests.

use std::collections::HashSet;
use std::fmt;

use regex::Regex;

/// The matching operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        })
    }
}

/// A matcher could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// The regular expression does not compile.
    #[error("invalid regular expression {pattern:?}: {source}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// What the regex compiler said.
        #[source]
        source: regex::Error,
    },
}

/// How a regex matcher decides, picked once when it is built.
#[derive(Clone)]
enum MatchStrategy {
    /// `.*`
    Any,
    /// `.+`
    NonEmpty,
    /// A pattern with no metacharacters.
    Literal(String),
    /// `a|b|c` with literal alternatives, few of them.
    SmallSet(Vec<String>),
    /// `a|b|c` with literal alternatives, many of them.
    Set(HashSet<String>),
    /// `lit.*`
    Prefix(String),
    /// `.*lit`
    Suffix(String),
    /// `.*lit.*`
    Contains(String),
    /// Anything else.
    Regex(Regex),
}

impl MatchStrategy {
    fn is_match(&self, s: &str) -> bool {
        match self {
            MatchStrategy::Any => true,
            MatchStrategy::NonEmpty => !s.is_empty(),
            MatchStrategy::Literal(l) => s == l,
            MatchStrategy::SmallSet(v) => v.iter().any(|l| l == s),
            MatchStrategy::Set(set) => set.contains(s),
            MatchStrategy::Prefix(p) => s.starts_with(p.as_str()),
            MatchStrategy::Suffix(p) => s.ends_with(p.as_str()),
            MatchStrategy::Contains(p) => s.contains(p.as_str()),
            MatchStrategy::Regex(r) => r.is_match(s),
        }
    }
}

/// A label matcher, as in a PromQL selector `{name op "value"}`.
#[derive(Clone)]
pub struct Matcher {
    op: MatchOp,
    name: String,
    value: String,
    strategy: Option<MatchStrategy>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op, self.value)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A matcher `name op value`. Fails only for regexes that do not compile.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Matcher, MatcherError> {
        let name = name.into();
        let value = value.into();
        let strategy = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::Regex | MatchOp::NotRegex => Some(compile(&value)?),
        };
        Ok(Matcher {
            op,
            name,
            value,
            strategy,
        })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher {
            op: MatchOp::Equal,
            name: name.into(),
            value: value.into(),
            strategy: None,
        }
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value or pattern, as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Does the label value `v` satisfy this matcher? A missing label is
    /// passed as `""`, as in Prometheus.
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.regex_match(v),
            MatchOp::NotRegex => !self.regex_match(v),
        }
    }

    fn regex_match(&self, v: &str) -> bool {
        match &self.strategy {
            Some(s) => s.is_match(v),
            None => false,
        }
    }

    /// True when this matcher accepts the empty string, and so also series
    /// that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For an `=~` matcher that is a set of literals (`a|b|c`), or a literal,
    /// the values it accepts. The index uses this to look values up directly
    /// instead of scanning them all.
    pub fn set_matches(&self) -> Option<Vec<&str>> {
        match (&self.op, &self.strategy) {
            (MatchOp::Equal, _) => Some(vec![self.value.as_str()]),
            (MatchOp::Regex, Some(MatchStrategy::Literal(l))) => Some(vec![l.as_str()]),
            (MatchOp::Regex, Some(MatchStrategy::SmallSet(v))) => {
                Some(v.iter().map(String::as_str).collect())
            }
            (MatchOp::Regex, Some(MatchStrategy::Set(s))) => {
                Some(s.iter().map(String::as_str).collect())
            }
            _ => None,
        }
    }

    /// For a regex matcher with a literal prefix (`foo.*`), that prefix.
    pub fn prefix(&self) -> Option<&str> {
        match &self.strategy {
            Some(MatchStrategy::Prefix(p)) => Some(p),
            _ => None,
        }
    }
}

/// True for characters that make a pattern more than a literal.
fn is_meta(c: char) -> bool {
    regex_syntax::is_meta_character(c)
}

/// Picks the fastest strategy that is exactly equivalent to `^(?s:p)$`.
fn compile(p: &str) -> Result<MatchStrategy, MatcherError> {
    // Always compile the full regex first: an invalid pattern is an error
    // even where a fast path would have matched it.
    let re = compile_anchored(p)?;
    if p == ".*" {
        return Ok(MatchStrategy::Any);
    }
    if p == ".+" {
        return Ok(MatchStrategy::NonEmpty);
    }
    if !p.chars().any(is_meta) {
        return Ok(MatchStrategy::Literal(p.to_string()));
    }
    if !p.contains(|c: char| is_meta(c) && c != '|') {
        let alts: Vec<String> = p.split('|').map(str::to_string).collect();
        return Ok(if alts.len() <= 16 {
            MatchStrategy::SmallSet(alts)
        } else {
            MatchStrategy::Set(alts.into_iter().collect())
        });
    }
    let literal = |s: &str| !s.is_empty() && !s.chars().any(is_meta);
    if let Some(inner) = p.strip_prefix(".*").and_then(|s| s.strip_suffix(".*")) {
        if literal(inner) {
            return Ok(MatchStrategy::Contains(inner.to_string()));
        }
    }
    if let Some(prefix) = p.strip_suffix(".*") {
        if literal(prefix) {
            return Ok(MatchStrategy::Prefix(prefix.to_string()));
        }
    }
    if let Some(suffix) = p.strip_prefix(".*") {
        if literal(suffix) {
            return Ok(MatchStrategy::Suffix(suffix.to_string()));
        }
    }
    Ok(MatchStrategy::Regex(re))
}

/// Compiled patterns kept by [`compile_anchored`], at most this many.
const REGEX_CACHE_SIZE: usize = 512;

/// Compiles `p` as Prometheus 3 does: `^(?s:p)$`, with Go's ASCII classes.
///
/// Compiling costs far more than matching a few values (100-200 µs for a
/// pattern like `node_memory_.+_bytes`, more than the rest of a selective
/// query), and the same queries come again and again (dashboards, rules),
/// so compiled patterns are kept in a small process-wide cache, emptied
/// when full. A `Regex` shares its compiled program between clones.
pub fn compile_anchored(p: &str) -> Result<Regex, MatcherError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.lock().ok().and_then(|c| c.get(p).cloned()) {
        return Ok(re);
    }
    let translated = translate_go_regex(p);
    let re = Regex::new(&format!("^(?s:{translated})$")).map_err(|source| {
        MatcherError::InvalidRegex {
            pattern: p.to_string(),
            source,
        }
    })?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= REGEX_CACHE_SIZE {
            c.clear();
        }
        c.insert(p.to_string(), re.clone());
    }
    Ok(re)
}

/// Rewrites the Perl classes `\d \D \w \W \s \S \b \B` of an RE2 pattern to
/// the ASCII-only forms Go gives them. Everything else passes through.
pub fn translate_go_regex(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (in_class, e) {
                    (false, 'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'b' | 'B') => {
                        out.push_str("(?-u:\\");
                        out.push(e);
                        out.push(')');
                    }
                    (true, 'd') => out.push_str("0-9"),
                    (true, 'w') => out.push_str("0-9A-Za-z_"),
                    (true, 's') => out.push_str("\\t\\n\\x0C\\r "),
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A ']' (after an optional '^') right at the start is literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if in_class => {
                // A nested POSIX class like [:alpha:] stays as it is.
                out.push('[');
                if chars.peek() == Some(&':') {
                    for c2 in chars.by_ref() {
                        out.push(c2);
                        if c2 == ']' {
                            break;
                        }
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The cache of compiled patterns gives the same answers, and an
    /// invalid pattern stays an error every time.
    #[test]
    fn compiled_patterns_are_cached_faithfully() {
        for _ in 0..2 {
            let re = compile_anchored("node_memory_.+_bytes").unwrap();
            assert!(re.is_match("node_memory_Active_bytes"));
            assert!(!re.is_match("xnode_memory_Active_bytes"));
            assert!(compile_anchored("a(").is_err());
        }
        for i in 0..(REGEX_CACHE_SIZE + 10) {
            let re = compile_anchored(&format!("x{i}|y")).unwrap();
            assert!(re.is_match(&format!("x{i}")) && !re.is_match("x"));
        }
    }

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "l", v).unwrap()
    }

    #[test]
    fn anchored_and_dot_matches_newline() {
        let r = m(MatchOp::Regex, "a.c");
        assert!(r.matches("abc"));
        assert!(r.matches("a\nc"));
        assert!(!r.matches("xabc"));
        assert!(!r.matches("abcx"));
        assert!(m(MatchOp::Regex, ".*").matches("x\ny"));
        assert!(m(MatchOp::NotRegex, "a|b").matches("c"));
        assert!(!m(MatchOp::NotRegex, "a|b").matches("a"));
    }

    #[test]
    fn fast_paths_are_chosen() {
        assert!(matches!(
            m(MatchOp::Regex, ".*").strategy,
            Some(MatchStrategy::Any)
        ));
        assert!(matches!(
            m(MatchOp::Regex, ".+").strategy,
            Some(MatchStrategy::NonEmpty)
        ));
        assert!(matches!(
            m(MatchOp::Regex, "foo").strategy,
            Some(MatchStrategy::Literal(_))
        ));
        assert!(matches!(
            m(MatchOp::Regex, "a|bb|c").strategy,
            Some(MatchStrategy::SmallSet(_))
        ));
        assert!(matches!(
            m(MatchOp::Regex, "foo.*").strategy,
            Some(MatchStrategy::Prefix(_))
        ));
        assert!(matches!(
            m(MatchOp::Regex, ".*foo").strategy,
            Some(MatchStrategy::Suffix(_))
        ));
        assert!(matches!(
            m(MatchOp::Regex, ".*foo.*").strategy,
            Some(MatchStrategy::Contains(_))
        ));
        assert!(matches!(
            m(MatchOp::Regex, "fo+").strategy,
            Some(MatchStrategy::Regex(_))
        ));
        let many: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
        let big = m(MatchOp::Regex, &many.join("|"));
        assert!(matches!(big.strategy, Some(MatchStrategy::Set(_))));
        assert!(big.matches("v39"));
        assert!(!big.matches("v40"));
        assert_eq!(big.set_matches().map(|v| v.len()), Some(40));
    }

    #[test]
    fn empty_matching() {
        assert!(m(MatchOp::Regex, "").matches_empty());
        assert!(m(MatchOp::Regex, "a|").matches_empty());
        assert!(!m(MatchOp::Regex, ".+").matches_empty());
        assert!(m(MatchOp::NotEqual, "x").matches_empty());
        assert!(m(MatchOp::Equal, "").matches_empty());
    }

    #[test]
    fn invalid_regex_is_a_typed_error() {
        let e = Matcher::new(MatchOp::Regex, "l", "a(").unwrap_err();
        assert!(e.to_string().contains("invalid regular expression"));
        // Even where a fast path would have applied.
        assert!(Matcher::new(MatchOp::Regex, "l", "(.*").is_err());
    }

    #[test]
    fn go_ascii_classes() {
        let d = m(MatchOp::Regex, "\\d+");
        assert!(d.matches("123"));
        assert!(!d.matches("١٢٣")); // Arabic-Indic digits: Unicode \d, not RE2's.
        let w = m(MatchOp::Regex, "[\\w.]+");
        assert!(w.matches("a_b.c9"));
        assert!(!w.matches("é"));
        let s = m(MatchOp::Regex, "a\\sb");
        assert!(s.matches("a b"));
        assert!(!s.matches("a\u{a0}b"));
        assert!(m(MatchOp::Regex, "[]a]+").matches("]a"));
        assert!(m(MatchOp::Regex, "[[:alpha:]]+").matches("abc"));
    }

    /// Patterns built from a small alphabet, so that fast paths are hit.
    fn pattern() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ab]{0,3}",
            "[ab]{1,2}(\\|[ab]{0,2}){1,3}",
            "[ab]{1,2}\\.\\*",
            "\\.\\*[ab]{1,2}",
            "\\.\\*[ab]{1,2}\\.\\*",
            Just(".*".to_string()),
            Just(".+".to_string()),
            "[ab.*+|]{0,5}",
        ]
    }

    proptest! {
        /// Every fast path agrees with the plain anchored regex.
        #[test]
        fn prop_matches_naive_oracle(p in pattern(), s in "[ab\n]{0,4}") {
            let Ok(re) = Regex::new(&format!("^(?s:{p})$")) else {
                prop_assert!(Matcher::new(MatchOp::Regex, "l", p.as_str()).is_err());
                return Ok(());
            };
            let mr = m(MatchOp::Regex, &p);
            let mn = m(MatchOp::NotRegex, &p);
            prop_assert_eq!(mr.matches(&s), re.is_match(&s));
            prop_assert_eq!(mn.matches(&s), !re.is_match(&s));
            prop_assert_eq!(m(MatchOp::Equal, &p).matches(&s), s == p);
            prop_assert_eq!(m(MatchOp::NotEqual, &p).matches(&s), s != p);
            if let Some(set) = mr.set_matches() {
                prop_assert_eq!(set.contains(&s.as_str()), re.is_match(&s));
            }
        }
    }
}
