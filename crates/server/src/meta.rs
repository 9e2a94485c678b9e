//! `/api/v1/format_query` and `/api/v1/parse_query` (`/api/v1/metadata` is
//! served from the scrape manager's metadata in `targets.rs`).

use axum::response::Response;
use promql_parser::label::{MatchOp, Matcher as PMatcher};
use promql_parser::parser::{
    AtModifier, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};
use serde_json::{json, Value as Json};

use crate::api::{format_value, success, ApiError, Params};

fn parsed(p: &Params) -> Result<Expr, ApiError> {
    vigil_promql::parse(p.value("query")).map_err(|e| ApiError::invalid_param("query", e))
}

/// `/api/v1/format_query`: the query pretty-printed as Prometheus's
/// `Pretty` prints it (lines split past 100 characters).
pub(crate) async fn format_query(p: Params) -> Result<Response, ApiError> {
    let expr = parsed(&p)?;
    Ok(success(Json::from(expr.prettify()), Vec::new(), Vec::new()))
}

/// `/api/v1/parse_query`: the syntax tree as JSON, in the shape of
/// Prometheus's `translateAST` (the one its UI's tree view reads).
pub(crate) async fn parse_query(p: Params) -> Result<Response, ApiError> {
    let expr = parsed(&p)?;
    Ok(success(translate(&expr), Vec::new(), Vec::new()))
}

fn ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

/// `timestamp` and `startOrEnd` of an `@` modifier.
fn at_json(at: &Option<AtModifier>) -> (Json, Json) {
    match at {
        None => (Json::Null, Json::Null),
        Some(AtModifier::Start) => (Json::Null, Json::from("start")),
        Some(AtModifier::End) => (Json::Null, Json::from("end")),
        Some(AtModifier::At(t)) => {
            let v = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => ms(&d),
                Err(e) => -ms(&e.duration()),
            };
            (Json::from(v), Json::Null)
        }
    }
}

fn matcher_json(m: &PMatcher) -> Json {
    let op = match m.op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Re(_) => "=~",
        MatchOp::NotRe(_) => "!~",
    };
    json!({"name": m.name, "value": m.value, "type": op})
}

/// The matchers of a selector as Prometheus lists them: those in braces,
/// then the one for a metric name written before the braces.
fn matchers_json(vs: &VectorSelector) -> Json {
    let mut out: Vec<Json> = vs.matchers.matchers.iter().map(matcher_json).collect();
    if let Some(name) = &vs.name {
        let present = vs
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == "__name__" && m.op == MatchOp::Equal && &m.value == name);
        if !present {
            out.push(json!({"name": "__name__", "value": name, "type": "="}));
        }
    }
    Json::Array(out)
}

fn labels_list(l: Option<&promql_parser::label::Labels>) -> Json {
    Json::from(l.map(|l| l.labels.clone()).unwrap_or_default())
}

