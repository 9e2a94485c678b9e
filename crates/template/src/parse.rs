//! The parser: builds the node tree from the token stream with Go's
//! `text/template/parse` rules (declared variables, known functions,
//! control structures, `define`/`block`/`template`).

use std::collections::BTreeMap;

use super::funcs;
use super::lexer::{lex, Kw, Tok, Token};
use super::ParseErr;

/// How deeply control structures and parentheses may nest.
const MAX_NESTING: usize = 50;

/// A byte span in the template source, for error positions and context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Template {
        span: Span,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// The shared shape of `if`, `with` and `range`.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub span: Span,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub span: Span,
    pub args: Vec<Arg>,
}

/// A number literal: what it can be used as.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
    /// Fits no Go `int` and is not written as a float: an error when used.
    Overflow(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Dot(Span),
    Nil(Span),
    Bool(Span, bool),
    Number(Span, Num),
    Str(Span, String),
    /// `.a.b`
    Field(Span, Vec<String>),
    /// `$x.a.b`
    Variable(Span, String, Vec<String>),
    /// A function name.
    Func(Span, String),
    /// `(pipeline)`
    Pipe(Span, Box<Pipe>),
    /// `(pipeline).a.b` or `func.a`.
    Chain(Span, Box<Arg>, Vec<String>),
}

impl Arg {
    pub fn span(&self) -> Span {
        match self {
            Arg::Dot(s)
            | Arg::Nil(s)
            | Arg::Bool(s, _)
            | Arg::Number(s, _)
            | Arg::Str(s, _)
            | Arg::Field(s, _)
            | Arg::Variable(s, _, _)
            | Arg::Func(s, _)
            | Arg::Pipe(s, _)
            | Arg::Chain(s, _, _) => *s,
        }
    }
}

/// The parse result: the main list and the `define`d templates.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub main: Vec<Node>,
    pub defs: BTreeMap<String, Vec<Node>>,
}

/// Parses `src`; `predeclared` names variables visible at top level besides `$`.
pub(crate) fn parse(
    src: &str,
    predeclared: &[&str],
    dialect: funcs::Dialect,
) -> Result<Parsed, ParseErr> {
    let toks = lex(src)?;
    let mut vars = vec!["$".to_string()];
    vars.extend(predeclared.iter().map(|s| s.to_string()));
    let mut p = Parser {
        toks,
        i: 0,
        vars,
        range_depth: 0,
        nesting: 0,
        defs: BTreeMap::new(),
        dialect,
    };
    let (main, stop) = p.list(true)?;
    if let Some((kw, pos)) = stop {
        return Err(ParseErr {
            pos,
            msg: format!("unexpected {{{{{}}}}}", kw_name(kw)),
        });
    }
    Ok(Parsed { main, defs: p.defs })
}

fn kw_name(kw: Kw) -> &'static str {
    match kw {
        Kw::Block => "block",
        Kw::Break => "break",
        Kw::Continue => "continue",
        Kw::Define => "define",
        Kw::Else => "else",
        Kw::End => "end",
        Kw::If => "if",
        Kw::Range => "range",
        Kw::Template => "template",
        Kw::With => "with",
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::LeftDelim => "\"{{\"".into(),
        Tok::RightDelim => "\"}}\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Char(c) => format!("character constant {c}"),
        Tok::Number(n) => format!("number {n}"),
        Tok::Bool(b) => format!("{b}"),
        Tok::Nil => "nil".into(),
        Tok::Dot => "\".\"".into(),
        Tok::Field(f) => format!("field .{f}"),
        Tok::Variable(v) => format!("variable {v}"),
        Tok::Ident(i) => format!("identifier {i}"),
        Tok::Keyword(k) => format!("<{}>", kw_name(*k)),
        Tok::Eof => "EOF".into(),
    }
}

