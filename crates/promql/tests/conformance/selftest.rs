//! Unit tests of the runner's own parsers and comparisons. `harness = false`
//! means `#[test]` functions would not run, so `main` calls [`run`] first.

use vigil_model::{is_stale, stale_nan, Labels};

use crate::compare::{almost_equal, strip_position, strip_regex_position, EPSILON};
use crate::script::{parse_script, Command, EvalKind, MsgMatch};
use crate::series_desc::{parse_duration, parse_number, parse_series_desc, unquote, SeqValue};

macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err(format!("{}:{}: check failed: {}", file!(), line!(), stringify!($cond)));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($fmt)+)));
        }
    };
}

fn floats(line: &str) -> Result<Vec<f64>, String> {
    let d = parse_series_desc(line)?;
    Ok(d.values
        .iter()
        .map(|v| match v {
            SeqValue::Float(f) => *f,
            SeqValue::Omitted => -12345.0,
            SeqValue::Histogram => -54321.0,
        })
        .collect())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn series_desc() -> Result<(), String> {
    let d = parse_series_desc(r#"metric{a="b", c="d e"} 1 2"#)?;
    check!(d.labels == labels(&[("__name__", "metric"), ("a", "b"), ("c", "d e")]));
    check!(d.values == vec![SeqValue::Float(1.0), SeqValue::Float(2.0)]);

    check!(floats("m 0+10x3")? == vec![0.0, 10.0, 20.0, 30.0]);
    check!(floats("m 1x2")? == vec![1.0, 1.0, 1.0]);
    check!(floats("m -1-2x3")? == vec![-1.0, -3.0, -5.0, -7.0]);
    check!(floats("m 5-1x2")? == vec![5.0, 4.0, 3.0]);
    check!(floats("m _ _x2 3")? == vec![-12345.0, -12345.0, -12345.0, 3.0]);
    check!(floats("m .5 5. 1e3 -2.5E-1 +3")? == vec![0.5, 5.0, 1000.0, -0.25, 3.0]);
    check!(floats("m Inf -Inf +inf")? == vec![f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY]);
    check!(floats("m Infx1")? == vec![f64::INFINITY, f64::INFINITY]);
    let n = floats("m NaN nan")?;
    check!(n.len() == 2 && n.iter().all(|v| v.is_nan() && !is_stale(*v)));
    let s = parse_series_desc("m 1 stale")?;
    check!(matches!(s.values[1], SeqValue::Float(v) if is_stale(v)));
    // Repeated addition, not a + i*b.
    let v = floats("m 0+0.1x3")?;
    check!(v[3] == 0.1 + 0.1 + 0.1, "got {:?}", v);
    check!(v[3] != 0.3);
    // Tabs and extra spaces.
    check!(floats("m\t1   2")? == vec![1.0, 2.0]);

    // Label-set forms.
    let d = parse_series_desc(r#"{__name__="x", a="b"} 1"#)?;
    check!(d.labels == labels(&[("__name__", "x"), ("a", "b")]));
    let d = parse_series_desc(r#"{"utf8.metric", "some label"="v"} 1"#)?;
    check!(d.labels == labels(&[("__name__", "utf8.metric"), ("some label", "v")]));
    let d = parse_series_desc("{} 3")?;
    check!(d.labels == Labels::empty());
    let d = parse_series_desc("sum 1")?;
    check!(d.labels == labels(&[("__name__", "sum")]));
    let d = parse_series_desc(r#"m{a='x\'y', b=`r\d`, c="q\"}",} 1"#)?;
    check!(
        d.labels
            == labels(&[
                ("__name__", "m"),
                ("a", "x'y"),
                ("b", r"r\d"),
                ("c", "q\"}")
            ])
    );
    let d = parse_series_desc("m:rec_1 7")?;
    check!(d.labels == labels(&[("__name__", "m:rec_1")]));

    // Histograms: counted, with spaces inside the braces.
    let d = parse_series_desc("h {{schema:0 sum:1 count:1 buckets:[1]}}x2 _ 4")?;
    check!(d.values.len() == 5);
    check!(d.values[..3].iter().all(|v| *v == SeqValue::Histogram));
    check!(d.values[4] == SeqValue::Float(4.0));
    let d = parse_series_desc("h {{count:1}}+{{count:2 buckets:[1 2]}}x3")?;
    check!(d.values.len() == 4);

    // Errors.
    check!(parse_series_desc(r#"m{a=~"b"} 1"#).is_err());
    // No hex in series descriptions: `0x5` is 0 repeated.
    check!(floats("m 0x5")? == vec![0.0; 6]);
    check!(parse_series_desc("m 1+2").is_err());
    check!(parse_series_desc(r#"m{a="b" 1"#).is_err());
    check!(parse_series_desc("m abc").is_err());
    Ok(())
}

fn almost() -> Result<(), String> {
    check!(almost_equal(1.0, 1.0, EPSILON));
    check!(almost_equal(1.0, 1.0 + 1e-7, EPSILON));
    check!(!almost_equal(1.0, 1.0 + 1e-5, EPSILON));
    check!(almost_equal(1e10, 1e10 + 1.0, EPSILON));
    check!(almost_equal(f64::NAN, f64::NAN, EPSILON));
    check!(!almost_equal(f64::NAN, 1.0, EPSILON));
    check!(almost_equal(stale_nan(), stale_nan(), EPSILON));
    check!(!almost_equal(stale_nan(), f64::NAN, EPSILON));
    check!(!almost_equal(f64::NAN, stale_nan(), EPSILON));
    check!(almost_equal(f64::INFINITY, f64::INFINITY, EPSILON));
    check!(!almost_equal(f64::INFINITY, f64::NEG_INFINITY, EPSILON));
    check!(!almost_equal(f64::INFINITY, f64::MAX, EPSILON));
    check!(almost_equal(0.0, -0.0, EPSILON));
    check!(!almost_equal(0.0, 1e-300, EPSILON));
    check!(almost_equal(0.0, 1e-320, EPSILON));
    check!(!almost_equal(-1.0, 1.0, EPSILON));
    check!(almost_equal(f64::MAX, f64::MAX, EPSILON));
    Ok(())
}

fn scalars() -> Result<(), String> {
    check!(parse_duration("0")? == 0);
    check!(parse_duration("5m")? == 300_000);
    check!(parse_duration("1h30m")? == 5_400_000);
    check!(parse_duration("1m40s")? == 100_000);
    check!(parse_duration("1ms")? == 1);
    check!(parse_duration("1d2h")? == 93_600_000);
    check!(parse_duration("1y1w")? == (365 + 7) * 86_400_000);
    check!(parse_duration("").is_err());
    check!(parse_duration("5").is_err());
    check!(parse_duration("-5m").is_err());
    check!(parse_duration("5s1m").is_err());
    check!(parse_duration("5x").is_err());

    check!(parse_number("1")? == 1.0);
    check!(parse_number("-1")? == -1.0);
    check!(parse_number("0x10")? == 16.0);
    check!(parse_number("010")? == 8.0);
    check!(parse_number("1.5e3")? == 1500.0);
    check!(parse_number("2.")? == 2.0);
    check!(parse_number(".5")? == 0.5);
    check!(parse_number("+Inf")? == f64::INFINITY);
    check!(parse_number("-inf")? == f64::NEG_INFINITY);
    check!(parse_number("NaN")?.is_nan());
    check!(parse_number("1e400").is_err());
    check!(parse_number("{} 1").is_err());
    check!(parse_number("metric").is_err());
    check!(parse_number("1 2").is_err());

    check!(unquote(r#""a\nb""#)? == "a\nb");
    check!(unquote(r#""\x41\101\u00e9""#)? == "AAé");
    check!(unquote("`a\\nb`")? == "a\\nb");
    check!(unquote(r#"'it\'s'"#)? == "it's");
    check!(unquote(r#""bad\q""#).is_err());
    check!(unquote(r#""open"#).is_err());

    check!(strip_position("PromQL warning: foo (1:5)") == "PromQL warning: foo");
    check!(strip_position("PromQL warning: foo (bar)") == "PromQL warning: foo (bar)");
    check!(strip_regex_position(r"got NaN \([0-9]+:[0-9]+\)") == Some("got NaN"));
    check!(strip_regex_position(r"monotonicity .* \(1:21\)") == Some("monotonicity .*"));
    check!(strip_regex_position("conflicting label").is_none());
    Ok(())
}

fn scripts() -> Result<(), String> {
    let text = "# comment\nload 1m\n  m{a=\"b\"} 1 2\n# comment ends the block\n\n\
                eval instant at 1m m\n  expect warn msg: PromQL warning: x (1:1)\n  expect no_info\n  m{a=\"b\"} 2\n\n\
                eval range from 0 to 2m step 1m m\n  m{a=\"b\"} 1 2 _\n\n\
                eval_fail instant at 0 foo\n  expected_fail_message some error\n\n\
                eval instant at 0 1\n  1\n\n\
                eval instant at 0 m[1m]\n  expect range vector from 0 to 1m step 1m\n  m{a=\"b\"} 1 2\n\n\
                eval instant at 0 \"x\"\n  expect string \"x\"\n\nclear\n";
    let cmds = parse_script(text).map_err(|e| format!("line {}: {}", e.line, e.msg))?;
    check!(cmds.len() == 8, "got {} commands", cmds.len());
    let Command::Load(l) = &cmds[0] else {
        return Err("first command is not a load".into());
    };
    check!(l.interval == Ok(60_000) && l.body.len() == 1 && l.body[0].0 == 3);
    let Command::Eval(e) = &cmds[1] else {
        return Err("second command is not an eval".into());
    };
    check!(e.line == 6 && e.expr == "m");
    check!(matches!(e.kind, EvalKind::Instant { at: 60_000 }));
    check!(e.no_info && !e.no_warn);
    check!(
        matches!(e.warn.as_deref(), Some([MsgMatch::Exact(m)]) if m == "PromQL warning: x (1:1)")
    );
    check!(e.series.len() == 1 && e.series[0].pos == 1 && e.body_error.is_none());
    let Command::Eval(e) = &cmds[2] else {
        return Err("third command is not an eval".into());
    };
    check!(matches!(
        e.kind,
        EvalKind::Range {
            start: 0,
            end: 120_000,
            step: 60_000
        }
    ));
    check!(e.series[0].desc.values.len() == 3);
    let Command::Eval(e) = &cmds[3] else {
        return Err("fourth command is not an eval".into());
    };
    check!(e.fail && matches!(&e.fail_msg, Some(MsgMatch::Exact(m)) if m == "some error"));
    let Command::Eval(e) = &cmds[4] else {
        return Err("fifth command is not an eval".into());
    };
    check!(e.scalar == Some(1.0));
    let Command::Eval(e) = &cmds[5] else {
        return Err("sixth command is not an eval".into());
    };
    check!(e.range_result.is_some_and(|r| r.end == 60_000) && e.body_error.is_none());
    let Command::Eval(e) = &cmds[6] else {
        return Err("seventh command is not an eval".into());
    };
    check!(e.string_result.as_deref() == Some("x"));
    check!(matches!(cmds[7], Command::Clear));

    // A multi-value instant expectation is a body error, not a file error.
    let cmds = parse_script("eval instant at 0 m\n  m 1 2\n").map_err(|e| e.msg)?;
    check!(matches!(&cmds[0], Command::Eval(e) if e.body_error.is_some()));
    // An unknown command is a file error.
    check!(parse_script("bogus\n").is_err());
    Ok(())
}

/// Runs all self-tests.
pub fn run() -> Result<(), String> {
    series_desc()?;
    almost()?;
    scalars()?;
    scripts()?;
    Ok(())
}