fn translate(e: &Expr) -> Json {
    match e {
        Expr::Aggregate(a) => {
            let (grouping, without) = match &a.modifier {
                None => (Json::Array(Vec::new()), false),
                Some(LabelModifier::Include(l)) => (labels_list(Some(l)), false),
                Some(LabelModifier::Exclude(l)) => (labels_list(Some(l)), true),
            };
            json!({
                "type": "aggregation",
                "op": a.op.to_string(),
                "expr": translate(&a.expr),
                "param": a.param.as_deref().map_or(Json::Null, translate),
                "grouping": grouping,
                "without": without,
            })
        }
        Expr::Binary(b) => {
            let vectors = b.lhs.value_type() == promql_parser::parser::value::ValueType::Vector
                && b.rhs.value_type() == promql_parser::parser::value::ValueType::Vector;
            let matching = if vectors {
                let m = b.modifier.clone().unwrap_or_default();
                let card = match &m.card {
                    VectorMatchCardinality::OneToOne if b.op.is_set_operator() => "many-to-many",
                    VectorMatchCardinality::OneToOne => "one-to-one",
                    VectorMatchCardinality::ManyToOne(_) => "many-to-one",
                    VectorMatchCardinality::OneToMany(_) => "one-to-many",
                    VectorMatchCardinality::ManyToMany => "many-to-many",
                };
                let (labels, on) = match &m.matching {
                    None => (Json::Array(Vec::new()), false),
                    Some(LabelModifier::Include(l)) => (labels_list(Some(l)), true),
                    Some(LabelModifier::Exclude(l)) => (labels_list(Some(l)), false),
                };
                json!({
                    "card": card,
                    "labels": labels,
                    "on": on,
                    "include": labels_list(m.card.labels()),
                    "fillValues": {"lhs": m.fill_values.lhs, "rhs": m.fill_values.rhs},
                })
            } else {
                Json::Null
            };
            json!({
                "type": "binaryExpr",
                "op": b.op.to_string(),
                "lhs": translate(&b.lhs),
                "rhs": translate(&b.rhs),
                "matching": matching,
                "bool": b.return_bool(),
            })
        }
        Expr::Call(c) => {
            let arg_types: Vec<String> = c.func.arg_types.iter().map(|t| t.to_string()).collect();
            json!({
                "type": "call",
                "func": {
                    "name": c.func.name,
                    "argTypes": arg_types,
                    "variadic": c.func.variadic,
                    "returnType": c.func.return_type.to_string(),
                },
                "args": c.args.args.iter().map(|a| translate(a)).collect::<Vec<_>>(),
            })
        }
        Expr::MatrixSelector(m) => {
            let (timestamp, start_or_end) = at_json(&m.vs.at);
            json!({
                "type": "matrixSelector",
                "name": m.vs.name.clone().unwrap_or_default(),
                "range": ms(&m.range),
                "offset": offset_ms(&m.vs.offset),
                "matchers": matchers_json(&m.vs),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
                "anchored": false,
                "smoothed": false,
            })
        }
        Expr::Subquery(s) => {
            let (timestamp, start_or_end) = at_json(&s.at);
            json!({
                "type": "subquery",
                "expr": translate(&s.expr),
                "range": ms(&s.range),
                "offset": offset_ms(&s.offset),
                "step": s.step.as_ref().map_or(0, ms),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
                "alignEvalTime": false,
            })
        }
        Expr::NumberLiteral(n) => json!({"type": "numberLiteral", "val": format_value(n.val)}),
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": translate(&p.expr)}),
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.val}),
        Expr::Unary(u) => json!({"type": "unaryExpr", "op": "-", "expr": translate(&u.expr)}),
        Expr::VectorSelector(vs) => {
            let (timestamp, start_or_end) = at_json(&vs.at);
            json!({
                "type": "vectorSelector",
                "name": vs.name.clone().unwrap_or_default(),
                "offset": offset_ms(&vs.offset),
                "matchers": matchers_json(vs),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
                "anchored": false,
                "smoothed": false,
            })
        }
        // The parser never produces extension nodes.
        Expr::Extension(_) => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(q: &str) -> Json {
        translate(&vigil_promql::parse(q).unwrap())
    }

    #[test]
    fn selectors_list_the_name_matcher_last() {
        let t = tree("rate(up{job=~\"a.*\"}[5m] offset 1m)");
        assert_eq!(t["type"], "call");
        assert_eq!(t["func"]["name"], "rate");
        assert_eq!(t["func"]["argTypes"], json!(["matrix"]));
        assert_eq!(t["func"]["returnType"], "vector");
        let m = &t["args"][0];
        assert_eq!(m["type"], "matrixSelector");
        assert_eq!(m["range"], 300_000);
        assert_eq!(m["offset"], 60_000);
        assert_eq!(
            m["matchers"],
            json!([
                {"name": "job", "type": "=~", "value": "a.*"},
                {"name": "__name__", "type": "=", "value": "up"}
            ])
        );
        assert_eq!(m["timestamp"], Json::Null);
    }

    #[test]
    fn binary_matching_only_between_vectors() {
        let t = tree("a / on(x) group_left(y) b");
        assert_eq!(t["op"], "/");
        assert_eq!(t["matching"]["card"], "many-to-one");
        assert_eq!(t["matching"]["on"], true);
        assert_eq!(t["matching"]["labels"], json!(["x"]));
        assert_eq!(t["matching"]["include"], json!(["y"]));
        assert_eq!(tree("a > bool 1")["matching"], Json::Null);
        assert_eq!(tree("a > bool 1")["bool"], true);
        assert_eq!(tree("a and b")["matching"]["card"], "many-to-many");
    }

    #[test]
    fn aggregations_subqueries_and_at() {
        let t = tree("topk(3, sum without (a) (x))[10m:1m] @ start()");
        assert_eq!(t["type"], "subquery");
        assert_eq!(t["step"], 60_000);
        assert_eq!(t["startOrEnd"], "start");
        assert_eq!(t["expr"]["op"], "topk");
        assert_eq!(t["expr"]["param"]["val"], "3");
        assert_eq!(t["expr"]["expr"]["without"], true);
        assert_eq!(t["expr"]["expr"]["grouping"], json!(["a"]));
        assert_eq!(tree("x @ 100")["timestamp"], 100_000);
    }
}
