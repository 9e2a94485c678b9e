//! The executor: walks the parsed tree with Go's `text/template` semantics
//! (`missingkey=zero`, as Prometheus sets it) under render limits.

use std::rc::Rc;

use super::funcs::{self, Env};
use super::gofmt::{print_value, sprint_one};
use super::parse::{Arg, Branch, Cmd, Node, Num, Pipe, Span};
use super::value::{Value, ROOT_TYPE};
use super::{Inner, RenderOptions};

/// An execution error before it is placed in the source.
#[derive(Debug)]
pub(crate) struct ExecErr {
    pub span: Span,
    pub template: String,
    pub msg: String,
    /// The index in [`Exec::units`] of the text the span is in.
    pub unit: usize,
}

type R<T> = Result<T, Box<ExecErr>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'a> {
    /// The unit whose text is executing (for error positions).
    pub tmpl: &'a Inner,
    /// Every parsed text whose `define`s are visible, later ones taking
    /// precedence; the last is the one rendered.
    pub units: Vec<&'a Inner>,
    unit: usize,
    pub env: Env<'a>,
    pub opts: &'a RenderOptions,
    pub out: String,
    pub vars: Vec<(String, Value)>,
    depth: usize,
    steps: u64,
    current: String,
}

impl<'a> Exec<'a> {
    pub fn new(
        tmpl: &'a Inner,
        env: Env<'a>,
        opts: &'a RenderOptions,
        vars: Vec<(String, Value)>,
    ) -> Self {
        Self::with_units(vec![tmpl], env, opts, vars)
    }

    /// An executor for the last of `units`, seeing the `define`s of all.
    pub fn with_units(
        units: Vec<&'a Inner>,
        env: Env<'a>,
        opts: &'a RenderOptions,
        vars: Vec<(String, Value)>,
    ) -> Self {
        let unit = units.len().saturating_sub(1);
        let tmpl = units[unit];
        Exec {
            tmpl,
            units,
            unit,
            env,
            opts,
            out: String::new(),
            vars,
            depth: 0,
            steps: 0,
            current: tmpl.name.clone(),
        }
    }

    pub fn run(&mut self, dot: &Value) -> R<()> {
        let tmpl = self.tmpl;
        self.walk(dot, &tmpl.parsed.main)?;
        Ok(())
    }

    fn err(&self, span: Span, msg: impl Into<String>) -> Box<ExecErr> {
        Box::new(ExecErr {
            span,
            template: self.current.clone(),
            msg: msg.into(),
            unit: self.unit,
        })
    }

    fn step(&mut self, span: Span) -> R<()> {
        self.steps += 1;
        if self.steps > self.opts.max_steps {
            return Err(self.err(
                span,
                format!("template evaluation exceeded {} steps", self.opts.max_steps),
            ));
        }
        Ok(())
    }

    fn enter(&mut self, span: Span) -> R<()> {
        self.depth += 1;
        if self.depth > self.opts.max_depth {
            return Err(self.err(
                span,
                format!("exceeded maximum template depth ({})", self.opts.max_depth),
            ));
        }
        Ok(())
    }

