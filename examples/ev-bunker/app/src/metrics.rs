//! A small metrics registry writing the Prometheus text format: counters,
//! gauges and histograms with labels. Enough for the demo app; vigil's own
//! crates are not used here, so the example is an ordinary third-party
//! service as far as vigil is concerned.

use std::collections::BTreeMap;
use std::fmt::Write;

use parking_lot::Mutex;

type Key = Vec<(&'static str, String)>;

#[derive(Debug)]
struct Hist {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug)]
enum Family {
    Counter(BTreeMap<Key, f64>),
    Gauge(BTreeMap<Key, f64>),
    Histogram(Vec<f64>, BTreeMap<Key, Hist>),
}

/// The registry.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, (&'static str, Family)>>,
}

/// Latency buckets, in seconds.
pub const LATENCY: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Size buckets, in bytes.
pub const SIZE: &[f64] = &[100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0];

fn key(labels: &[(&'static str, &str)]) -> Key {
    labels.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

impl Registry {
    /// Declares a counter (so it is exported at 0 before its first use).
    pub fn counter(&self, name: &'static str, help: &'static str) {
        self.families
            .lock()
            .entry(name)
            .or_insert((help, Family::Counter(BTreeMap::new())));
    }

    /// Declares a gauge.
    pub fn gauge(&self, name: &'static str, help: &'static str) {
        self.families
            .lock()
            .entry(name)
            .or_insert((help, Family::Gauge(BTreeMap::new())));
    }

    /// Declares a histogram with `buckets`.
    pub fn histogram(&self, name: &'static str, help: &'static str, buckets: &[f64]) {
        self.families
            .lock()
            .entry(name)
            .or_insert((help, Family::Histogram(buckets.to_vec(), BTreeMap::new())));
    }

    /// Adds `v` to a counter.
    pub fn inc_by(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        if let Some((_, Family::Counter(m))) = self.families.lock().get_mut(name) {
            *m.entry(key(labels)).or_insert(0.0) += v;
        }
    }

    /// Adds 1 to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.inc_by(name, labels, 1.0);
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        if let Some((_, Family::Gauge(m))) = self.families.lock().get_mut(name) {
            m.insert(key(labels), v);
        }
    }

    /// Records an observation.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        if let Some((_, Family::Histogram(b, m))) = self.families.lock().get_mut(name) {
            let h = m.entry(key(labels)).or_insert_with(|| Hist {
                buckets: vec![0; b.len()],
                sum: 0.0,
                count: 0,
            });
            for (i, le) in b.iter().enumerate() {
                if v <= *le {
                    h.buckets[i] += 1;
                }
            }
            h.sum += v;
            h.count += 1;
        }
    }

    /// The text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let fams = self.families.lock();
        for (name, (help, f)) in fams.iter() {
            let ty = match f {
                Family::Counter(_) => "counter",
                Family::Gauge(_) => "gauge",
                Family::Histogram(..) => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            match f {
                Family::Counter(m) | Family::Gauge(m) => {
                    if m.is_empty() && matches!(f, Family::Counter(_)) {
                        let _ = writeln!(out, "{name} 0");
                    }
                    for (k, v) in m {
                        let _ = writeln!(out, "{name}{} {v}", fmt_labels(k, None));
                    }
                }
                Family::Histogram(b, m) => {
                    for (k, h) in m {
                        for (i, le) in b.iter().enumerate() {
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {}",
                                fmt_labels(k, Some(&le.to_string())),
                                h.buckets[i]
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            fmt_labels(k, Some("+Inf")),
                            h.count
                        );
                        let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(k, None), h.sum);
                        let _ = writeln!(out, "{name}_count{} {}", fmt_labels(k, None), h.count);
                    }
                }
            }
        }
        out
    }
}

fn fmt_labels(k: &Key, le: Option<&str>) -> String {
    if k.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = k
        .iter()
        .map(|(n, v)| {
            format!(
                "{n}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let r = Registry::default();
        r.counter("c_total", "A counter.");
        r.inc("c_total", &[("route", "/a\"b")]);
        r.histogram("h_seconds", "A histogram.", &[0.1, 1.0]);
        r.observe("h_seconds", &[], 0.5);
        let t = r.render();
        assert!(t.contains("c_total{route=\"/a\\\"b\"} 1\n"), "{t}");
        assert!(t.contains("h_seconds_bucket{le=\"0.1\"} 0\n"), "{t}");
        assert!(t.contains("h_seconds_bucket{le=\"1\"} 1\n"), "{t}");
        assert!(t.contains("h_seconds_bucket{le=\"+Inf\"} 1\n"), "{t}");
        assert!(t.contains("h_seconds_count 1\n"), "{t}");
    }
}
