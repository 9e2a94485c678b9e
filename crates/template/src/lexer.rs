//! The lexer: splits template text into text runs and action tokens, as Go's
//! `text/template/parse` lexer does, applying `{{-`/`-}}` trim markers and
//! dropping comments.

use super::ParseErr;

/// Keywords recognised at the start of an action (and `else if`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

/// One lexical item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Literal text outside actions, trim markers applied.
    Text(String),
    /// `{{` (with or without a trim marker).
    LeftDelim,
    /// `}}` (with or without a trim marker).
    RightDelim,
    Pipe,
    LParen,
    RParen,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    /// `,`
    Comma,
    /// A quoted or raw string, already unquoted.
    Str(String),
    /// A character constant; its value is a number.
    Char(i64),
    /// A number literal as written.
    Number(String),
    Bool(bool),
    Nil,
    /// `.` alone.
    Dot,
    /// `.Name`, without the dot.
    Field(String),
    /// `$name` or `$`, with the dollar.
    Variable(String),
    /// A function name.
    Ident(String),
    Keyword(Kw),
    Eof,
}

/// A token with its byte span and whether whitespace preceded it inside an
/// action (Go separates command arguments by spaces).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
    pub end: usize,
    pub space_before: bool,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Tokenizes `src` completely.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ParseErr> {
    let mut lx = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        trim_next_text: false,
    };
    lx.run()?;
    Ok(lx.toks)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
    trim_next_text: bool,
}