    fn write(&mut self, s: &str, span: Span) -> R<()> {
        if self.out.len() + s.len() > self.opts.max_output_bytes {
            return Err(self.err(
                span,
                format!(
                    "template output exceeds {} bytes",
                    self.opts.max_output_bytes
                ),
            ));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, list: &[Node]) -> R<Flow> {
        for node in list {
            match node {
                Node::Text(s) => {
                    let span = Span { start: 0, end: 0 };
                    self.step(span)?;
                    self.write(s, span)?;
                }
                Node::Action(pipe) => {
                    self.step(pipe.span)?;
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        let s = print_value(&v);
                        self.write(&s, pipe.span)?;
                    }
                }
                Node::If(b) | Node::With(b) => {
                    let with = matches!(node, Node::With(_));
                    let f = self.walk_if(dot, b, with)?;
                    if f != Flow::Normal {
                        return Ok(f);
                    }
                }
                Node::Range(b) => self.walk_range(dot, b)?,
                Node::Template { span, name, pipe } => {
                    self.walk_template(dot, *span, name, pipe.as_ref())?
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_if(&mut self, dot: &Value, b: &Branch, with: bool) -> R<Flow> {
        self.step(b.pipe.span)?;
        self.enter(b.pipe.span)?;
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if v.truth() {
            if with {
                self.walk(&v, &b.list)?
            } else {
                self.walk(dot, &b.list)?
            }
        } else if let Some(el) = &b.else_list {
            self.walk(dot, el)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, b: &Branch) -> R<()> {
        let span = b.pipe.span;
        self.step(span)?;
        self.enter(span)?;
        let mark = self.vars.len();
        let v = self.eval_pipeline_raw(dot, &b.pipe)?;
        // (index, element) pairs, produced lazily for ranges over ints.
        let len: u64;
        let mut pairs: Vec<(Value, Value)> = Vec::new();
        match &v {
            Value::Samples(s) => {
                pairs = s
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (Value::Int(i as i64), Value::Sample(x.clone())))
                    .collect();
                len = pairs.len() as u64;
            }
            Value::StrMap(m) => {
                pairs = m
                    .iter()
                    .map(|(k, x)| (Value::str(k.as_str()), Value::str(x.as_str())))
                    .collect();
                len = pairs.len() as u64;
            }
            Value::AnyMap(m) => {
                pairs = m
                    .iter()
                    .map(|(k, x)| (Value::str(k.as_str()), x.clone()))
                    .collect();
                len = pairs.len() as u64;
            }
            Value::List(l) => {
                pairs = l
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                    .collect();
                len = pairs.len() as u64;
            }
            Value::Pairs(p) => {
                pairs = p
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (Value::Int(i as i64), Value::Pair(Rc::new(x.clone()))))
                    .collect();
                len = pairs.len() as u64;
            }
            Value::Kv(m) => {
                pairs = m
                    .iter()
                    .map(|(k, x)| (Value::str(k.as_str()), Value::str(x.as_str())))
                    .collect();
                len = pairs.len() as u64;
            }
            Value::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.err(
                        span,
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                len = (*n).max(0) as u64;
            }
            Value::Nil => len = 0,
            other => {
                return Err(self.err(
                    span,
                    format!("range can't iterate over {}", sprint_one(other)),
                ));
            }
        }
        for i in 0..len {
            self.step(span)?;
            let (idx, elem) = if pairs.is_empty() {
                (Value::Int(i as i64), Value::Int(i as i64))
            } else {
                pairs[i as usize].clone()
            };
            let iter_mark = self.vars.len();
            let decl = &b.pipe.decl;
            match decl.len() {
                0 => {}
                1 => self.bind(&decl[0], elem.clone(), b.pipe.is_assign, span)?,
                _ => {
                    self.bind(&decl[0], idx, b.pipe.is_assign, span)?;
                    self.bind(&decl[1], elem.clone(), b.pipe.is_assign, span)?;
                }
            }
            let f = self.walk(&elem, &b.list)?;
            self.vars.truncate(iter_mark);
            if f == Flow::Break {
                break;
            }
        }
        if len == 0 {
            if let Some(el) = &b.else_list {
                self.walk(dot, el)?;
            }
        }
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(())
    }

    fn walk_template(&mut self, dot: &Value, span: Span, name: &str, pipe: Option<&Pipe>) -> R<()> {
        self.step(span)?;
        let mut found: Option<(usize, &'a [Node])> = None;
        for (i, &u) in self.units.iter().enumerate().rev() {
            let u: &'a Inner = u;
            if let Some(b) = u.parsed.defs.get(name) {
                found = Some((i, b));
                break;
            }
        }
        if found.is_none() {
            for (i, &u) in self.units.iter().enumerate().rev() {
                let u: &'a Inner = u;
                if u.name == name {
                    found = Some((i, &u.parsed.main));
                    break;
                }
            }
        }
        let Some((unit, body)) = found else {
            return Err(self.err(span, format!("template {name:?} not defined")));
        };
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        self.enter(span)?;
        let saved_vars =
            std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.current, name.to_string());
        let saved_unit = std::mem::replace(&mut self.unit, unit);
        let saved_tmpl = std::mem::replace(&mut self.tmpl, self.units[unit]);
        self.walk(&new_dot, body)?;
        self.tmpl = saved_tmpl;
        self.unit = saved_unit;
        self.current = saved_name;
        self.vars = saved_vars;
        self.depth -= 1;
        Ok(())
    }

    fn bind(&mut self, name: &str, v: Value, assign: bool, span: Span) -> R<()> {
        if assign {
            self.set_var(name, v, span)
        } else {
            self.vars.push((name.to_string(), v));
            Ok(())
        }
    }

    fn set_var(&mut self, name: &str, v: Value, span: Span) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.err(span, format!("undefined variable: {name}"))),
        }
    }

