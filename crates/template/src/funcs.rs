//! The functions a template can call: Go's builtins and Prometheus's
//! template functions, plus the methods of `*time.Time` and
//! `*time.Duration` values.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::rc::Rc;

use regex::{Regex, RegexBuilder};

use super::gofmt::{self, format_float};
use super::gotime;
use super::value::{pairs_string, sorted_pairs, SampleV, Value, Zone};
use super::QueryFn;

/// Every function name a template may call.
const FUNCTIONS: &[&str] = &[
    // Go builtins.
    "and",
    "call",
    "eq",
    "ge",
    "gt",
    "html",
    "index",
    "js",
    "le",
    "len",
    "lt",
    "ne",
    "not",
    "or",
    "print",
    "printf",
    "println",
    "slice",
    "urlquery",
    // Prometheus.
    "args",
    "externalURL",
    "first",
    "graphLink",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "label",
    "match",
    "now",
    "parseDuration",
    "pathPrefix",
    "query",
    "reReplaceAll",
    "safeHtml",
    "sortByLabel",
    "strvalue",
    "stripDomain",
    "stripPort",
    "tableLink",
    "title",
    "toDuration",
    "toLower",
    "toTime",
    "toUpper",
    "value",
];

/// The functions of Alertmanager's notification templates besides Go's
/// builtins (its `DefaultFuncs`, plus Prometheus's humanizers).
const AM_FUNCTIONS: &[&str] = &[
    "date",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "join",
    "match",
    "now",
    "reReplaceAll",
    "safeHtml",
    "safeUrl",
    "since",
    "stringSlice",
    "title",
    "toJson",
    "toLower",
    "toUpper",
    "trimSpace",
    "tz",
    "urlUnescape",
];

/// How many of [`FUNCTIONS`] are Go's builtins (they come first).
const GO_BUILTINS: usize = 19;

/// Which function set (and semantics of shared names) a template uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Prometheus's rule templates.
    Prometheus,
    /// Alertmanager's notification templates: `now` is a time, `title`
    /// lower-cases the rest of each word.
    Alertmanager,
}

/// Whether `name` is a function templates of `dialect` can call.
pub(crate) fn is_function(name: &str, dialect: Dialect) -> bool {
    match dialect {
        Dialect::Prometheus => FUNCTIONS.contains(&name),
        Dialect::Alertmanager => {
            FUNCTIONS[..GO_BUILTINS].contains(&name) || AM_FUNCTIONS.contains(&name)
        }
    }
}