/// Parses the text of a number literal as Go's template parser and
/// `idealConstant` would use it.
pub(crate) fn parse_number(text: &str) -> Result<Num, String> {
    let illegal = || format!("illegal number syntax: {text:?}");
    if text.ends_with('i') {
        return Err(format!("complex numbers are not supported: {text:?}"));
    }
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return Err(illegal());
    }
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let is_float_text = radix == 10 && lower.contains(['.', 'e']);
    if radix == 16 && lower.contains(['.', 'p']) {
        return Err(format!("hexadecimal floats are not supported: {text:?}"));
    }
    if !is_float_text {
        if digits.is_empty() {
            return Err(illegal());
        }
        return match u128::from_str_radix(digits, radix) {
            Ok(u) => {
                let v = if neg { -(u as i128) } else { u as i128 };
                match i64::try_from(v) {
                    Ok(i) => Ok(Num::Int(i)),
                    Err(_) => Ok(Num::Overflow(text.to_string())),
                }
            }
            Err(_) if digits.bytes().all(|b| (b as char).is_digit(radix)) => {
                Ok(Num::Overflow(text.to_string()))
            }
            Err(_) => Err(illegal()),
        };
    }
    // Rust accepts "inf"/"nan", which cannot reach here (the lexer only
    // passes digits, '.', 'e' and signs).
    match clean.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Num::Float(if neg { -f } else { f })),
        _ => Err(illegal()),
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    nesting: usize,
    defs: BTreeMap<String, Vec<Node>>,
    dialect: funcs::Dialect,
}