    fn var(&self, name: &str, span: Span) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.err(span, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline_raw(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut val: Option<Value> = None;
        for cmd in &pipe.cmds {
            val = Some(self.eval_command(dot, cmd, val)?);
        }
        Ok(val.unwrap_or(Value::Nil))
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let v = self.eval_pipeline_raw(dot, pipe)?;
        for d in &pipe.decl {
            self.bind(d, v.clone(), pipe.is_assign, pipe.span)?;
        }
        Ok(v)
    }

    fn not_a_function(&self, cmd: &Cmd, final_: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            let span = cmd.args[0].span();
            let text = self.tmpl.source.get(span.start..span.end).unwrap_or("");
            return Err(self.err(span, format!("can't give argument to non-function {text}")));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Cmd, final_: Option<Value>) -> R<Value> {
        self.step(cmd.span)?;
        let rest = &cmd.args[1..];
        match &cmd.args[0] {
            Arg::Field(span, path) => {
                self.eval_field_chain(dot, dot.clone(), path, *span, rest, final_)
            }
            Arg::Chain(span, term, path) => {
                let recv = self.eval_arg(dot, term)?;
                self.eval_field_chain(dot, recv, path, *span, rest, final_)
            }
            Arg::Variable(span, name, path) => {
                let v = self.var(name, *span)?;
                if path.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    Ok(v)
                } else {
                    self.eval_field_chain(dot, v, path, *span, rest, final_)
                }
            }
            Arg::Func(_, name) => self.eval_function(dot, name, cmd.span, rest, final_),
            Arg::Pipe(span, p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_paren(dot, p, *span)
            }
            Arg::Nil(span) => {
                self.not_a_function(cmd, &final_)?;
                Err(self.err(*span, "nil is not a command"))
            }
            lit => {
                self.not_a_function(cmd, &final_)?;
                self.eval_arg(dot, lit)
            }
        }
    }

