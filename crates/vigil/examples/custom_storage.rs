//! The PromQL engine over storage it has never heard of: a `Vec` of series
//! the application already holds (say, readings loaded from a CSV file or
//! kept by another system). Implementing three small traits
//! (`Queryable` → `Querier` → `Series`) is all it takes; the engine never
//! depends on vigil's own storage.
//!
//! Run it with `cargo run -p vigil --no-default-features --example
//! custom_storage`. It exits non-zero if an answer is wrong; `cargo test`
//! runs the same logic.

use std::error::Error;
use std::process::ExitCode;

use vigil::model::storage::{matches_all, SliceIterator};
use vigil::model::{
    labels, Labels, Matcher, Querier, Queryable, Sample, SampleIterator, SelectHints, Series,
    SeriesSet, StorageError,
};
use vigil::promql::{Engine, EngineOptions, QueryValue};

/// The application's data: series sorted by labels, samples in time order.
struct VecStore {
    series: Vec<(Labels, Vec<Sample>)>,
}

impl VecStore {
    fn new(mut series: Vec<(Labels, Vec<Sample>)>) -> VecStore {
        series.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, samples) in &mut series {
            samples.sort_by_key(|s| s.t);
        }
        VecStore { series }
    }
}

impl Queryable for VecStore {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(VecQuerier {
            store: self,
            mint,
            maxt,
        }))
    }
}

/// A view of the store over `[mint, maxt]`.
struct VecQuerier<'a> {
    store: &'a VecStore,
    mint: i64,
    maxt: i64,
}

/// One selected series: a slice of the store, nothing copied.
struct VecSeries<'a> {
    labels: &'a Labels,
    samples: &'a [Sample],
}

impl Series for VecSeries<'_> {
    fn labels(&self) -> &Labels {
        self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + Send + '_> {
        Box::new(SliceIterator::new(self.samples))
    }
}

impl Querier for VecQuerier<'_> {
    fn select(
        &self,
        _sorted: bool, // the store is always sorted
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        let mut series: Vec<Box<dyn Series + '_>> = Vec::new();
        for (labels, samples) in &self.store.series {
            if !matches_all(labels, matchers) {
                continue;
            }
            let lo = samples.partition_point(|s| s.t < self.mint);
            let hi = samples.partition_point(|s| s.t <= self.maxt);
            if lo < hi {
                series.push(Box::new(VecSeries {
                    labels,
                    samples: &samples[lo..hi],
                }));
            }
        }
        Ok(SeriesSet {
            series,
            warnings: Vec::new(),
        })
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> = self
            .store
            .series
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .flat_map(|(l, _)| l.iter().map(|l| l.name.to_string()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values: Vec<String> = self
            .store
            .series
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .filter_map(|(l, _)| l.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

/// Temperatures of three rooms, one reading a minute for an hour: the
/// kitchen at 21 °C, the cellar at 12 °C, the attic warming from 20 °C by
/// 0.1 °C a minute.
fn readings() -> VecStore {
    let minute = 60_000;
    let room = |name: &str, floor: &str, f: &dyn Fn(i64) -> f64| {
        (
            labels!("__name__" => "room_temperature_celsius", "room" => name, "floor" => floor),
            (0..=60).map(|m| Sample::new(m * minute, f(m))).collect(),
        )
    };
    VecStore::new(vec![
        room("kitchen", "ground", &|_| 21.0),
        room("cellar", "basement", &|_| 12.0),
        room("attic", "top", &|m| 20.0 + 0.1 * m as f64),
    ])
}

fn run() -> Result<(), Box<dyn Error>> {
    let store = readings();
    let engine = Engine::new(EngineOptions::default());
    let hour = 3_600_000;
    let mut failures = Vec::new();
    let mut check = |what: &str, got: f64, want: f64| {
        let ok = (got - want).abs() < 1e-9;
        println!(
            "{what:<50} = {got:.4} ({})",
            if ok { "ok" } else { "WRONG" }
        );
        if !ok {
            failures.push(format!("{what}: got {got}, want {want}"));
        }
    };

    // An instant query: the warmest room now.
    let r = engine.instant_query(&store, "topk(1, room_temperature_celsius)", hour)?;
    let QueryValue::Vector(v) = r.value else {
        return Err("topk: not a vector".into());
    };
    if v.len() != 1 || v[0].labels.get("room") != Some("attic") {
        return Err(format!("the warmest room should be the attic: {v:?}").into());
    }
    check("attic now (°C)", v[0].v, 26.0);

    // Functions over ranges: how fast the attic warms, per hour.
    let r = engine.instant_query(
        &store,
        "deriv(room_temperature_celsius{room=\"attic\"}[30m]) * 3600",
        hour,
    )?;
    let QueryValue::Vector(v) = r.value else {
        return Err("deriv: not a vector".into());
    };
    check(
        "attic warming (°C per hour)",
        v.first().map_or(f64::NAN, |s| s.v),
        6.0,
    );

    // Aggregation and a range query: the house average every 20 minutes.
    let r = engine.range_query(
        &store,
        "avg(room_temperature_celsius)",
        0,
        hour,
        20 * 60_000,
    )?;
    let QueryValue::Matrix(m) = r.value else {
        return Err("avg: not a matrix".into());
    };
    let points: Vec<f64> = m
        .first()
        .map(|s| s.points.iter().map(|p| p.v).collect())
        .unwrap_or_default();
    if points.len() != 4 {
        return Err(format!("expected 4 points, got {points:?}").into());
    }
    for (i, want) in [53.0 / 3.0, 55.0 / 3.0, 57.0 / 3.0, 59.0 / 3.0]
        .into_iter()
        .enumerate()
    {
        check(
            &format!("house average at {}m (°C)", i * 20),
            points[i],
            want,
        );
    }

    // Label values come from the store too.
    let floors = store.querier(0, hour)?.label_values("floor", &[])?;
    if floors != ["basement", "ground", "top"] {
        return Err(format!("unexpected floors {floors:?}").into());
    }

    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custom_storage: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_are_right() {
        super::run().unwrap();
    }
}