impl Lexer<'_> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseErr {
        ParseErr {
            pos,
            msg: msg.into(),
        }
    }

    fn push(&mut self, tok: Tok, pos: usize, end: usize, space_before: bool) {
        self.toks.push(Token {
            tok,
            pos,
            end,
            space_before,
        });
    }

    fn emit_text(&mut self, start: usize, end: usize, trim_right: bool) {
        let mut text = &self.src[start..end];
        let mut s = start;
        if self.trim_next_text {
            let t = text.trim_start_matches([' ', '\t', '\r', '\n']);
            s += text.len() - t.len();
            text = t;
        }
        if trim_right {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
        }
        self.trim_next_text = false;
        if !text.is_empty() {
            self.push(Tok::Text(text.to_string()), s, s + text.len(), false);
        }
    }

    fn run(&mut self) -> Result<(), ParseErr> {
        let bytes = self.src.as_bytes();
        loop {
            let Some(rel) = self.src[self.pos..].find("{{") else {
                self.emit_text(self.pos, self.src.len(), false);
                let n = self.src.len();
                self.push(Tok::Eof, n, n, false);
                return Ok(());
            };
            let delim = self.pos + rel;
            let mut after = delim + 2;
            let trim_left =
                bytes.len() > after + 1 && bytes[after] == b'-' && is_space(bytes[after + 1]);
            self.emit_text(self.pos, delim, trim_left);
            if trim_left {
                after += 2;
            }
            if self.src[after..].starts_with("/*") {
                self.comment(delim, after)?;
                continue;
            }
            self.push(Tok::LeftDelim, delim, after, false);
            self.pos = after;
            self.inside_action(delim)?;
        }
    }

    fn comment(&mut self, delim: usize, start: usize) -> Result<(), ParseErr> {
        let Some(rel) = self.src[start + 2..].find("*/") else {
            return Err(self.err(delim, "unclosed comment"));
        };
        let mut p = start + 2 + rel + 2;
        let rest = &self.src[p..];
        let b = rest.as_bytes();
        if b.len() >= 2 && is_space(b[0]) && b[1] == b'-' && rest[2..].starts_with("}}") {
            self.trim_next_text = true;
            p += 4;
        } else if rest.starts_with("}}") {
            p += 2;
        } else {
            return Err(self.err(delim, "comment ends before closing delimiter"));
        }
        self.pos = p;
        Ok(())
    }

    /// Whether a right delimiter starts at `p`: `Some(len, trim)`.
    fn at_right_delim(&self, p: usize) -> Option<(usize, bool)> {
        let rest = &self.src[p..];
        let b = rest.as_bytes();
        if b.len() >= 4 && is_space(b[0]) && b[1] == b'-' && rest[2..].starts_with("}}") {
            return Some((4, true));
        }
        if rest.starts_with("}}") {
            return Some((2, false));
        }
        None
    }

    fn inside_action(&mut self, open: usize) -> Result<(), ParseErr> {
        let bytes = self.src.as_bytes();
        let mut space = false;
        loop {
            if let Some((len, trim)) = self.at_right_delim(self.pos) {
                self.push(Tok::RightDelim, self.pos, self.pos + len, space);
                self.pos += len;
                self.trim_next_text = trim;
                return Ok(());
            }
            let Some(c) = self.src[self.pos..].chars().next() else {
                return Err(self.err(open, "unclosed action"));
            };
            let start = self.pos;
            if c.is_ascii() && is_space(c as u8) {
                self.pos += 1;
                space = true;
                continue;
            }
            let sp = space;
            space = false;
            match c {
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, start, self.pos, sp);
                }
                '(' => {
                    self.pos += 1;
                    self.push(Tok::LParen, start, self.pos, sp);
                }
                ')' => {
                    self.pos += 1;
                    self.push(Tok::RParen, start, self.pos, sp);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start, self.pos, sp);
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, start, self.pos, sp);
                }
                ':' => {
                    if bytes.get(self.pos + 1) == Some(&b'=') {
                        self.pos += 2;
                        self.push(Tok::Declare, start, self.pos, sp);
                    } else {
                        return Err(self.err(start, "expected :="));
                    }
                }
                '"' => {
                    let s = self.quoted(start)?;
                    self.push(Tok::Str(s), start, self.pos, sp);
                }
                '`' => {
                    let Some(rel) = self.src[start + 1..].find('`') else {
                        return Err(self.err(start, "unterminated raw quoted string"));
                    };
                    let raw = self.src[start + 1..start + 1 + rel].replace('\r', "");
                    self.pos = start + rel + 2;
                    self.push(Tok::Str(raw), start, self.pos, sp);
                }
                '\'' => {
                    let v = self.char_const(start)?;
                    self.push(Tok::Char(v), start, self.pos, sp);
                }
                '$' => {
                    self.pos += 1;
                    self.take_alnum();
                    let name = self.src[start..self.pos].to_string();
                    self.push(Tok::Variable(name), start, self.pos, sp);
                }
                '.' => {
                    let next = bytes.get(self.pos + 1).copied();
                    if next.is_some_and(|b| b.is_ascii_digit()) {
                        self.number(start, sp)?;
                    } else {
                        self.pos += 1;
                        let fstart = self.pos;
                        self.take_alnum();
                        if self.pos == fstart {
                            self.push(Tok::Dot, start, self.pos, sp);
                        } else {
                            let name = self.src[fstart..self.pos].to_string();
                            self.push(Tok::Field(name), start, self.pos, sp);
                        }
                    }
                }
                '+' | '-' | '0'..='9' => self.number(start, sp)?,
                c if c == '_' || c.is_alphabetic() => {
                    self.take_alnum();
                    let word = &self.src[start..self.pos];
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        "block" => Tok::Keyword(Kw::Block),
                        "break" => Tok::Keyword(Kw::Break),
                        "continue" => Tok::Keyword(Kw::Continue),
                        "define" => Tok::Keyword(Kw::Define),
                        "else" => Tok::Keyword(Kw::Else),
                        "end" => Tok::Keyword(Kw::End),
                        "if" => Tok::Keyword(Kw::If),
                        "range" => Tok::Keyword(Kw::Range),
                        "template" => Tok::Keyword(Kw::Template),
                        "with" => Tok::Keyword(Kw::With),
                        w => Tok::Ident(w.to_string()),
                    };
                    self.push(tok, start, self.pos, sp);
                }
                c => {
                    let desc = if c.is_control() || c.is_whitespace() {
                        format!("U+{:04X}", c as u32)
                    } else {
                        format!("U+{:04X} '{c}'", c as u32)
                    };
                    return Err(
                        self.err(start, format!("unrecognized character in action: {desc}"))
                    );
                }
            }
        }
    }

    fn take_alnum(&mut self) {
        while let Some(c) = self.src[self.pos..].chars().next() {
            if !is_alnum(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn number(&mut self, start: usize, sp: bool) -> Result<(), ParseErr> {
        let b = self.src.as_bytes();
        let mut p = start;
        let accept = |p: &mut usize, set: &[u8]| -> bool {
            if *p < b.len() && set.contains(&b[*p]) {
                *p += 1;
                true
            } else {
                false
            }
        };
        let run = |p: &mut usize, set: &[u8]| {
            while *p < b.len() && set.contains(&b[*p]) {
                *p += 1;
            }
        };
        accept(&mut p, b"+-");
        let mut digits: &[u8] = b"0123456789_";
        if accept(&mut p, b"0") {
            if accept(&mut p, b"xX") {
                digits = b"0123456789abcdefABCDEF_";
            } else if accept(&mut p, b"oO") {
                digits = b"01234567_";
            } else if accept(&mut p, b"bB") {
                digits = b"01_";
            }
        }
        run(&mut p, digits);
        if accept(&mut p, b".") {
            run(&mut p, digits);
        }
        if digits.len() == 11 && accept(&mut p, b"eE") {
            accept(&mut p, b"+-");
            run(&mut p, b"0123456789_");
        }
        if digits.len() == 23 && accept(&mut p, b"pP") {
            accept(&mut p, b"+-");
            run(&mut p, b"0123456789_");
        }
        accept(&mut p, b"i");
        let next = self.src[p..].chars().next();
        if next.is_some_and(is_alnum) {
            let bad_end = p + next.map_or(0, char::len_utf8);
            return Err(self.err(
                start,
                format!("bad number syntax: {:?}", &self.src[start..bad_end]),
            ));
        }
        self.pos = p;
        self.push(Tok::Number(self.src[start..p].to_string()), start, p, sp);
        Ok(())
    }

    fn quoted(&mut self, start: usize) -> Result<String, ParseErr> {
        let mut chars = self.src[start + 1..].char_indices();
        let mut out = String::new();
        loop {
            let Some((i, c)) = chars.next() else {
                return Err(self.err(start, "unterminated quoted string"));
            };
            match c {
                '"' => {
                    self.pos = start + 1 + i + 1;
                    return Ok(out);
                }
                '\n' => return Err(self.err(start, "unterminated quoted string")),
                '\\' => {
                    let Some((_, e)) = chars.next() else {
                        return Err(self.err(start, "unterminated quoted string"));
                    };
                    match self.escape(e, &mut chars, '"') {
                        Ok(Esc::Char(ch)) => out.push(ch),
                        Ok(Esc::Byte(b)) => out.push_str(&String::from_utf8_lossy(&[b])),
                        Err(()) => {
                            return Err(self.err(start, "invalid syntax in quoted string"));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn char_const(&mut self, start: usize) -> Result<i64, ParseErr> {
        let mut chars = self.src[start + 1..].char_indices();
        let bad = |s: &Self| s.err(start, "unterminated character constant");
        let value = match chars.next() {
            None | Some((_, '\n')) | Some((_, '\'')) => return Err(bad(self)),
            Some((_, '\\')) => {
                let Some((_, e)) = chars.next() else {
                    return Err(bad(self));
                };
                match self.escape(e, &mut chars, '\'') {
                    Ok(Esc::Char(ch)) => ch as i64,
                    Ok(Esc::Byte(b)) => i64::from(b),
                    Err(()) => return Err(self.err(start, "invalid syntax in character constant")),
                }
            }
            Some((_, c)) => c as i64,
        };
        match chars.next() {
            Some((i, '\'')) => {
                self.pos = start + 1 + i + 1;
                Ok(value)
            }
            _ => Err(bad(self)),
        }
    }

    fn escape(
        &self,
        e: char,
        chars: &mut std::str::CharIndices<'_>,
        quote: char,
    ) -> Result<Esc, ()> {
        let hex = |chars: &mut std::str::CharIndices<'_>, n: usize| -> Result<u32, ()> {
            let mut v = 0u32;
            for _ in 0..n {
                let (_, c) = chars.next().ok_or(())?;
                v = v * 16 + c.to_digit(16).ok_or(())?;
            }
            Ok(v)
        };
        Ok(match e {
            'a' => Esc::Char('\x07'),
            'b' => Esc::Char('\x08'),
            'f' => Esc::Char('\x0c'),
            'n' => Esc::Char('\n'),
            'r' => Esc::Char('\r'),
            't' => Esc::Char('\t'),
            'v' => Esc::Char('\x0b'),
            '\\' => Esc::Char('\\'),
            c if c == quote => Esc::Char(c),
            'x' => Esc::Byte(u8::try_from(hex(chars, 2)?).map_err(|_| ())?),
            'u' => Esc::Char(char::from_u32(hex(chars, 4)?).ok_or(())?),
            'U' => Esc::Char(char::from_u32(hex(chars, 8)?).ok_or(())?),
            '0'..='7' => {
                let mut v = e.to_digit(8).ok_or(())?;
                for _ in 0..2 {
                    let (_, c) = chars.next().ok_or(())?;
                    v = v * 8 + c.to_digit(8).ok_or(())?;
                }
                Esc::Byte(u8::try_from(v).map_err(|_| ())?)
            }
            _ => return Err(()),
        })
    }
}

enum Esc {
    Char(char),
    Byte(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_and_actions() {
        assert_eq!(
            toks("a {{ .Labels.x | printf \"%s\" }} b"),
            vec![
                Tok::Text("a ".into()),
                Tok::LeftDelim,
                Tok::Field("Labels".into()),
                Tok::Field("x".into()),
                Tok::Pipe,
                Tok::Ident("printf".into()),
                Tok::Str("%s".into()),
                Tok::RightDelim,
                Tok::Text(" b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(
            toks("a  \n{{- 3 -}}\n  b {{/* c */}} d {{- /* x */ -}} e"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Number("3".into()),
                Tok::RightDelim,
                Tok::Text("b ".into()),
                Tok::Text(" d".into()),
                Tok::Text("e".into()),
                Tok::Eof
            ]
        );
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(toks("{{-3}}")[1], Tok::Number("-3".into()));
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks(r#"{{"a\n\x41\u00e9" `r\n` 'x' '\n' $ $x nil true 0x1F 1.5e3 .5}}"#)[1..12],
            [
                Tok::Str("a\nAé".into()),
                Tok::Str("r\\n".into()),
                Tok::Char(120),
                Tok::Char(10),
                Tok::Variable("$".into()),
                Tok::Variable("$x".into()),
                Tok::Nil,
                Tok::Bool(true),
                Tok::Number("0x1F".into()),
                Tok::Number("1.5e3".into()),
                Tok::Number(".5".into()),
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(lex("{{").unwrap_err().msg, "unclosed action");
        assert_eq!(
            lex("{{ \"abc }}").unwrap_err().msg,
            "unterminated quoted string"
        );
        assert_eq!(lex("{{/* x }}").unwrap_err().msg, "unclosed comment");
        assert_eq!(
            lex("{{/* x */ 1}}").unwrap_err().msg,
            "comment ends before closing delimiter"
        );
        assert_eq!(
            lex("{{\u{a0}}}").unwrap_err().msg,
            "unrecognized character in action: U+00A0"
        );
        assert_eq!(
            lex("{{ 3x }}").unwrap_err().msg,
            "bad number syntax: \"3x\""
        );
    }
}
