//! End-to-end template tests: the expectations of Prometheus's
//! `template/template_test.go` for text templates, Go `text/template`
//! semantics, limits, and a no-panic property test.

use proptest::prelude::*;
use vigil_model::Labels;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

struct Fixture {
    labels: Labels,
    ext: Labels,
    url: &'static str,
    value: f64,
    result: Vec<QuerySample>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            labels: labels(&[
                ("instance", "host1:9100"),
                ("job", "node"),
                ("severity", "page"),
            ]),
            ext: labels(&[("dc", "eu1")]),
            url: "http://testhost:9090/path/prefix",
            value: 1234567.0,
            result: Vec::new(),
        }
    }

    fn with_result(mut self, r: &[(&[(&str, &str)], f64)]) -> Self {
        self.result = r
            .iter()
            .map(|(l, v)| QuerySample {
                labels: labels(l),
                value: *v,
            })
            .collect();
        self
    }

    fn opts() -> RenderOptions {
        RenderOptions {
            now: Some(1_700_000_000.5),
            ..RenderOptions::default()
        }
    }

    fn run(&self, text: &str) -> Result<String, TemplateError> {
        let data = TemplateData {
            labels: &self.labels,
            value: self.value,
            external_labels: &self.ext,
            external_url: self.url,
        };
        let result = self.result.clone();
        let q = move |_: &str| -> Result<Vec<QuerySample>, String> { Ok(result.clone()) };
        Template::parse_alert("test", text)?.render_with(&data, &q, &Self::opts())
    }
}