    fn eval_paren(&mut self, dot: &Value, p: &Pipe, span: Span) -> R<Value> {
        self.enter(span)?;
        let v = self.eval_pipeline(dot, p)?;
        self.depth -= 1;
        Ok(v)
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> R<Value> {
        Ok(match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => Value::Nil,
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::Number(span, n) => match n {
                Num::Int(i) => Value::Int(*i),
                Num::Float(f) => Value::Float(*f),
                Num::Overflow(t) => return Err(self.err(*span, format!("{t} overflows int"))),
            },
            Arg::Str(_, s) => Value::str(s.as_str()),
            Arg::Field(span, path) => {
                self.eval_field_chain(dot, dot.clone(), path, *span, &[], None)?
            }
            Arg::Variable(span, name, path) => {
                let v = self.var(name, *span)?;
                if path.is_empty() {
                    v
                } else {
                    self.eval_field_chain(dot, v, path, *span, &[], None)?
                }
            }
            Arg::Func(span, name) => self.eval_function(dot, name, *span, &[], None)?,
            Arg::Pipe(span, p) => self.eval_paren(dot, p, *span)?,
            Arg::Chain(span, term, path) => {
                let recv = self.eval_arg(dot, term)?;
                self.eval_field_chain(dot, recv, path, *span, &[], None)?
            }
        })
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        span: Span,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(final_.is_some());
            if total == 0 {
                return Err(self.err(
                    span,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let want_truth = name == "or";
            let mut last = Value::Nil;
            for a in args {
                let v = self.eval_arg(dot, a)?;
                if v.truth() == want_truth {
                    return Ok(v);
                }
                last = v;
            }
            if let Some(v) = final_ {
                return Ok(v);
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a)?);
        }
        if let Some(f) = final_ {
            vals.push(f);
        }
        funcs::call(&mut self.env, name, vals).map_err(|e| self.err(span, e))
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        receiver: Value,
        path: &[String],
        span: Span,
        args: &[Arg],
        mut final_: Option<Value>,
    ) -> R<Value> {
        let mut recv = receiver;
        for (i, name) in path.iter().enumerate() {
            recv = if i + 1 == path.len() {
                self.eval_field(dot, recv, name, span, args, final_.take())?
            } else {
                self.eval_field(dot, recv, name, span, &[], None)?
            };
        }
        Ok(recv)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        recv: Value,
        name: &str,
        span: Span,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let has_args = !args.is_empty() || final_.is_some();
        let methods = match &recv {
            Value::Time(_)
            | Value::Duration(_)
            | Value::ZTime(..)
            | Value::Pairs(_)
            | Value::Pair(_)
            | Value::List(_) => true,
            // A KV's methods shadow its keys, as in Go.
            Value::Kv(_) => funcs::call_method(&recv, name, &[Value::Nil]).is_some(),
            _ => false,
        };
        if methods {
            let mut vals = Vec::with_capacity(args.len() + 1);
            for a in args {
                vals.push(self.eval_arg(dot, a)?);
            }
            if let Some(f) = final_ {
                vals.push(f);
            }
            return match funcs::call_method(&recv, name, &vals) {
                Some(r) => r.map_err(|e| self.err(span, e)),
                None => Err(self.err(
                    span,
                    format!("can't evaluate field {name} in type {}", recv.type_name()),
                )),
            };
        }
        let struct_field = |v: Option<Value>, ty: &str| -> R<Value> {
            match v {
                Some(_) if has_args => Err(self.err(
                    span,
                    format!("{name} has arguments but cannot be invoked as function"),
                )),
                Some(v) => Ok(v),
                None => Err(self.err(span, format!("can't evaluate field {name} in type {ty}"))),
            }
        };
        match &recv {
            Value::Root(r) => struct_field(
                match name {
                    "Labels" => Some(Value::StrMap(r.labels.clone())),
                    "ExternalLabels" => Some(Value::StrMap(r.external_labels.clone())),
                    "ExternalURL" => Some(Value::Str(r.external_url.clone())),
                    "Value" => Some(Value::Float(r.value)),
                    _ => None,
                },
                ROOT_TYPE,
            ),
            Value::Sample(s) => struct_field(
                match name {
                    "Labels" => Some(Value::StrMap(s.labels.clone())),
                    "Value" => Some(Value::Float(s.value)),
                    _ => None,
                },
                "template.sample",
            ),
            Value::StrMap(_) | Value::AnyMap(_) | Value::Kv(_) if has_args => {
                Err(self.err(span, format!("{name} is not a method but has arguments")))
            }
            Value::StrMap(m) | Value::Kv(m) => {
                Ok(Value::Str(Rc::from(m.get(name).map_or("", String::as_str))))
            }
            Value::AnyMap(m) => Ok(m.get(name).cloned().unwrap_or(Value::Nil)),
            Value::Nil => Err(self.err(
                span,
                format!("nil pointer evaluating interface {{}}.{name}"),
            )),
            other => Err(self.err(
                span,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }
}
