//! Splitting a test script into commands (FORMAT.md §1–§3).

use std::sync::LazyLock;

use regex::Regex;

use crate::series_desc::{parse_duration, parse_number, parse_series_desc, unquote, SeriesDesc};

static PAT_LOAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^load(?:_(with_nhcb))?\s+(.+?)$").expect("regex"));
static PAT_EVAL_INSTANT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
        .expect("regex")
});
static PAT_EVAL_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
    .expect("regex")
});
static PAT_EXPECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
        .expect("regex")
});
static PAT_EXPECT_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^expect\s+range\s+vector\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)$")
        .expect("regex")
});

/// A script line number (1-based) with an error message.
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub line: usize,
    pub msg: String,
}

/// How an expected message is matched.
#[derive(Debug, Clone)]
pub enum MsgMatch {
    /// Any message.
    Any,
    /// Exact text (after trimming).
    Exact(String),
    /// Unanchored regex, with its source text.
    Regex(Regex, String),
}

/// The body line `expect range vector from … to … step …`.
#[derive(Debug, Clone, Copy)]
pub struct RangeResult {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// Instant or range evaluation.
#[derive(Debug, Clone, Copy)]
pub enum EvalKind {
    Instant { at: i64 },
    Range { start: i64, end: i64, step: i64 },
}

/// One expected series line, with its position among the series lines
/// (1-based, as the harness counts for `ordered`).
#[derive(Debug, Clone)]
pub struct ExpectedSeries {
    pub desc: SeriesDesc,
    pub pos: usize,
}

/// A parsed `eval` command. Body errors are kept (`body_error`) so that one
/// malformed eval fails alone instead of aborting the file.
#[derive(Debug, Clone)]
pub struct EvalCmd {
    pub line: usize,
    pub expr: String,
    pub kind: EvalKind,
    pub fail: bool,
    pub fail_msg: Option<MsgMatch>,
    pub ordered: bool,
    /// `Some` when warnings are required; the list holds the matchers.
    pub warn: Option<Vec<MsgMatch>>,
    pub no_warn: bool,
    pub info: Option<Vec<MsgMatch>>,
    pub no_info: bool,
    pub range_result: Option<RangeResult>,
    pub string_result: Option<String>,
    pub scalar: Option<f64>,
    pub series: Vec<ExpectedSeries>,
    /// Raw body text, for the `{{` check.
    pub body_text: String,
    pub body_error: Option<ScriptError>,
}

/// A load block, body lines unparsed (parsed when it runs).
#[derive(Debug, Clone)]
pub struct LoadCmd {
    pub line: usize,
    pub interval: Result<i64, String>,
    pub with_nhcb: bool,
    /// (line number, text)
    pub body: Vec<(usize, String)>,
}

#[derive(Debug, Clone)]
pub enum Command {
    Clear,
    Load(LoadCmd),
    Eval(Box<EvalCmd>),
}

/// Trimmed lines, comments blanked (FORMAT.md §1).
fn get_lines(input: &str) -> Vec<String> {
    input
        .split('\n')
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// Parses a script into commands. Only structural errors (an unknown
/// command, an unparsable eval header) are file-level errors.
pub fn parse_script(input: &str) -> Result<Vec<Command>, ScriptError> {
    let lines = get_lines(input);
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_lowercase();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (next, cmd) = parse_load(&lines, i)?;
            cmds.push(Command::Load(cmd));
            i = next;
        } else if word.starts_with("eval") {
            let (next, cmd) = parse_eval(&lines, i)?;
            cmds.push(Command::Eval(Box::new(cmd)));
            i = next;
        } else {
            return Err(ScriptError {
                line: i + 1,
                msg: format!("invalid command {l:?}"),
            });
        }
    }
    Ok(cmds)
}

fn parse_load(lines: &[String], i: usize) -> Result<(usize, LoadCmd), ScriptError> {
    let caps = PAT_LOAD.captures(&lines[i]).ok_or_else(|| ScriptError {
        line: i + 1,
        msg: format!("invalid load command {:?}", lines[i]),
    })?;
    let with_nhcb = caps.get(1).is_some();
    let interval = parse_duration(&caps[2]);
    let mut body = Vec::new();
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        body.push((j + 1, lines[j].clone()));
        j += 1;
    }
    Ok((
        j,
        LoadCmd {
            line: i + 1,
            interval,
            with_nhcb,
            body,
        },
    ))
}

fn parse_msg_match(kind: Option<&str>, text: Option<&str>) -> Result<MsgMatch, String> {
    match (kind, text.map(str::trim)) {
        (None, _) => Ok(MsgMatch::Any),
        (Some("msg"), Some(t)) => Ok(MsgMatch::Exact(t.to_string())),
        (Some("regex"), Some(t)) => Regex::new(t)
            .map(|r| MsgMatch::Regex(r, t.to_string()))
            .map_err(|e| format!("invalid regex {t:?}: {e}")),
        _ => Err("invalid expect line".into()),
    }
}