fn ok(text: &str) -> String {
    match Fixture::new().run(text) {
        Ok(s) => s,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn fail(text: &str) -> TemplateError {
    match Fixture::new().run(text) {
        Ok(s) => panic!("{text}: expected an error, got {s:?}"),
        Err(e) => e,
    }
}

/// `{{ f x }}:` for each literal, joined, as Prometheus's `range .` tests do.
fn each(f: &str, inputs: &[&str]) -> String {
    let text: String = inputs
        .iter()
        .map(|i| format!("{{{{ {f} {i} }}}}:"))
        .collect();
    ok(&text)
}

// ---------------------------------------------------------------------------
// Port of Prometheus template/template_test.go (TestTemplateExpansion, text
// mode). Inputs Prometheus passes as typed Go slices are written as literals
// of the matching type: ints as `1`, floats as `1.0`, strings quoted.

#[test]
fn prom_plain_and_simple() {
    assert_eq!(ok("plain text"), "plain text");
    assert_eq!(ok("{{ 1 }}"), "1");
    let e = fail("{{\u{a0}}}");
    assert_eq!(e.kind, ErrorKind::Parse);
    assert_eq!(e.reason, "unrecognized character in action: U+00A0");
    // HTML escaping does not apply to text templates.
    assert_eq!(ok("{{ \"<b>\" }}"), "<b>");
    assert_eq!(ok("{{ \"<b>\" | safeHtml }}"), "<b>");
}

#[test]
fn prom_args_and_define() {
    assert_eq!(
        ok("{{define \"x\"}}{{.arg0}} {{.arg1}}{{end}}{{template \"x\" (args 1 \"2\")}}"),
        "1 2"
    );
}

#[test]
fn prom_query_functions() {
    let f = Fixture::new().with_result(&[(&[], 1.5)]);
    assert_eq!(f.run("{{ query \"1.5\" | first | value }}").unwrap(), "1.5");
    let f = Fixture::new().with_result(&[(&[("__name__", "metric"), ("instance", "a")], 11.0)]);
    assert_eq!(
        f.run("{{ query \"metric{instance='a'}\" | first | value }}")
            .unwrap(),
        "11"
    );
    assert_eq!(
        f.run("{{ query \"metric{instance='a'}\" | first | label \"instance\" }}")
            .unwrap(),
        "a"
    );
    assert_eq!(
        f.run("{{ query \"metric{instance='a'}\" | first | label \"foo\" }}")
            .unwrap(),
        ""
    );
    assert_eq!(
        f.run("{{ $x := query \"metric\" | first }}{{ $x.Labels.foo }}")
            .unwrap(),
        ""
    );
    let f = Fixture::new().with_result(&[(&[("__name__", "metric"), ("__value__", "a")], 11.0)]);
    assert_eq!(
        f.run("{{ query \"metric{__value__='a'}\" | first | strvalue }}")
            .unwrap(),
        "a"
    );
    let f = Fixture::new().with_result(&[
        (&[("__name__", "metric"), ("instance", "b")], 21.0),
        (&[("__name__", "metric"), ("instance", "a")], 11.0),
    ]);
    assert_eq!(
        f.run("{{ range query \"metric\" | sortByLabel \"instance\" }}{{.Labels.instance}}:{{.Value}}: {{end}}")
            .unwrap(),
        "a:11: b:21: "
    );
}

#[test]
fn prom_query_errors() {
    let e = fail("{{ query \"missing\" | first }}");
    assert_eq!(e.kind, ErrorKind::Exec);
    assert_eq!(
        e.reason,
        "error calling first: first() called on vector with no elements"
    );
    // Go reports 1:21 with a 0-based column; ours is 1-based.
    assert_eq!((e.line, e.column), (1, 22));
    assert_eq!(e.context, "first");
    assert_eq!(
        e.to_string(),
        "error executing template test: template: test:1:22: executing \"test\" at <first>: \
         error calling first: first() called on vector with no elements"
    );
    let e = fail("{{ (query \"missing\").banana }}");
    assert_eq!(
        e.reason,
        "can't evaluate field banana in type template.queryResult"
    );
}

#[test]
fn prom_strip_port() {
    let cases = [
        ("foo.example.com", "foo.example.com"),
        ("foo.example.com:12345", "foo.example.com"),
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:12345", "192.0.2.1"),
        ("2001:0DB8::1", "2001:0DB8::1"),
        ("[2001:0DB8::1]:12345", "2001:0DB8::1"),
        ("[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345"),
    ];
    for (input, want) in cases {
        assert_eq!(
            ok(&format!("{{{{ {input:?} | stripPort }}}}")),
            want,
            "{input}"
        );
    }
}

#[test]
fn prom_strip_domain() {
    let cases = [
        ("foo.example.com", "foo"),
        ("foo.example.com:12345", "foo:12345"),
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:12345", "192.0.2.1:12345"),
        ("2001:0DB8::1", "2001:0DB8::1"),
        ("[2001:0DB8::1]:12345", "[2001:0DB8::1]:12345"),
        ("[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345"),
    ];
    for (input, want) in cases {
        assert_eq!(
            ok(&format!("{{{{ {input:?} | stripDomain }}}}")),
            want,
            "{input}"
        );
    }
}

#[test]
fn prom_missing_values() {
    // Prometheus renders `{{ .Foo }}` on nil data as <no value>; a missing
    // key of an interface map does the same, a missing label is "".
    assert_eq!(ok("{{ (args).Foo }}"), "<no value>");
    assert_eq!(ok("{{ .Labels.Foo }}"), "");
    assert_eq!(ok("{{ $labels.Foo }}"), "");
}

#[test]
fn prom_unparsable() {
    let e = fail("{{");
    assert_eq!(e.kind, ErrorKind::Parse);
    assert_eq!(e.reason, "unclosed action");
    assert_eq!(
        e.to_string(),
        "error parsing template test: template: test:1:1: unclosed action"
    );
}

#[test]
fn prom_re_replace_all() {
    assert_eq!(ok("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}"), "xa");
}

#[test]
fn prom_humanize() {
    assert_eq!(
        each("humanize", &["0.0", "1.0", "1234567.0", ".12"]),
        "0:1:1.235M:120m:"
    );
    assert_eq!(
        each(
            "humanize",
            &["\"0.0\"", "\"1.0\"", "\"1234567.0\"", "\".12\""]
        ),
        "0:1:1.235M:120m:"
    );
    assert_eq!(
        each(
            "humanize",
            &["0", "-1", "1", "1234567", "9223372036854775807"]
        ),
        "0:-1:1:1.235M:9.223E:"
    );
    // Prometheus's uint64 case, MaxUint64.
    assert_eq!(each("humanize", &["18446744073709551615.0"]), "18.45E:");
    let e = fail("{{ humanize \"one\" }}");
    assert_eq!(
        e.reason,
        "error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
    assert_eq!(
        (e.line, e.column, e.context.as_str()),
        (1, 4, "humanize \"one\"")
    );
}

#[test]
fn prom_humanize1024() {
    assert_eq!(
        each("humanize1024", &["0.0", "1.0", "1048576.0", ".12"]),
        "0:1:1Mi:0.12:"
    );
    assert_eq!(
        each(
            "humanize1024",
            &["\"0.0\"", "\"1.0\"", "\"1048576.0\"", "\".12\""]
        ),
        "0:1:1Mi:0.12:"
    );
    assert_eq!(
        each(
            "humanize1024",
            &["0", "-1", "1", "1234567", "9223372036854775807"]
        ),
        "0:-1:1:1.177Mi:8Ei:"
    );
    assert_eq!(each("humanize1024", &["18446744073709551615.0"]), "16Ei:");
    assert_eq!(
        fail("{{ humanize1024 \"one\" }}").reason,
        "error calling humanize1024: strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
}

#[test]
fn prom_humanize_duration() {
    assert_eq!(
        each(
            "humanizeDuration",
            &[
                "0.0",
                "1.0",
                "60.0",
                "3600.0",
                "86400.0",
                "90000.0",
                "-183845.0",
                "899.99"
            ]
        ),
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:"
    );
    assert_eq!(
        each(
            "humanizeDuration",
            &["\"0\"", "\"1\"", "\"60\"", "\"3600\"", "\"86400\""]
        ),
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:"
    );
    assert_eq!(
        each(
            "humanizeDuration",
            &[".1", ".0001", ".12345", "60.1", "60.5", "1.2345", "12.345"]
        ),
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:"
    );
    assert_eq!(
        each(
            "humanizeDuration",
            &[
                "\".1\"",
                "\".0001\"",
                "\".12345\"",
                "\"60.1\"",
                "\"60.5\"",
                "\"1.2345\"",
                "\"12.345\""
            ]
        ),
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:"
    );
    assert_eq!(
        each("humanizeDuration", &["0", "-1", "1", "1234567"]),
        "0s:-1s:1s:14d 6h 56m 7s:"
    );
    assert_eq!(
        fail("{{ humanizeDuration \"one\" }}").reason,
        "error calling humanizeDuration: strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
}

#[test]
fn prom_humanize_inf_nan() {
    let text = "{{ range $x := args \"+Inf\" \"-Inf\" \"NaN\" }}{{ humanize $x }}:{{ humanize1024 $x }}:{{ humanizeDuration $x }}:{{ humanizeTimestamp $x }}:{{ end }}";
    assert_eq!(
        ok(text),
        "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:"
    );
    // The same through float values.
    let text = "{{ range $x := args (humanize1024 \"+Inf\") }}{{ end }}{{ $i := parseDuration \"1s\" }}{{ humanize \"+Inf\" }}";
    assert_eq!(ok(text), "+Inf");
}

#[test]
fn prom_humanize_percentage() {
    assert_eq!(
        ok("{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}"),
        "-22.22%:0%:12.35%:123.5%"
    );
    assert_eq!(
        each(
            "humanizePercentage",
            &["0", "-1", "1", "1234567", "9223372036854775807"]
        ),
        "0%:-100%:100%:1.235e+08%:9.223e+20%:"
    );
    assert_eq!(
        each("humanizePercentage", &["18446744073709551615.0"]),
        "1.845e+21%:"
    );
    assert_eq!(
        ok(
            r#"{{ "-0.22222" | humanizePercentage }}:{{ "0.0" | humanizePercentage }}:{{ "0.1234567" | humanizePercentage }}:{{ "1.23456" | humanizePercentage }}"#
        ),
        "-22.22%:0%:12.35%:123.5%"
    );
    let e = fail(r#"{{ "one" | humanizePercentage }}"#);
    assert_eq!(
        e.reason,
        "error calling humanizePercentage: strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
    assert_eq!(
        (e.line, e.column, e.context.as_str()),
        (1, 12, "humanizePercentage")
    );
}

#[test]
fn prom_humanize_timestamp() {
    assert_eq!(
        each("humanizeTimestamp", &["0", "-1", "1", "1234567", "9223372036"]),
        "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:\
         1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:"
    );
    assert_eq!(
        fail("{{ humanizeTimestamp -9223372036854775808 }}").reason,
        "error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds timestamp since it overflows int64"
    );
    assert_eq!(
        fail("{{ humanizeTimestamp 18446744073709551615.0 }}").reason,
        "error calling humanizeTimestamp: 1.8446744073709552e+19 cannot be represented as a nanoseconds timestamp since it overflows int64"
    );
    assert_eq!(
        ok("{{ 1435065584.128 | humanizeTimestamp }}"),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        ok(r#"{{ "1435065584.128" | humanizeTimestamp }}"#),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
}

#[test]
fn prom_to_time() {
    assert_eq!(
        ok(r#"{{ (1435065584.128 | toTime).Format "2006" }}"#),
        "2015"
    );
    assert_eq!(
        ok(r#"{{ ("1435065584.128" | toTime).Format "2006" }}"#),
        "2015"
    );
    // Test_floatToTime.
    assert_eq!(
        ok("{{ toTime 1657155181 }}"),
        "2022-07-07 00:53:01 +0000 UTC"
    );
    assert!(
        fail("{{ toTime 1.79769313486231570814527423731704356798070e+300 }}")
            .reason
            .contains("overflows int64")
    );
    assert!(
        fail("{{ toTime -1.79769313486231570814527423731704356798070e+300 }}")
            .reason
            .contains("overflows int64")
    );
}

#[test]
fn prom_strings_and_links() {
    assert_eq!(ok("{{ \"aa bb CC\" | title }}"), "Aa Bb CC");
    assert_eq!(ok("{{ \"aa bb CC\" | toUpper }}"), "AA BB CC");
    assert_eq!(ok("{{ \"aA bB CC\" | toLower }}"), "aa bb cc");
    assert_eq!(
        ok("{{ match \"a+\" \"aa\" }} {{ match \"a+\" \"b\" }}"),
        "true false"
    );
    assert_eq!(ok("{{ graphLink \"up\" }}"), "/graph?g0.expr=up&g0.tab=0");
    assert_eq!(ok("{{ tableLink \"up\" }}"), "/graph?g0.expr=up&g0.tab=1");
    assert_eq!(ok("{{ pathPrefix }}"), "/path/prefix");
    assert_eq!(ok("{{ externalURL }}"), "http://testhost:9090/path/prefix");
    assert_eq!(
        ok("{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}"),
        "3720.01"
    );
}

// ---------------------------------------------------------------------------
// Alert template data and common rule-file idioms.

#[test]
fn alert_data() {
    assert_eq!(
        ok("{{ $labels.instance }} of {{ $labels.job }} is {{ $value }} ({{ .Value | humanize }}) in {{ $externalLabels.dc }}"),
        "host1:9100 of node is 1.234567e+06 (1.235M) in eu1"
    );
    assert_eq!(
        ok("{{ .Labels.job }}|{{ .ExternalLabels.dc }}|{{ .ExternalURL }}|{{ $externalURL }}"),
        "node|eu1|http://testhost:9090/path/prefix|http://testhost:9090/path/prefix"
    );
    assert_eq!(
        ok("{{ index $labels \"job\" }}{{ index .Labels \"nope\" }}"),
        "node"
    );
    assert_eq!(
        ok("{{ $labels }}"),
        "map[instance:host1:9100 job:node severity:page]"
    );
    assert_eq!(ok("{{ printf \"%.2f\" $value }}"), "1234567.00");
    assert_eq!(ok("{{ now }}"), "1.7000000005e+09");
    assert_eq!(
        ok("{{ now | humanizeTimestamp }}"),
        "2023-11-14 22:13:20.5 +0000 UTC"
    );
    // Plain templates have no $labels.
    let e = Template::parse("x", "{{ $labels }}").unwrap_err();
    assert_eq!(e.reason, "undefined variable \"$labels\"");
    // ...but the same data as dot.
    let f = Fixture::new();
    let data = TemplateData {
        labels: &f.labels,
        value: 2.5,
        external_labels: &f.ext,
        external_url: "",
    };
    let t = Template::parse("x", "{{ .Labels.job }} {{ .Value }}").unwrap();
    assert_eq!(t.render(&data, &NoQueries).unwrap(), "node 2.5");
    assert_eq!(
        expand_alert_template("x", "{{ $value }}", &data, &NoQueries).unwrap(),
        "2.5"
    );
}

#[test]
fn comparisons_are_typed_like_go() {
    assert_eq!(
        ok("{{ if gt $value 1000.0 }}big{{ else }}small{{ end }}"),
        "big"
    );
    let e = fail("{{ if gt $value 1 }}big{{ end }}");
    assert_eq!(
        e.reason,
        "error calling gt: incompatible types for comparison"
    );
    assert_eq!(
        ok("{{ if eq $labels.severity \"critical\" \"page\" }}y{{ end }}"),
        "y"
    );
    assert_eq!(
        ok("{{ if ne .Labels.job \"node\" }}y{{ else }}n{{ end }}"),
        "n"
    );
    assert_eq!(
        ok("{{ lt 1 2 }} {{ le 2 2 }} {{ ge \"a\" \"b\" }} {{ eq nil nil }}"),
        "true true false true"
    );
    assert_eq!(
        fail("{{ lt true false }}").reason,
        "error calling lt: invalid type for comparison"
    );
    assert_eq!(
        fail("{{ eq 1 }}").reason,
        "error calling eq: missing argument for comparison"
    );
    // Go's gt is !le, so NaN is "greater" than anything.
    let f = Fixture::new().with_result(&[(&[], f64::NAN)]);
    assert_eq!(
        f.run("{{ $v := query \"x\" | first | value }}{{ gt $v 1.0 }} {{ lt $v 1.0 }} {{ $v }}")
            .unwrap(),
        "true false NaN"
    );
}

#[test]
fn truthiness_and_logic() {
    assert_eq!(
        ok("{{ if 0 }}a{{ else if \"\" }}b{{ else if 0.0 }}c{{ else if .Labels }}d{{ end }}"),
        "d"
    );
    assert_eq!(
        ok("{{ and 1 0 2 }} {{ or 0 \"\" 3 }} {{ or 0 \"\" }} {{ not 0 }}"),
        "0 3  true"
    );
    // and/or short-circuit: the failing query is never evaluated.
    assert_eq!(ok("{{ and false (query \"x\" | first) }}"), "false");
    assert_eq!(ok("{{ or true (query \"x\" | first) }}"), "true");
    assert_eq!(ok("{{ 0 | and 1 }}"), "0");
    assert_eq!(
        ok("{{ with query \"none\" }}some{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(ok("{{ with $labels.job }}job={{ . }}{{ end }}"), "job=node");
    assert_eq!(
        ok("{{ with $labels.nope }}x{{ else with $labels.job }}{{ . }}{{ end }}"),
        "node"
    );
}

#[test]
fn variables_and_scopes() {
    assert_eq!(
        ok("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(
        ok("{{ $n := 0 }}{{ range $k, $v := $labels }}{{ $n = len $k }}{{ end }}{{ $n }}"),
        "8"
    );
    assert_eq!(ok("{{ $ := 5 }}{{ $ }}"), "5");
    assert_eq!(
        ok("{{ $.Labels.job }}{{ range $labels }}{{ $.Value }}{{ break }}{{ end }}"),
        "node1.234567e+06"
    );
    assert_eq!(
        fail("{{ $undefined = 1 }}").reason,
        "undefined variable: $undefined"
    );
}

#[test]
fn range_forms() {
    assert_eq!(
        ok("{{ range $k, $v := .Labels }}{{ $k }}={{ $v }};{{ end }}"),
        "instance=host1:9100;job=node;severity=page;"
    );
    assert_eq!(
        ok("{{ range .Labels }}{{ . }},{{ end }}"),
        "host1:9100,node,page,"
    );
    assert_eq!(ok("{{ range $i := 4 }}{{ $i }}{{ end }}"), "0123");
    assert_eq!(ok("{{ range 0 }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(
        ok("{{ range $i := 10 }}{{ if eq $i 2 }}{{ continue }}{{ end }}{{ if eq $i 5 }}{{ break }}{{ end }}{{ $i }}{{ end }}"),
        "0134"
    );
    let f = Fixture::new().with_result(&[(&[("i", "a")], 1.0), (&[("i", "b")], 2.0)]);
    assert_eq!(
        f.run(
            "{{ range $i, $s := query \"up\" }}{{ $i }}:{{ $s.Labels.i }}={{ $s.Value }} {{ end }}"
        )
        .unwrap(),
        "0:a=1 1:b=2 "
    );
    assert_eq!(
        f.run("{{ len (query \"up\") }} {{ (index (query \"up\") 1).Value }}")
            .unwrap(),
        "2 2"
    );
    assert_eq!(
        f.run("{{ range slice (query \"up\") 1 }}{{ .Labels.i }}{{ end }}")
            .unwrap(),
        "b"
    );
    assert_eq!(f.run("{{ query \"up\" | first }}").unwrap(), "{map[i:a] 1}");
    assert_eq!(
        fail("{{ range 1.5 }}{{ end }}").reason,
        "range can't iterate over 1.5"
    );
    assert_eq!(
        fail("{{ range $i, $e := 3 }}{{ end }}").reason,
        "can't use 3 to iterate over more than one variable"
    );
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(ok("a \n {{- 1 -}} \n b"), "a1b");
    assert_eq!(ok("a {{/* note */}} b {{- /* x */ -}} c"), "a  bc");
    assert_eq!(
        ok("{{ range $k, $v := $labels -}}\n  {{ $k }}\n{{ end -}}"),
        "instance\njob\nseverity\n"
    );
}

#[test]
fn builtins() {
    assert_eq!(ok("{{ len \"héllo\" }} {{ len $labels }}"), "6 3");
    assert_eq!(
        ok("{{ index \"abc\" 1 }} {{ slice \"abcdef\" 1 3 }} {{ slice \"abc\" 1 }}"),
        "98 bc bc"
    );
    assert_eq!(
        fail("{{ index \"abc\" 5 }}").reason,
        "error calling index: index out of range: 5"
    );
    assert_eq!(
        fail("{{ slice \"abc\" 2 1 }}").reason,
        "error calling slice: invalid slice index: 2 > 1"
    );
    assert_eq!(
        ok("{{ print 1 2 \"a\" 3 }}|{{ println \"x\" 1 }}|"),
        "1 2a3|x 1\n|"
    );
    assert_eq!(
        ok("{{ html \"<a href='x'>\" }}"),
        "&lt;a href=&#39;x&#39;&gt;"
    );
    assert_eq!(ok("{{ js \"it's\" }}"), "it\\'s");
    assert_eq!(
        ok("{{ urlquery \"a b&c\" }} {{ \"up{job=\\\"x\\\"}\" | urlquery }}"),
        "a+b%26c up%7Bjob%3D%22x%22%7D"
    );
    assert_eq!(
        ok("{{ printf \"%s=%d %5.1f%% %q %v %t\" \"a\" 3 99.44 \"q\" $labels.job true }}"),
        "a=3  99.4% \"q\" node true"
    );
    assert_eq!(
        ok("{{ printf \"%d\" $value }}"),
        "%!d(float64=1.234567e+06)"
    );
    assert_eq!(ok("{{ 3 | printf \"%d-%d\" 2 }}"), "2-3");
    assert_eq!(
        fail("{{ call 1 }}").reason,
        "error calling call: non-function 1 of type int"
    );
    assert_eq!(
        ok("{{ (toDuration 5400).String }} {{ toDuration 0.0015 }} {{ (toDuration 90).Minutes }}"),
        "1h30m0s 1.5ms 1.5"
    );
    assert_eq!(ok("{{ toDuration 3600 | humanizeDuration }}"), "1h 0m 0s");
    assert_eq!(
        ok("{{ (toTime 1657155181).Unix }} {{ (toTime 0).Format \"Mon Jan _2 15:04:05 2006\" }}"),
        "1657155181 Thu Jan  1 00:00:00 1970"
    );
    assert_eq!(
        ok("{{ reReplaceAll \"^(.*):[0-9]+$\" \"$1\" $labels.instance }}"),
        "host1"
    );
    assert_eq!(
        fail("{{ match \"(\" \"x\" }}").reason.split(':').next(),
        Some("error calling match")
    );
    assert!(fail("{{ parseDuration \"1x\" }}")
        .reason
        .contains("not a valid duration string"));
}

#[test]
fn exec_errors() {
    assert_eq!(
        fail("{{ .Nope }}").reason,
        format!("can't evaluate field Nope in type {}", value::ROOT_TYPE)
    );
    assert_eq!(
        fail("{{ .Value.x }}").reason,
        "can't evaluate field x in type float64"
    );
    assert_eq!(
        fail("{{ (args).a.b }}").reason,
        "nil pointer evaluating interface {}.b"
    );
    assert_eq!(fail("{{ nil }}").reason, "nil is not a command");
    assert_eq!(
        fail("{{ $value 1 }}").reason,
        "can't give argument to non-function $value"
    );
    assert_eq!(
        fail("{{ toUpper 1 }}").reason,
        "wrong type for value; expected string; got int"
    );
    assert_eq!(
        fail("{{ toUpper }}").reason,
        "wrong number of args for toUpper: want 1 got 0"
    );
    assert_eq!(
        fail("{{ template \"nope\" }}").reason,
        "template \"nope\" not defined"
    );
    assert_eq!(
        fail("{{ 99999999999999999999 }}").reason,
        "99999999999999999999 overflows int"
    );
    // Positions on later lines, errors inside defined templates.
    let e = fail("line one\n  {{ define \"t\" }}{{ .x.y }}{{ end }}\n  {{ template \"t\" 3 }}");
    assert_eq!((e.line, e.column), (2, 22));
    assert_eq!(e.executing, "t");
    assert_eq!(e.reason, "can't evaluate field x in type int");
}

#[test]
fn define_block_template() {
    assert_eq!(ok("{{ define \"a\" }}[{{ . }}]{{ end }}{{ template \"a\" $labels.job }}{{ template \"a\" }}"), "[node][<no value>]");
    assert_eq!(
        ok("{{ block \"b\" $value }}<{{ humanize . }}>{{ end }}"),
        "<1.235M>"
    );
}

#[test]
fn limits() {
    // Runaway recursion.
    let e = fail("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}");
    assert!(e.reason.contains("maximum template depth"), "{e}");
    // Unbounded loops.
    let e = fail("{{ range $i := 100000000 }}{{ end }}");
    assert!(e.reason.contains("steps"), "{e}");
    // Huge output.
    let e = fail("{{ range 100000 }}0123456789abcdefghijklmnopqrstuvwxyz{{ end }}");
    assert!(e.reason.contains("output exceeds"), "{e}");
    // Query budget.
    let e = fail("{{ range 1000 }}{{ query \"up\" }}{{ end }}");
    assert!(e.reason.contains("too many queries"), "{e}");
    // Exponential printf widths are Go's BADWIDTH.
    assert_eq!(ok("{{ printf \"%9999999d\" 1 }}"), "%!(BADWIDTH)1");
}

#[test]
fn query_errors_propagate() {
    let f = Fixture::new();
    let data = TemplateData {
        labels: &f.labels,
        value: 1.0,
        external_labels: &f.ext,
        external_url: "",
    };
    let q = |e: &str| -> Result<Vec<QuerySample>, String> { Err(format!("bad query {e}")) };
    let e = expand_alert_template("x", "{{ query \"up\" }}", &data, &q).unwrap_err();
    assert_eq!(e.reason, "error calling query: bad query up");
}

#[test]
fn template_is_shareable() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_traits::<Template>();
    assert_traits::<TemplateError>();
    let t = Template::parse_alert("x", "{{ $labels.job }}").unwrap();
    let handle = std::thread::spawn(move || {
        let l = labels(&[("job", "a")]);
        let data = TemplateData {
            labels: &l,
            value: 0.0,
            external_labels: &l,
            external_url: "",
        };
        t.render(&data, &NoQueries).unwrap()
    });
    assert_eq!(handle.join().unwrap(), "a");
}

// ---------------------------------------------------------------------------
// No input panics.

fn render_any(text: &str) {
    let f = Fixture::new().with_result(&[(&[("a", "b")], 1.0)]);
    let opts = RenderOptions {
        max_steps: 20_000,
        max_output_bytes: 1 << 16,
        ..Fixture::opts()
    };
    if let Ok(t) = Template::parse_alert("p", text) {
        let data = TemplateData {
            labels: &f.labels,
            value: f.value,
            external_labels: &f.ext,
            external_url: f.url,
        };
        let r = f.result.clone();
        let q = move |_: &str| -> Result<Vec<QuerySample>, String> { Ok(r.clone()) };
        let _ = t.render_with(&data, &q, &opts);
    }
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{{- ".to_string()),
        Just(" -}}".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just(" | ".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(" $x := ".to_string()),
        Just(" $x = ".to_string()),
        Just(" $labels.job ".to_string()),
        Just(" $value ".to_string()),
        Just(" . ".to_string()),
        Just(".Labels".to_string()),
        Just(".Value".to_string()),
        Just("if ".to_string()),
        Just("else ".to_string()),
        Just("end".to_string()),
        Just("range ".to_string()),
        Just("with ".to_string()),
        Just("define \"a\"".to_string()),
        Just("template \"a\" .".to_string()),
        Just("block \"b\" .".to_string()),
        Just("break".to_string()),
        Just("continue".to_string()),
        Just(" nil ".to_string()),
        Just(" 1 ".to_string()),
        Just(" -1.5e3 ".to_string()),
        Just(" 0x10 ".to_string()),
        Just(" \"s\\n\" ".to_string()),
        Just(" `raw` ".to_string()),
        Just(" 'c' ".to_string()),
        "[a-zA-Z]{1,3}".prop_map(|s| format!(" {s} ")),
        proptest::sample::select(super::funcs::tests_function_names())
            .prop_map(|s| format!(" {s} ")),
        Just(" \"%d %s %v %.2f %x %q %*d %[2]d %\" ".to_string()),
        Just(" 1000 ".to_string()),
        Just(" query \"up\" ".to_string()),
        Just("text ".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        render_any(&s);
    }

    #[test]
    fn template_like_text_never_panics(parts in proptest::collection::vec(fragment(), 0..40)) {
        render_any(&parts.concat());
    }

    #[test]
    fn printf_never_panics(fmt in "[%a-z0-9.*+# \\-\\[\\]]{0,30}", n in any::<i64>(), f in any::<f64>()) {
        let _ = gofmt::sprintf(&fmt, &[Value::Int(n), Value::Float(f), Value::str("s"), Value::Nil]);
    }

    #[test]
    fn humanize_functions_never_panic(f in any::<f64>()) {
        let _ = funcs::humanize(f);
        let _ = funcs::humanize1024(f);
        let _ = funcs::humanize_duration(f);
        let _ = gofmt::format_float(f, 'g', Some(4));
        let _ = gofmt::format_float(f, 'e', None);
        let _ = gofmt::format_float(f, 'f', Some(3));
    }
}
