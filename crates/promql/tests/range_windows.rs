//! A range query evaluates each range function over sliding windows, with
//! state carried from step to step (window bounds, counter resets). Every
//! step must still give exactly the instant query's answer at that time.

use proptest::prelude::*;
use vigil_model::{labels, stale_nan, MemStorage, Sample};
use vigil_promql::{Engine, EngineOptions, QueryValue};

/// A counter-like series: increments, resets to a lower value, gaps, and
/// stale markers, at irregular times.
fn series() -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::vec((1i64..40_000, 0u8..20, 0.0f64..1000.0), 1..120).prop_map(|steps| {
        let (mut t, mut v) = (0i64, 0.0f64);
        let mut out = Vec::new();
        for (dt, kind, x) in steps {
            t += dt;
            match kind {
                0 => v = x / 10.0, // counter reset (usually lower)
                1 => {
                    out.push((t, stale_nan()));
                    continue;
                }
                2 => continue, // gap
                _ => v += x,
            }
            out.push((t, v));
        }
        out
    })
}

fn bits(v: &QueryValue) -> Vec<(String, i64, u64)> {
    match v {
        QueryValue::Vector(v) => v
            .iter()
            .map(|s| (s.labels.to_string(), s.t, s.v.to_bits()))
            .collect(),
        QueryValue::Matrix(m) => m
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(move |p| (s.labels.to_string(), p.t, p.v.to_bits()))
            })
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn range_steps_equal_instant_queries(
        a in series(),
        b in series(),
        range_s in prop::sample::select(vec![30i64, 60, 90, 300]),
        step_s in prop::sample::select(vec![7i64, 15, 60]),
    ) {
        let s = MemStorage::new();
        for (name, pts) in [("a", &a), ("b", &b)] {
            s.add_series(
                labels!("__name__" => "c_total", "s" => name),
                pts.iter().map(|&(t, v)| Sample::new(t, v)),
            )
            .unwrap();
        }
        let e = Engine::new(EngineOptions::default());
        let end = a.iter().chain(&b).map(|p| p.0).max().unwrap_or(0) + 60_000;
        let step = step_s * 1000;
        for f in ["rate", "increase", "resets", "delta", "irate", "changes"] {
            let q = format!("{f}(c_total[{range_s}s])");
            let range = e.range_query(&s, &q, 0, end, step).unwrap();
            let mut want = Vec::new();
            let mut t = 0;
            while t <= end {
                let r = e.instant_query(&s, &q, t).unwrap();
                want.extend(bits(&r.value));
                t += step;
            }
            want.sort();
            let mut got = bits(&range.value);
            got.sort();
            prop_assert_eq!(got, want, "{}", q);
        }
    }
}