/// At most this many compiled regexes are cached per render.
const REGEX_CACHE: usize = 64;
/// Compiled regexes may use at most this much memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What functions need from the renderer.
pub(crate) struct Env<'a> {
    pub query: &'a dyn QueryFn,
    pub queries_left: usize,
    pub max_queries: usize,
    pub now: f64,
    pub external_url: Rc<str>,
    pub regexes: HashMap<String, Regex>,
    pub dialect: Dialect,
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn want_at_least(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() < n {
        return Err(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn calling(name: &str, msg: impl std::fmt::Display) -> String {
    format!("error calling {name}: {msg}")
}

fn wrong_type(expected: &str, got: &Value) -> String {
    match got {
        Value::Nil => format!("invalid value; expected {expected}"),
        v => format!(
            "wrong type for value; expected {expected}; got {}",
            v.type_name()
        ),
    }
}

fn string_arg(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        v => Err(wrong_type("string", v)),
    }
}

fn samples_arg(v: &Value) -> Result<&Rc<Vec<Rc<SampleV>>>, String> {
    match v {
        Value::Samples(s) => Ok(s),
        v => Err(wrong_type("template.queryResult", v)),
    }
}

fn sample_arg(v: &Value) -> Result<&SampleV, String> {
    match v {
        Value::Sample(s) => Ok(s),
        Value::Nil => {
            Err("runtime error: invalid memory address or nil pointer dereference".into())
        }
        v => Err(wrong_type("*template.sample", v)),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` with its error text.
pub(crate) fn parse_float(s: &str) -> Result<f64, String> {
    let syntax = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            gofmt::quote(s, false)
        )
    };
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    if !special
        && !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(syntax());
    }
    let v: f64 = s.parse().map_err(|_| syntax())?;
    if v.is_infinite() && !special {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            gofmt::quote(s, false)
        ));
    }
    Ok(v)
}

/// Prometheus's `ConvertToFloat`.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_float(s),
        // Prometheus converts a time.Duration to seconds.
        Value::Duration(ns) => Ok(*ns as f64 / 1e9),
        v => Err(format!("can't convert {} to float", v.type_name())),
    }
}

fn g4(v: f64) -> String {
    format_float(v, 'g', Some(4))
}

pub(crate) fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let mut v = v;
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    let mut v = v;
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        // Go's int64(v) saturates differently, but values past i64 are
        // centuries of centuries; `as` saturates.
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86_400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

enum TimeErr {
    NaNOrInf,
    Other(String),
}

/// Prometheus's `FloatToTime`: Unix seconds to a UTC time, truncated to
/// milliseconds as `model.Time` is.
fn float_to_time(v: f64) -> Result<i64, TimeErr> {
    if !v.is_finite() {
        return Err(TimeErr::NaNOrInf);
    }
    let ts = v * 1e9;
    if ts > i64::MAX as f64 || ts < i64::MIN as f64 {
        return Err(TimeErr::Other(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            gofmt::sprint_one(&Value::Float(v))
        )));
    }
    let ms = (ts as i64) / 1_000_000;
    Ok(ms * 1_000_000)
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, j, k);
    if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        host = &hp[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        j = 0;
        k = 0;
    }
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `cases.Title(language.AmericanEnglish, cases.NoLower)`: upper-cases the
/// first letter of each word and leaves the rest alone.
pub(crate) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut prev2: Option<char> = None;
    for c in s.chars() {
        let in_word = match prev {
            None => false,
            Some(p) if p.is_alphanumeric() || p == '_' => true,
            // An apostrophe between letters does not start a new word.
            Some('\'') | Some('’') => prev2.is_some_and(char::is_alphanumeric),
            Some(_) => false,
        };
        if !in_word && c.is_alphabetic() {
            out.extend(upper_rune(c));
        } else {
            out.push(c);
        }
        prev2 = prev;
        prev = Some(c);
    }
    out
}

/// Go's rune-by-rune `unicode.ToUpper`: a rune whose upper case is not a
/// single rune is kept.
fn upper_rune(c: char) -> Option<char> {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(x), None) => Some(x),
        _ => Some(c),
    }
}

fn lower_rune(c: char) -> char {
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid pattern")
        .trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

impl Env<'_> {
    fn regex(&mut self, pattern: &str) -> Result<Regex, String> {
        if let Some(r) = self.regexes.get(pattern) {
            return Ok(r.clone());
        }
        let re = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("error parsing regexp: {}: `{pattern}`", regex_error(&e)))?;
        if self.regexes.len() < REGEX_CACHE {
            self.regexes.insert(pattern.to_string(), re.clone());
        }
        Ok(re)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Invalid,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";
const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

fn eq(a: &Value, rest: &[Value]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = kind(a);
    for b in rest {
        let k2 = kind(b);
        let truth = if k1 != k2 {
            if !matches!(a, Value::Nil) && !matches!(b, Value::Nil) {
                return Err(BAD_COMPARISON.into());
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                (Value::Nil, _) | (_, Value::Nil) => {
                    matches!(a, Value::Nil) && matches!(b, Value::Nil)
                }
                (Value::StrMap(_), _)
                | (Value::AnyMap(_), _)
                | (Value::Samples(_), _)
                | (Value::Kv(_), _)
                | (Value::Pairs(_), _)
                | (Value::List(_), _) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        gofmt::sprint_one(a),
                        a.type_name()
                    ));
                }
                (x, y) => x.type_name() == y.type_name() && x == y,
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (kind(a), kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err(BAD_COMPARISON_TYPE.into());
    }
    if k1 != k2 {
        return Err(BAD_COMPARISON.into());
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => x < y,
        _ => return Err(BAD_COMPARISON_TYPE.into()),
    })
}

fn index_arg(v: &Value, size: usize) -> Result<usize, String> {
    let x = match v {
        Value::Int(i) => *i,
        Value::Nil => return Err("cannot index slice/array with nil".into()),
        v => {
            return Err(format!(
                "cannot index slice/array with type {}",
                v.type_name()
            ))
        }
    };
    if x < 0 || x as u64 > size as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index(item: &Value, idx: &[Value]) -> Result<Value, String> {
    let mut item = item.clone();
    for i in idx {
        item = match &item {
            Value::Nil => return Err("index of untyped nil".into()),
            Value::Samples(s) => {
                let x = index_arg(i, s.len())?;
                match s.get(x) {
                    Some(smp) => Value::Sample(smp.clone()),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Str(s) => {
                let x = index_arg(i, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Int(i64::from(*b)),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::StrMap(m) => {
                let k = match i {
                    Value::Str(k) => k,
                    Value::Nil => return Err("value is nil; should be of type string".into()),
                    v => {
                        return Err(format!(
                            "value has type {}; should be string",
                            v.type_name()
                        ))
                    }
                };
                Value::str(m.get(&**k).map_or("", String::as_str))
            }
            Value::AnyMap(m) => {
                let k = match i {
                    Value::Str(k) => k,
                    Value::Nil => return Err("value is nil; should be of type string".into()),
                    v => {
                        return Err(format!(
                            "value has type {}; should be string",
                            v.type_name()
                        ))
                    }
                };
                m.get(&**k).cloned().unwrap_or(Value::Nil)
            }
            Value::List(l) => {
                let x = index_arg(i, l.len())?;
                match l.get(x) {
                    Some(v) => v.clone(),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Pairs(p) => {
                let x = index_arg(i, p.len())?;
                match p.get(x) {
                    Some(v) => Value::Pair(Rc::new(v.clone())),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Kv(m) => {
                let k = match i {
                    Value::Str(k) => k,
                    Value::Nil => return Err("value is nil; should be of type string".into()),
                    v => {
                        return Err(format!(
                            "value has type {}; should be string",
                            v.type_name()
                        ))
                    }
                };
                Value::str(m.get(&**k).map_or("", String::as_str))
            }
            Value::Sample(_) => return Err("can't index item of type template.sample".into()),
            v => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

fn slice(item: &Value, idx: &[Value]) -> Result<Value, String> {
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let len = match item {
        Value::Nil => return Err("slice of untyped nil".into()),
        Value::Str(s) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::Samples(s) => s.len(),
        Value::List(l) => l.len(),
        v => return Err(format!("can't slice item of type {}", v.type_name())),
    };
    let mut bounds = [0, len, len];
    for (n, i) in idx.iter().enumerate() {
        bounds[n] = index_arg(i, len)?;
    }
    if bounds[0] > bounds[1] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    if idx.len() == 3 && bounds[1] > bounds[2] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[1], bounds[2]
        ));
    }
    Ok(match item {
        Value::Str(s) => {
            Value::str(String::from_utf8_lossy(&s.as_bytes()[bounds[0]..bounds[1]]).into_owned())
        }
        Value::Samples(s) => Value::Samples(Rc::new(s[bounds[0]..bounds[1]].to_vec())),
        Value::List(l) => Value::List(Rc::new(l[bounds[0]..bounds[1]].to_vec())),
        _ => Value::Nil,
    })
}

fn len(v: &Value) -> Result<Value, String> {
    let n = match v {
        Value::Str(s) => s.len(),
        Value::StrMap(m) => m.len(),
        Value::AnyMap(m) => m.len(),
        Value::Samples(s) => s.len(),
        Value::Kv(m) => m.len(),
        Value::Pairs(p) => p.len(),
        Value::List(l) => l.len(),
        Value::Nil => return Err("len of nil pointer".into()),
        Value::Sample(_) => return Err("len of type template.sample".into()),
        v => return Err(format!("len of type {}", v.type_name())),
    };
    Ok(Value::Int(n as i64))
}

/// The text that `html`, `js` and `urlquery` escape.
fn eval_args(args: &[Value]) -> String {
    match args {
        [Value::Str(s)] => s.to_string(),
        args => gofmt::sprint(args),
    }
}

fn url_path(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            match after.find(['/', '?', '#']) {
                Some(j) => &after[j..],
                None => "",
            }
        }
        None => url,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// Calls the function `name` (any but `and`/`or`, which the executor
/// short-circuits) with evaluated arguments.
pub(crate) fn call(env: &mut Env<'_>, name: &str, args: Vec<Value>) -> Result<Value, String> {
    let a = &args;
    let str1 = |f: fn(&str) -> String| -> Result<Value, String> {
        want(name, a, 1)?;
        Ok(Value::str(f(string_arg(&a[0])?)))
    };
    let float1 = |f: fn(f64) -> String| -> Result<Value, String> {
        want(name, a, 1)?;
        let v = to_float(&a[0]).map_err(|e| calling(name, e))?;
        Ok(Value::str(f(v)))
    };
    if env.dialect == Dialect::Alertmanager {
        if let Some(r) = call_alertmanager(env, name, a) {
            return r;
        }
    }
    match name {
        "not" => {
            want(name, a, 1)?;
            Ok(Value::Bool(!a[0].truth()))
        }
        "len" => {
            want(name, a, 1)?;
            len(&a[0]).map_err(|e| calling(name, e))
        }
        "index" => {
            want_at_least(name, a, 1)?;
            index(&a[0], &a[1..]).map_err(|e| calling(name, e))
        }
        "slice" => {
            want_at_least(name, a, 1)?;
            slice(&a[0], &a[1..]).map_err(|e| calling(name, e))
        }
        "print" => Ok(Value::str(gofmt::sprint(a))),
        "println" => Ok(Value::str(gofmt::sprintln(a))),
        "printf" => {
            want_at_least(name, a, 1)?;
            Ok(Value::str(gofmt::sprintf(string_arg(&a[0])?, &a[1..])))
        }
        "html" => Ok(Value::str(html_escape(&eval_args(a)))),
        "js" => Ok(Value::str(js_escape(&eval_args(a)))),
        "urlquery" => Ok(Value::str(query_escape(&eval_args(a)))),
        "call" => {
            want_at_least(name, a, 1)?;
            Err(calling(
                name,
                match &a[0] {
                    Value::Nil => "call of nil".to_string(),
                    v => format!(
                        "non-function {} of type {}",
                        gofmt::sprint_one(v),
                        v.type_name()
                    ),
                },
            ))
        }
        "eq" => {
            want_at_least(name, a, 1)?;
            eq(&a[0], &a[1..])
                .map(Value::Bool)
                .map_err(|e| calling(name, e))
        }
        "ne" => {
            want(name, a, 2)?;
            eq(&a[0], &a[1..])
                .map(|b| Value::Bool(!b))
                .map_err(|e| calling(name, e))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, a, 2)?;
            let r = (|| -> Result<bool, String> {
                Ok(match name {
                    "lt" => lt(&a[0], &a[1])?,
                    "le" => lt(&a[0], &a[1])? || eq(&a[0], &a[1..])?,
                    "gt" => !(lt(&a[0], &a[1])? || eq(&a[0], &a[1..])?),
                    _ => !lt(&a[0], &a[1])?,
                })
            })();
            r.map(Value::Bool).map_err(|e| calling(name, e))
        }

        // Prometheus functions.
        "query" => {
            want(name, a, 1)?;
            let q = string_arg(&a[0])?;
            if env.queries_left == 0 {
                return Err(calling(
                    name,
                    format!(
                        "too many queries in one template expansion (limit {})",
                        env.max_queries
                    ),
                ));
            }
            env.queries_left -= 1;
            let res = env.query.query(q).map_err(|e| calling(name, e))?;
            let samples = res
                .into_iter()
                .map(|s| {
                    Rc::new(SampleV {
                        labels: super::value::labels_map(&s.labels),
                        value: s.value,
                    })
                })
                .collect();
            Ok(Value::Samples(Rc::new(samples)))
        }
        "first" => {
            want(name, a, 1)?;
            let s = samples_arg(&a[0])?;
            match s.first() {
                Some(x) => Ok(Value::Sample(x.clone())),
                None => Err(calling(name, "first() called on vector with no elements")),
            }
        }
        "label" => {
            want(name, a, 2)?;
            let l = string_arg(&a[0])?;
            let s = sample_arg(&a[1]).map_err(|e| calling(name, e))?;
            Ok(Value::str(s.labels.get(l).map_or("", String::as_str)))
        }
        "value" => {
            want(name, a, 1)?;
            Ok(Value::Float(
                sample_arg(&a[0]).map_err(|e| calling(name, e))?.value,
            ))
        }
        "strvalue" => {
            want(name, a, 1)?;
            let s = sample_arg(&a[0]).map_err(|e| calling(name, e))?;
            Ok(Value::str(
                s.labels.get("__value__").map_or("", String::as_str),
            ))
        }
        "sortByLabel" => {
            want(name, a, 2)?;
            let l = string_arg(&a[0])?;
            let mut v: Vec<Rc<SampleV>> = samples_arg(&a[1])?.to_vec();
            let key = |s: &Rc<SampleV>| s.labels.get(l).cloned().unwrap_or_default();
            v.sort_by_key(key);
            Ok(Value::Samples(Rc::new(v)))
        }
        "args" => {
            let m: BTreeMap<String, Value> = a
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect();
            Ok(Value::AnyMap(Rc::new(m)))
        }
        "reReplaceAll" => {
            want(name, a, 3)?;
            let (p, repl, text) = (string_arg(&a[0])?, string_arg(&a[1])?, string_arg(&a[2])?);
            let re = env
                .regex(p)
                .map_err(|e| format!("regexp: Compile({}): {e}", gofmt::quote(p, false)))?;
            Ok(Value::str(re.replace_all(text, repl).into_owned()))
        }
        "match" => {
            want(name, a, 2)?;
            let (p, text) = (string_arg(&a[0])?, string_arg(&a[1])?);
            let re = env.regex(p).map_err(|e| calling(name, e))?;
            Ok(Value::Bool(re.is_match(text)))
        }
        "safeHtml" => str1(|s| s.to_string()),
        "title" => str1(title),
        "toUpper" => str1(|s| s.chars().map(|c| upper_rune(c).unwrap_or(c)).collect()),
        "toLower" => str1(|s| s.chars().map(lower_rune).collect()),
        "graphLink" => str1(|s| format!("/graph?g0.expr={}&g0.tab=0", query_escape(s))),
        "tableLink" => str1(|s| format!("/graph?g0.expr={}&g0.tab=1", query_escape(s))),
        "stripPort" => str1(|s| match split_host_port(s) {
            Some((host, _)) => host.to_string(),
            None => s.to_string(),
        }),
        "stripDomain" => str1(|s| {
            let (host, port) = split_host_port(s).unwrap_or((s, ""));
            if host.parse::<IpAddr>().is_ok() {
                return s.to_string();
            }
            let host = host.split('.').next().unwrap_or("");
            if port.is_empty() {
                host.to_string()
            } else {
                join_host_port(host, port)
            }
        }),
        "humanize" => float1(humanize),
        "humanize1024" => float1(humanize1024),
        "humanizeDuration" => float1(humanize_duration),
        "humanizePercentage" => float1(|v| format!("{}%", g4(v * 100.0))),
        "humanizeTimestamp" => {
            want(name, a, 1)?;
            let v = to_float(&a[0]).map_err(|e| calling(name, e))?;
            match float_to_time(v) {
                Ok(ns) => Ok(Value::str(gotime::time_string(ns))),
                Err(TimeErr::NaNOrInf) => Ok(Value::str(g4(v))),
                Err(TimeErr::Other(e)) => Err(calling(name, e)),
            }
        }
        "toTime" => {
            want(name, a, 1)?;
            let v = to_float(&a[0]).map_err(|e| calling(name, e))?;
            match float_to_time(v) {
                Ok(ns) => Ok(Value::Time(ns)),
                Err(TimeErr::NaNOrInf) => Err(calling(name, "value is NaN or Inf")),
                Err(TimeErr::Other(e)) => Err(calling(name, e)),
            }
        }
        "toDuration" => {
            want(name, a, 1)?;
            let v = to_float(&a[0]).map_err(|e| calling(name, e))?;
            if !v.is_finite() {
                return Err(calling(name, "value is NaN or Inf"));
            }
            let d = v * 1e9;
            if d > i64::MAX as f64 || d < i64::MIN as f64 {
                return Err(calling(
                    name,
                    format!(
                        "{} cannot be represented as a nanoseconds duration since it overflows int64",
                        gofmt::sprint_one(&Value::Float(v))
                    ),
                ));
            }
            Ok(Value::Duration(d as i64))
        }
        "parseDuration" => {
            want(name, a, 1)?;
            let ms =
                vigil_model::parse_duration(string_arg(&a[0])?).map_err(|e| calling(name, e))?;
            Ok(Value::Float(ms as f64 / 1000.0))
        }
        "now" => {
            want(name, a, 0)?;
            Ok(Value::Float(env.now))
        }
        "pathPrefix" => {
            want(name, a, 0)?;
            Ok(Value::str(url_path(&env.external_url)))
        }
        "externalURL" => {
            want(name, a, 0)?;
            Ok(Value::Str(env.external_url.clone()))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// Calls a method of a `*time.Time` or `*time.Duration` receiver; `None`
/// when the receiver has no such method.
pub(crate) fn call_method(
    recv: &Value,
    name: &str,
    args: &[Value],
) -> Option<Result<Value, String>> {
    if let Some(r) = call_am_method(recv, name, args) {
        return Some(r);
    }
    if let Value::ZTime(ns, z) = recv {
        return call_zoned_time_method(*ns, z, name, args);
    }
    let zero = |v: Value| -> Result<Value, String> {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!(
                "wrong number of args for {name}: want 0 got {}",
                args.len()
            ))
        }
    };
    match recv {
        Value::Time(ns) => {
            let c = gotime::civil(*ns);
            let (secs, _) = gotime::split(*ns);
            Some(match name {
                "Format" => {
                    if args.len() != 1 {
                        return Some(Err(format!(
                            "wrong number of args for Format: want 1 got {}",
                            args.len()
                        )));
                    }
                    match string_arg(&args[0]) {
                        Ok(layout) => Ok(Value::str(gotime::format(*ns, layout))),
                        Err(e) => Err(e),
                    }
                }
                "String" => zero(Value::str(gotime::time_string(*ns))),
                "Unix" => zero(Value::Int(secs)),
                "UnixMilli" => zero(Value::Int(ns.div_euclid(1_000_000))),
                "UnixMicro" => zero(Value::Int(ns.div_euclid(1_000))),
                "UnixNano" => zero(Value::Int(*ns)),
                "UTC" | "Local" => zero(Value::Time(*ns)),
                "Year" => zero(Value::Int(c.year)),
                "Month" => zero(Value::Int(i64::from(c.month))),
                "Day" => zero(Value::Int(i64::from(c.day))),
                "Hour" => zero(Value::Int(i64::from(c.hour))),
                "Minute" => zero(Value::Int(i64::from(c.minute))),
                "Second" => zero(Value::Int(i64::from(c.second))),
                "Nanosecond" => zero(Value::Int(i64::from(c.nanos))),
                "YearDay" => zero(Value::Int(i64::from(c.yday))),
                "Weekday" => zero(Value::Int(i64::from(c.weekday))),
                "IsZero" => zero(Value::Bool(*ns == gotime::ZERO_TIME)),
                _ => return None,
            })
        }
        Value::Duration(ns) => Some(match name {
            "String" => zero(Value::str(gotime::duration_string(*ns))),
            "Seconds" => zero(Value::Float(*ns as f64 / 1e9)),
            "Minutes" => zero(Value::Float(*ns as f64 / 6e10)),
            "Hours" => zero(Value::Float(*ns as f64 / 3.6e12)),
            "Milliseconds" => zero(Value::Int(ns / 1_000_000)),
            "Microseconds" => zero(Value::Int(ns / 1_000)),
            "Nanoseconds" => zero(Value::Int(*ns)),
            "Abs" => zero(Value::Duration(if *ns == i64::MIN {
                i64::MAX
            } else {
                ns.abs()
            })),
            _ => return None,
        }),
        _ => None,
    }
}

/// The methods of a `time.Time` in a zone: those whose result depends on
/// the zone; the rest are the UTC time's.
fn call_zoned_time_method(
    ns: i64,
    z: &Rc<Zone>,
    name: &str,
    args: &[Value],
) -> Option<Result<Value, String>> {
    let zero = |v: Value| -> Result<Value, String> {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!(
                "wrong number of args for {name}: want 0 got {}",
                args.len()
            ))
        }
    };
    let c = gotime::civil_in(ns, z.offset_secs);
    Some(match name {
        "Format" => {
            if args.len() != 1 {
                return Some(Err(format!(
                    "wrong number of args for Format: want 1 got {}",
                    args.len()
                )));
            }
            string_arg(&args[0])
                .map(|layout| Value::str(gotime::format_in(ns, z.offset_secs, &z.abbr, layout)))
        }
        "String" => zero(Value::str(gotime::time_string_in(
            ns,
            z.offset_secs,
            &z.abbr,
        ))),
        "UTC" => zero(Value::Time(ns)),
        "Local" => zero(Value::ZTime(ns, z.clone())),
        "Year" => zero(Value::Int(c.year)),
        "Month" => zero(Value::Int(i64::from(c.month))),
        "Day" => zero(Value::Int(i64::from(c.day))),
        "Hour" => zero(Value::Int(i64::from(c.hour))),
        "Minute" => zero(Value::Int(i64::from(c.minute))),
        "Second" => zero(Value::Int(i64::from(c.second))),
        "YearDay" => zero(Value::Int(i64::from(c.yday))),
        "Weekday" => zero(Value::Int(i64::from(c.weekday))),
        _ => return call_method(&Value::Time(ns), name, args),
    })
}

/// Every function name, for the property tests.
#[cfg(test)]
pub(crate) fn tests_function_names() -> Vec<&'static str> {
    FUNCTIONS.to_vec()
}

/// `cases.Title(language.AmericanEnglish)`: upper-cases the first letter of
/// each word and lower-cases the rest (Alertmanager's `title`).
pub(crate) fn title_lower(s: &str) -> String {
    let t = title(s);
    let mut out = String::with_capacity(t.len());
    let mut prev: Option<char> = None;
    let mut prev2: Option<char> = None;
    for c in t.chars() {
        let in_word = match prev {
            None => false,
            Some(p) if p.is_alphanumeric() || p == '_' => true,
            Some('\'') | Some('’') => prev2.is_some_and(char::is_alphanumeric),
            Some(_) => false,
        };
        if in_word {
            out.push(lower_rune(c));
        } else {
            out.push(c);
        }
        prev2 = prev;
        prev = Some(c);
    }
    out
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).filter(|h| h.len() == 2);
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                        out.push(v);
                        i += 3;
                    }
                    _ => {
                        let bad: String = s[i..].chars().take(3).collect();
                        return Err(format!("invalid URL escape {}", gofmt::quote(&bad, false)));
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A list of strings as `[]string` arguments take it.
fn string_list(name: &str, v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::List(l) => l
            .iter()
            .map(|x| match x {
                Value::Str(s) => Ok(s.to_string()),
                other => Err(calling(name, wrong_type("string", other))),
            })
            .collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!(
            "wrong type for value; expected []string; got {}",
            other.type_name()
        )),
    }
}

/// A time argument: Unix nanoseconds and its zone (`None`: UTC).
fn time_arg(v: &Value) -> Result<(i64, Option<Rc<Zone>>), String> {
    match v {
        Value::Time(ns) => Ok((*ns, None)),
        Value::ZTime(ns, z) => Ok((*ns, Some(z.clone()))),
        v => Err(wrong_type("time.Time", v)),
    }
}

/// Go's `encoding/json` string encoding (with its HTML-safe escapes).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `json.Marshal` of a template value.
fn to_json(v: &Value, out: &mut String, depth: usize) -> Result<(), String> {
    if depth > 100 {
        return Err("json: value nested too deeply".into());
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    gofmt::sprint_one(&Value::Float(*f))
                ));
            }
            let a = f.abs();
            if a != 0.0 && !(1e-6..1e21).contains(&a) {
                let e = format_float(*f, 'e', None);
                // Go writes e-07, not e-07's two-digit form... it trims "e-0" to "e-".
                out.push_str(&e.replace("e-0", "e-").replace("e+0", "e+"));
            } else {
                out.push_str(&format_float(*f, 'f', None));
            }
        }
        Value::Str(s) => json_string(s, out),
        Value::Time(ns) => {
            json_string(&gotime::format(*ns, RFC3339_NANO), out);
        }
        Value::ZTime(ns, z) => {
            json_string(
                &gotime::format_in(*ns, z.offset_secs, &z.abbr, RFC3339_NANO),
                out,
            );
        }
        Value::Duration(ns) => out.push_str(&ns.to_string()),
        Value::StrMap(m) | Value::Kv(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                json_string(x, out);
            }
            out.push('}');
        }
        Value::AnyMap(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                to_json(x, out, depth + 1)?;
            }
            out.push('}');
        }
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(x, out, depth + 1)?;
            }
            out.push(']');
        }
        Value::Pairs(p) => {
            out.push('[');
            for (i, (k, x)) in p.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"Name\":");
                json_string(k, out);
                out.push_str(",\"Value\":");
                json_string(x, out);
                out.push('}');
            }
            out.push(']');
        }
        Value::Pair(p) => {
            out.push_str("{\"Name\":");
            json_string(&p.0, out);
            out.push_str(",\"Value\":");
            json_string(&p.1, out);
            out.push('}');
        }
        Value::Sample(_) | Value::Samples(_) | Value::Root(_) => {
            return Err(format!("json: unsupported type: {}", v.type_name()))
        }
    }
    Ok(())
}

const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// The functions whose Alertmanager meaning differs from Prometheus's or
/// that only Alertmanager has; `None` for the shared ones.
fn call_alertmanager(env: &mut Env<'_>, name: &str, a: &[Value]) -> Option<Result<Value, String>> {
    let str1 = |f: &dyn Fn(&str) -> String| -> Result<Value, String> {
        want(name, a, 1)?;
        Ok(Value::str(f(string_arg(&a[0])?)))
    };
    let now_ns = || -> i64 {
        let ns = env.now * 1e9;
        if ns.is_finite() && ns < i64::MAX as f64 && ns > i64::MIN as f64 {
            ns as i64
        } else {
            0
        }
    };
    Some(match name {
        "title" => str1(&title_lower),
        "trimSpace" => str1(&|s| s.trim().to_string()),
        "safeUrl" => str1(&|s| s.to_string()),
        "urlUnescape" => (|| {
            want(name, a, 1)?;
            query_unescape(string_arg(&a[0])?)
                .map(Value::str)
                .map_err(|e| calling(name, e))
        })(),
        "join" => (|| {
            want(name, a, 2)?;
            let sep = string_arg(&a[0])?;
            Ok(Value::str(string_list(name, &a[1])?.join(sep)))
        })(),
        "stringSlice" => (|| {
            let mut out = Vec::with_capacity(a.len());
            for v in a {
                out.push(Value::str(string_arg(v)?));
            }
            Ok(Value::List(Rc::new(out)))
        })(),
        "date" => (|| {
            want(name, a, 2)?;
            let layout = string_arg(&a[0])?;
            let (ns, z) = time_arg(&a[1])?;
            Ok(Value::str(match z {
                Some(z) => gotime::format_in(ns, z.offset_secs, &z.abbr, layout),
                None => gotime::format(ns, layout),
            }))
        })(),
        "tz" => (|| {
            want(name, a, 2)?;
            let zone = string_arg(&a[0])?;
            let (ns, _) = time_arg(&a[1])?;
            match super::tzdata::zone_at(zone, ns) {
                Ok(None) => Ok(Value::Time(ns)),
                Ok(Some(z)) => Ok(Value::ZTime(ns, Rc::new(z))),
                Err(e) => Err(calling(name, e)),
            }
        })(),
        "now" => (|| {
            want(name, a, 0)?;
            Ok(Value::Time(now_ns()))
        })(),
        "since" => (|| {
            want(name, a, 1)?;
            let (ns, _) = time_arg(&a[0])?;
            let (secs, nanos) = gotime::split(ns);
            let then = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
            let d = i128::from(now_ns()) - then;
            Ok(Value::Duration(
                d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            ))
        })(),
        "toJson" => (|| {
            want(name, a, 1)?;
            let mut out = String::new();
            to_json(&a[0], &mut out, 0).map_err(|e| calling(name, e))?;
            Ok(Value::str(out))
        })(),
        _ => return None,
    })
}

/// The methods of Alertmanager's template types (`KV`, `Pairs`, `Pair`,
/// `Alerts`) and of zoned times; `None` when the receiver has no such
/// method.
fn call_am_method(recv: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let zero = |v: Value| -> Result<Value, String> {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!(
                "wrong number of args for {name}: want 0 got {}",
                args.len()
            ))
        }
    };
    let pairs_names = |p: &[(String, String)], values: bool| {
        Value::List(Rc::new(
            p.iter()
                .map(|(k, v)| Value::str(if values { v.as_str() } else { k.as_str() }))
                .collect(),
        ))
    };
    match recv {
        Value::Kv(m) => Some(match name {
            "SortedPairs" => zero(Value::Pairs(Rc::new(sorted_pairs(m)))),
            "Names" => zero(pairs_names(&sorted_pairs(m), false)),
            "Values" => zero(pairs_names(&sorted_pairs(m), true)),
            "String" => zero(Value::str(pairs_string(&sorted_pairs(m)))),
            "Remove" => {
                if args.len() != 1 {
                    return Some(Err(format!(
                        "wrong number of args for Remove: want 1 got {}",
                        args.len()
                    )));
                }
                match string_list("Remove", &args[0]) {
                    Ok(keys) => {
                        let mut out = (**m).clone();
                        for k in keys {
                            out.remove(&k);
                        }
                        Ok(Value::Kv(Rc::new(out)))
                    }
                    Err(e) => Err(e),
                }
            }
            _ => return None,
        }),
        Value::Pairs(p) => Some(match name {
            "Names" => zero(pairs_names(p, false)),
            "Values" => zero(pairs_names(p, true)),
            "String" => zero(Value::str(pairs_string(p))),
            _ => return None,
        }),
        Value::Pair(p) => Some(match name {
            "Name" => zero(Value::str(p.0.as_str())),
            "Value" => zero(Value::str(p.1.as_str())),
            _ => return None,
        }),
        Value::List(l) => Some(match name {
            "Firing" | "Resolved" => {
                let want_status = if name == "Firing" {
                    "firing"
                } else {
                    "resolved"
                };
                zero(Value::List(Rc::new(
                    l.iter()
                        .filter(|x| match x {
                            Value::AnyMap(m) => matches!(
                                m.get("Status"),
                                Some(Value::Str(s)) if &**s == want_status
                            ),
                            _ => false,
                        })
                        .cloned()
                        .collect(),
                )))
            }
            _ => return None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("a:1"), Some(("a", "1")));
        assert_eq!(split_host_port("[::1]:1"), Some(("::1", "1")));
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("a"), None);
        assert_eq!(split_host_port("[::1]::1"), None);
        assert_eq!(split_host_port("[::1]"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"<=>&\\\n"),
            "a\\'b\\\"\\u003C\\u003D\\u003E\\u0026\\\\\\u000A"
        );
    }

    #[test]
    fn titles() {
        assert_eq!(title("aa bb CC"), "Aa Bb CC");
        assert_eq!(title("don't stop_me now-ok"), "Don't Stop_me Now-Ok");
        assert_eq!(title("élan vital"), "Élan Vital");
    }

    #[test]
    fn parse_floats() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float(".12"), Ok(0.12));
        assert_eq!(parse_float("+Inf"), Ok(f64::INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(
            parse_float("one"),
            Err("strconv.ParseFloat: parsing \"one\": invalid syntax".into())
        );
        assert_eq!(
            parse_float("1e400"),
            Err("strconv.ParseFloat: parsing \"1e400\": value out of range".into())
        );
    }

    #[test]
    fn paths() {
        assert_eq!(url_path("http://testhost:9090/path/prefix"), "/path/prefix");
        assert_eq!(url_path("http://testhost:9090"), "");
        assert_eq!(url_path("https://h/p?q=1#f"), "/p");
        assert_eq!(url_path("/rel/path"), "/rel/path");
    }
}