type Stop = Option<(Kw, usize)>;

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.i + n).min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn err<T>(&self, pos: usize, msg: impl Into<String>) -> Result<T, ParseErr> {
        Err(ParseErr {
            pos,
            msg: msg.into(),
        })
    }

    fn enter(&mut self, pos: usize) -> Result<(), ParseErr> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.err(
                pos,
                format!("template nests deeper than {MAX_NESTING} levels"),
            );
        }
        Ok(())
    }

    fn expect_right(&mut self, ctx: &str) -> Result<(), ParseErr> {
        let t = self.next();
        if t.tok != Tok::RightDelim {
            return self.err(t.pos, format!("unexpected {} in {ctx}", describe(&t.tok)));
        }
        Ok(())
    }

    /// Parses nodes until EOF (top level) or an `{{else}}`/`{{end}}`, which
    /// is returned (the `else`/`end` keyword consumed, its `}}` not for
    /// `else`).
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, Stop), ParseErr> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => {
                    if top {
                        return Ok((nodes, None));
                    }
                    return self.err(t.pos, "unexpected EOF");
                }
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::LeftDelim => {
                    let kt = self.peek().clone();
                    if let Tok::Keyword(kw) = kt.tok {
                        match kw {
                            Kw::End => {
                                self.next();
                                self.expect_right("end")?;
                                return Ok((nodes, Some((Kw::End, kt.pos))));
                            }
                            Kw::Else => {
                                self.next();
                                return Ok((nodes, Some((Kw::Else, kt.pos))));
                            }
                            Kw::Define => {
                                if !top {
                                    return self.err(kt.pos, "unexpected <define> in command");
                                }
                                self.next();
                                self.define(kt.pos)?;
                                continue;
                            }
                            _ => {
                                self.next();
                                nodes.push(self.control(kw, kt.pos)?);
                                continue;
                            }
                        }
                    }
                    let pipe = self.pipeline("command", false)?;
                    nodes.push(Node::Action(pipe));
                }
                other => return self.err(t.pos, format!("unexpected {}", describe(&other))),
            }
        }
    }

    fn template_name(&mut self, ctx: &str) -> Result<String, ParseErr> {
        let t = self.next();
        match t.tok {
            Tok::Str(s) => Ok(s),
            other => self.err(
                t.pos,
                format!("unexpected {} in {ctx} clause", describe(&other)),
            ),
        }
    }

    fn define(&mut self, pos: usize) -> Result<(), ParseErr> {
        let name = self.template_name("define")?;
        self.expect_right("define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.enter(pos)?;
        let (body, stop) = self.list(false)?;
        self.nesting -= 1;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        match stop {
            Some((Kw::End, _)) => {}
            Some((_, p)) => return self.err(p, "unexpected {{else}} in define clause"),
            None => return self.err(pos, "unexpected EOF"),
        }
        self.defs.insert(name, body);
        Ok(())
    }

    fn control(&mut self, kw: Kw, pos: usize) -> Result<Node, ParseErr> {
        match kw {
            Kw::If | Kw::With | Kw::Range => {
                self.enter(pos)?;
                let b = self.branch(kw)?;
                self.nesting -= 1;
                Ok(match kw {
                    Kw::If => Node::If(b),
                    Kw::With => Node::With(b),
                    _ => Node::Range(b),
                })
            }
            Kw::Template => {
                let name = self.template_name("template")?;
                let pipe = if self.peek().tok == Tok::RightDelim {
                    self.next();
                    None
                } else {
                    Some(self.pipeline("template", false)?)
                };
                let end = self.toks[self.i.saturating_sub(1)].end;
                Ok(Node::Template {
                    span: Span { start: pos, end },
                    name,
                    pipe,
                })
            }
            Kw::Block => {
                let name = self.template_name("block")?;
                let pipe = self.pipeline("block clause", false)?;
                self.enter(pos)?;
                let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
                let saved_range = std::mem::replace(&mut self.range_depth, 0);
                let (body, stop) = self.list(false)?;
                self.vars = saved_vars;
                self.range_depth = saved_range;
                self.nesting -= 1;
                match stop {
                    Some((Kw::End, _)) => {}
                    Some((_, p)) => return self.err(p, "unexpected {{else}} in block clause"),
                    None => return self.err(pos, "unexpected EOF"),
                }
                self.defs.insert(name.clone(), body);
                Ok(Node::Template {
                    span: pipe.span,
                    name,
                    pipe: Some(pipe),
                })
            }
            Kw::Break | Kw::Continue => {
                let word = kw_name(kw);
                let t = self.next();
                if t.tok != Tok::RightDelim {
                    return self.err(
                        t.pos,
                        format!("unexpected {} in {{{{{word}}}}}", describe(&t.tok)),
                    );
                }
                if self.range_depth == 0 {
                    return self.err(pos, format!("{{{{{word}}}}} outside {{{{range}}}}"));
                }
                Ok(if kw == Kw::Break {
                    Node::Break
                } else {
                    Node::Continue
                })
            }
            Kw::Else | Kw::End | Kw::Define => unreachable_kw(self, kw, pos),
        }
    }

    /// `if`/`with`/`range` after the keyword: pipeline, list, else, end.
    fn branch(&mut self, kw: Kw) -> Result<Branch, ParseErr> {
        let ctx = kw_name(kw);
        let mark = self.vars.len();
        let pipe = self.pipeline(ctx, kw == Kw::Range)?;
        if kw == Kw::Range {
            self.range_depth += 1;
        }
        let (list, stop) = self.list(false)?;
        if kw == Kw::Range {
            self.range_depth -= 1;
        }
        let else_list = match stop {
            Some((Kw::End, _)) => None,
            Some((Kw::Else, epos)) => {
                let chained = match (kw, &self.peek().tok) {
                    (Kw::If, Tok::Keyword(Kw::If)) => Some(Kw::If),
                    (Kw::With, Tok::Keyword(Kw::With)) => Some(Kw::With),
                    _ => None,
                };
                if let Some(ck) = chained {
                    // `{{else if ...}}`: a nested if that consumes the shared `{{end}}`.
                    let t = self.next();
                    self.enter(t.pos)?;
                    let b = self.branch(ck)?;
                    self.nesting -= 1;
                    Some(vec![if ck == Kw::If {
                        Node::If(b)
                    } else {
                        Node::With(b)
                    }])
                } else {
                    self.expect_right("else")?;
                    let (el, stop2) = self.list(false)?;
                    match stop2 {
                        Some((Kw::End, _)) => {}
                        Some((_, p)) => return self.err(p, "expected end; found {{else}}"),
                        None => return self.err(epos, "unexpected EOF"),
                    }
                    Some(el)
                }
            }
            Some((k, p)) => return self.err(p, format!("unexpected {{{{{}}}}}", kw_name(k))),
            None => return self.err(pipe.span.start, "unexpected EOF"),
        };
        self.vars.truncate(mark);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn is_end(&self, t: &Tok, paren: bool) -> bool {
        if paren {
            *t == Tok::RParen
        } else {
            *t == Tok::RightDelim
        }
    }

    /// Parses a pipeline up to and including its closing `}}` (or `)` when
    /// `ctx` is a parenthesized pipeline).
    fn pipeline(&mut self, ctx: &str, range: bool) -> Result<Pipe, ParseErr> {
        let paren = ctx == "parenthesized pipeline";
        let start = self.peek().pos;
        let mut decl = Vec::new();
        let mut is_assign = false;
        if let Tok::Variable(v) = &self.peek().tok {
            let v = v.clone();
            match self.peek_at(1).tok {
                Tok::Declare | Tok::Assign => {
                    is_assign = self.peek_at(1).tok == Tok::Assign;
                    self.next();
                    self.next();
                    decl.push(v);
                }
                Tok::Comma => {
                    let vpos = self.peek().pos;
                    if !range {
                        return self.err(vpos, format!("too many declarations in {ctx}"));
                    }
                    self.next();
                    self.next();
                    let t2 = self.next();
                    let Tok::Variable(v2) = t2.tok else {
                        return self.err(t2.pos, "range can only initialize variables");
                    };
                    let op = self.next();
                    match op.tok {
                        Tok::Declare => {}
                        Tok::Assign => is_assign = true,
                        _ => return self.err(op.pos, format!("too many declarations in {ctx}")),
                    }
                    decl.push(v);
                    decl.push(v2);
                }
                _ => {}
            }
        }
        let mut cmds = Vec::new();
        let end;
        loop {
            let t = self.peek().clone();
            if self.is_end(&t.tok, paren) {
                self.next();
                end = t.end;
                break;
            }
            match t.tok {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LParen => {
                    let c = self.command(paren)?;
                    cmds.push(c);
                }
                other => {
                    return self.err(t.pos, format!("unexpected {} in {ctx}", describe(&other)));
                }
            }
        }
        if cmds.is_empty() {
            return self.err(start, format!("missing value for {ctx}"));
        }
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str(..)
            ) {
                return self.err(
                    c.span.start,
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        // Declared variables become visible after the pipeline.
        for d in &decl {
            if !is_assign {
                self.vars.push(d.clone());
            }
        }
        Ok(Pipe {
            span: Span { start, end },
            is_assign,
            decl,
            cmds,
        })
    }

    fn command(&mut self, paren: bool) -> Result<Cmd, ParseErr> {
        let start = self.peek().pos;
        let mut args = Vec::new();
        loop {
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            let t = self.peek().clone();
            if self.is_end(&t.tok, paren) {
                break;
            }
            if t.tok == Tok::RightDelim {
                return self.err(t.pos, "unclosed left paren");
            }
            if t.tok == Tok::RParen {
                return self.err(t.pos, "unexpected right paren");
            }
            if t.tok == Tok::Pipe {
                self.next();
                if args.is_empty() {
                    return self.err(t.pos, "missing command");
                }
                let n = self.peek().clone();
                if self.is_end(&n.tok, paren) {
                    return self.err(n.pos, "missing command");
                }
                break;
            }
            if !t.space_before {
                return self.err(t.pos, format!("unexpected {} in operand", describe(&t.tok)));
            }
            if !is_operand_start(&t.tok) {
                return self.err(t.pos, format!("unexpected {} in operand", describe(&t.tok)));
            }
        }
        if args.is_empty() {
            return self.err(start, "empty command");
        }
        let end = args.last().map_or(start, |a| a.span().end);
        Ok(Cmd {
            span: Span { start, end },
            args,
        })
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseErr> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        let mut end = term.span().end;
        while let Tok::Field(f) = &self.peek().tok {
            if self.peek().space_before {
                break;
            }
            fields.push(f.clone());
            end = self.peek().end;
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        let span = Span {
            start: term.span().start,
            end,
        };
        Ok(Some(match term {
            Arg::Field(_, mut path) => {
                path.extend(fields);
                Arg::Field(span, path)
            }
            Arg::Variable(_, name, mut path) => {
                path.extend(fields);
                Arg::Variable(span, name, path)
            }
            Arg::Bool(..) | Arg::Str(..) | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return self.err(span.start, "unexpected . after term");
            }
            other => Arg::Chain(span, Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseErr> {
        let t = self.peek().clone();
        let span = Span {
            start: t.pos,
            end: t.end,
        };
        let arg = match t.tok {
            Tok::Ident(name) => {
                if !funcs::is_function(&name, self.dialect) {
                    return self.err(t.pos, format!("function {name:?} not defined"));
                }
                Arg::Func(span, name)
            }
            Tok::Dot => Arg::Dot(span),
            Tok::Nil => Arg::Nil(span),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.err(t.pos, format!("undefined variable {name:?}"));
                }
                Arg::Variable(span, name, Vec::new())
            }
            Tok::Field(f) => Arg::Field(span, vec![f]),
            Tok::Bool(b) => Arg::Bool(span, b),
            Tok::Char(c) => Arg::Number(span, Num::Int(c)),
            Tok::Number(text) => match parse_number(&text) {
                Ok(n) => Arg::Number(span, n),
                Err(e) => return self.err(t.pos, e),
            },
            Tok::Str(s) => Arg::Str(span, s),
            Tok::LParen => {
                self.next();
                self.enter(t.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                self.nesting -= 1;
                let span = Span {
                    start: t.pos,
                    end: pipe.span.end,
                };
                return Ok(Some(Arg::Pipe(span, Box::new(pipe))));
            }
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(arg))
    }
}

fn is_operand_start(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Bool(_)
            | Tok::Char(_)
            | Tok::Dot
            | Tok::Field(_)
            | Tok::Ident(_)
            | Tok::Number(_)
            | Tok::Nil
            | Tok::Str(_)
            | Tok::Variable(_)
            | Tok::LParen
    )
}

fn unreachable_kw(p: &Parser, kw: Kw, pos: usize) -> Result<Node, ParseErr> {
    p.err(pos, format!("unexpected {{{{{}}}}}", kw_name(kw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perr(src: &str) -> String {
        parse(src, &[], funcs::Dialect::Prometheus).unwrap_err().msg
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1").unwrap(), Num::Int(1));
        assert_eq!(parse_number("-0x1F").unwrap(), Num::Int(-31));
        assert_eq!(parse_number("017").unwrap(), Num::Int(15));
        assert_eq!(parse_number("1_000").unwrap(), Num::Int(1000));
        assert_eq!(parse_number("1.5").unwrap(), Num::Float(1.5));
        assert_eq!(parse_number("1e3").unwrap(), Num::Float(1000.0));
        assert_eq!(parse_number(".5").unwrap(), Num::Float(0.5));
        assert_eq!(
            parse_number("18446744073709551615").unwrap(),
            Num::Overflow("18446744073709551615".into())
        );
        assert!(parse_number("-").is_err());
        assert!(parse_number("1i").is_err());
        assert!(parse_number("08").is_err());
    }

    #[test]
    fn parse_errors_match_go() {
        assert_eq!(perr("{{ foo }}"), "function \"foo\" not defined");
        assert_eq!(perr("{{ $x }}"), "undefined variable \"$x\"");
        assert_eq!(perr("{{ end }}"), "unexpected {{end}}");
        assert_eq!(perr("{{ else }}"), "unexpected {{else}}");
        assert_eq!(perr("{{ if 1 }}"), "unexpected EOF");
        assert_eq!(perr("{{ if }}{{ end }}"), "missing value for if");
        assert_eq!(perr("{{ }}"), "missing value for command");
        assert_eq!(
            perr("{{ 1 | 2 }}"),
            "non executable command in pipeline stage 2"
        );
        assert_eq!(perr("{{ break }}"), "{{break}} outside {{range}}");
        assert_eq!(perr("{{ 1 | }}"), "missing command");
        assert_eq!(perr("{{ (1 }}"), "unclosed left paren");
        assert_eq!(perr("{{ 1) }}"), "unexpected right paren");
        assert_eq!(perr("{{ \"a\"\"b\" }}"), "unexpected \"b\" in operand");
        assert_eq!(
            perr("{{ if 1 }}{{ define \"x\" }}{{ end }}{{ end }}"),
            "unexpected <define> in command"
        );
    }

    #[test]
    fn variable_scopes() {
        // A variable declared in an if is gone after its end.
        assert_eq!(
            perr("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}"),
            "undefined variable \"$x\""
        );
        // ...but visible in its else branch when declared in the condition.
        parse(
            "{{ if $x := 1 }}{{ else }}{{ $x }}{{ end }}",
            &[],
            funcs::Dialect::Prometheus,
        )
        .unwrap();
        // Range declarations.
        parse(
            "{{ range $i, $e := . }}{{ $i }}{{ $e }}{{ break }}{{ end }}",
            &[],
            funcs::Dialect::Prometheus,
        )
        .unwrap();
        // Variables inside define start fresh.
        assert_eq!(
            perr("{{ $x := 1 }}{{ define \"a\" }}{{ $x }}{{ end }}"),
            "undefined variable \"$x\""
        );
        // Predeclared variables.
        parse(
            "{{ $labels.instance }}",
            &["$labels"],
            funcs::Dialect::Prometheus,
        )
        .unwrap();
    }

    #[test]
    fn nesting_limit() {
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(60), ")".repeat(60));
        assert!(perr(&deep).contains("nests deeper"));
        let ok = format!("{{{{ {}1{} }}}}", "(".repeat(40), ")".repeat(40));
        parse(&ok, &[], funcs::Dialect::Prometheus).unwrap();
    }
}