fn parse_eval(lines: &[String], i: usize) -> Result<(usize, EvalCmd), ScriptError> {
    let header = &lines[i];
    let line = i + 1;
    let serr = |msg: String| ScriptError { line, msg };
    let (modifier, expr, kind) = if let Some(c) = PAT_EVAL_INSTANT.captures(header) {
        let at = c.get(2).map(|m| m.as_str()).unwrap_or("");
        let at = parse_duration(at).map_err(|e| serr(format!("invalid timestamp {at:?}: {e}")))?;
        (
            c.get(1).map(|m| m.as_str().to_string()),
            c[3].to_string(),
            EvalKind::Instant { at },
        )
    } else if let Some(c) = PAT_EVAL_RANGE.captures(header) {
        let d =
            |k: usize| parse_duration(&c[k]).map_err(|e| serr(format!("invalid duration: {e}")));
        let (start, end, step) = (d(2)?, d(3)?, d(4)?);
        if end < start {
            return Err(serr(format!(
                "invalid test definition, end timestamp ({}) is before start timestamp ({})",
                &c[3], &c[2]
            )));
        }
        if step <= 0 {
            return Err(serr("invalid step: must be positive".into()));
        }
        (
            c.get(1).map(|m| m.as_str().to_string()),
            c[5].to_string(),
            EvalKind::Range { start, end, step },
        )
    } else {
        return Err(serr(format!(
            "invalid evaluation command {header:?}: must be 'eval[_fail|_warn|_info|_ordered] instant at <time> <query>' or 'eval[_fail|_warn|_info] range from <from> to <to> step <step> <query>'"
        )));
    };
    let mut cmd = EvalCmd {
        line,
        expr,
        kind,
        fail: false,
        fail_msg: None,
        ordered: false,
        warn: None,
        no_warn: false,
        info: None,
        no_info: false,
        range_result: None,
        string_result: None,
        scalar: None,
        series: Vec::new(),
        body_text: String::new(),
        body_error: None,
    };
    match modifier.as_deref() {
        Some("fail") => cmd.fail = true,
        Some("warn") => cmd.warn = Some(vec![MsgMatch::Any]),
        Some("info") => cmd.info = Some(vec![MsgMatch::Any]),
        Some("ordered") => cmd.ordered = true,
        _ => {}
    }
    let is_instant = matches!(kind, EvalKind::Instant { .. });
    let mut j = i;
    let mut pos = 0;
    while j + 1 < lines.len() {
        j += 1;
        let def = &lines[j];
        if def.is_empty() {
            j -= 1;
            break;
        }
        cmd.body_text.push_str(def);
        cmd.body_text.push('\n');
        if cmd.body_error.is_some() {
            continue;
        }
        let bline = j + 1;
        match parse_body_line(&mut cmd, def, is_instant, &mut pos) {
            Err(msg) => cmd.body_error = Some(ScriptError { line: bline, msg }),
            // A bare number or a legacy expected_fail_* line ends the body,
            // as in the harness; a following non-blank line is then read as
            // a new command.
            Ok(true) => break,
            Ok(false) => {}
        }
    }
    Ok((j + 1, cmd))
}

fn parse_body_line(
    cmd: &mut EvalCmd,
    def: &str,
    is_instant: bool,
    pos: &mut usize,
) -> Result<bool, String> {
    if cmd.fail {
        if let Some(rest) = def.strip_prefix("expected_fail_message") {
            cmd.fail_msg = Some(MsgMatch::Exact(rest.trim().to_string()));
            return Ok(true);
        }
        if let Some(rest) = def.strip_prefix("expected_fail_regexp") {
            cmd.fail_msg = Some(parse_msg_match(Some("regex"), Some(rest))?);
            return Ok(true);
        }
    }
    if def.starts_with("expect") {
        if let Some(rest) = def.strip_prefix("expect string") {
            if !is_instant {
                return Err("expect string is only allowed for instant evals".into());
            }
            cmd.string_result = Some(unquote(rest.trim())?);
            return Ok(false);
        }
        if def.starts_with("expect range vector") {
            if !is_instant {
                return Err("expect range vector is only allowed for instant evals".into());
            }
            let c = PAT_EXPECT_RANGE
                .captures(def)
                .ok_or_else(|| format!("invalid expect range vector line {def:?}"))?;
            let start = parse_duration(&c[1])?;
            let end = parse_duration(&c[2])?;
            let step = parse_duration(&c[3])?;
            if end < start || step <= 0 {
                return Err(format!("invalid range in {def:?}"));
            }
            cmd.range_result = Some(RangeResult { start, end, step });
            return Ok(false);
        }
        let c = PAT_EXPECT
            .captures(def)
            .ok_or_else(|| format!("invalid expect statement {def:?}"))?;
        let m = parse_msg_match(c.get(2).map(|m| m.as_str()), c.get(3).map(|m| m.as_str()))?;
        match &c[1] {
            "ordered" => {
                if !is_instant {
                    return Err("expect ordered is only allowed for instant evals".into());
                }
                cmd.ordered = true;
            }
            "fail" => {
                if cmd.fail && cmd.fail_msg.is_some() {
                    return Err("more than one expect fail line".into());
                }
                cmd.fail = true;
                if !matches!(m, MsgMatch::Any) {
                    cmd.fail_msg = Some(m);
                }
            }
            "warn" => {
                if cmd.no_warn {
                    return Err("cannot combine expect warn and expect no_warn".into());
                }
                cmd.warn.get_or_insert_with(Vec::new).push(m);
            }
            "info" => {
                if cmd.no_info {
                    return Err("cannot combine expect info and expect no_info".into());
                }
                cmd.info.get_or_insert_with(Vec::new).push(m);
            }
            "no_warn" => {
                if cmd.warn.is_some() {
                    return Err("cannot combine expect warn and expect no_warn".into());
                }
                cmd.no_warn = true;
            }
            "no_info" => {
                if cmd.info.is_some() {
                    return Err("cannot combine expect info and expect no_info".into());
                }
                cmd.no_info = true;
            }
            other => return Err(format!("unknown expect type {other:?}")),
        }
        return Ok(false);
    }
    if let Ok(f) = parse_number(def) {
        cmd.scalar = Some(f);
        return Ok(true);
    }
    let desc = parse_series_desc(def)?;
    if desc.values.len() > 1 && is_instant && cmd.range_result.is_none() {
        return Err("expecting multiple values in instant evaluation not allowed".into());
    }
    *pos += 1;
    cmd.series.push(ExpectedSeries { desc, pos: *pos });
    Ok(false)
}
