//! Parsing a node_exporter-like exposition of about 10k lines, in both
//! formats: the scrape loop's hot path (entries only, series text as the
//! cache key) and its cache-miss path (labels built for every sample).
//!
//! Run: `cargo bench -p vigil-scrape --bench parse` (add `-- --quick` for a
//! short run).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use vigil_model::Labels;
use vigil_scrape::parse::write::{write_eof, write_help, write_sample, write_type};
use vigil_scrape::parse::{Entry, Format, MetricType, ParseOptions, Parser};

/// About 10k lines shaped like node_exporter's output: per-CPU counters,
/// per-device gauges with several labels, histograms with `le` buckets.
fn payload(format: Format) -> (String, u64) {
    let mut out = String::new();
    let mut lines = 0u64;
    let fam = |out: &mut String, name: &str, kind: MetricType| {
        write_help(out, format, name, "Seconds the CPUs spent in each mode.");
        write_type(out, format, name, kind);
        2
    };
    for f in 0..20 {
        let name = format!("node_cpu_seconds_total_{f}");
        lines += fam(&mut out, &name, MetricType::Counter);
        for cpu in 0..16 {
            for mode in [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ] {
                let l = Labels::from_pairs([
                    ("__name__", name.as_str()),
                    ("cpu", &cpu.to_string()),
                    ("mode", mode),
                ]);
                write_sample(&mut out, format, &l, 123_456.78 + cpu as f64, None);
                lines += 1;
            }
        }
    }
    for f in 0..40 {
        let name = format!("node_filesystem_avail_bytes_{f}");
        lines += fam(&mut out, &name, MetricType::Gauge);
        for dev in 0..80 {
            let l = Labels::from_pairs([
                ("__name__", name.as_str()),
                ("device", &format!("/dev/nvme0n1p{dev}")),
                ("fstype", "ext4"),
                ("mountpoint", &format!("/srv/data/volume{dev}")),
            ]);
            write_sample(&mut out, format, &l, 9.87654321e11, None);
            lines += 1;
        }
    }
    for f in 0..30 {
        let name = format!("http_request_duration_seconds_{f}");
        lines += fam(&mut out, &name, MetricType::Histogram);
        for h in 0..3 {
            for le in [
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
            ] {
                let l = Labels::from_pairs([
                    ("__name__", format!("{name}_bucket").as_str()),
                    ("handler", &format!("/api/v1/h{h}")),
                    ("le", le),
                ]);
                write_sample(&mut out, format, &l, 42.0, None);
                lines += 1;
            }
        }
    }
    if format == Format::OpenMetrics {
        write_eof(&mut out);
        lines += 1;
    }
    (out, lines)
}

fn bench(c: &mut Criterion) {
    for (format, name) in [
        (Format::PrometheusText, "text"),
        (Format::OpenMetrics, "openmetrics"),
    ] {
        let (body, lines) = payload(format);
        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.throughput(Throughput::Elements(lines));
        g.bench_function("entries", |b| {
            b.iter(|| {
                let mut p = Parser::from_str(black_box(&body), format, ParseOptions::default());
                let mut n = 0usize;
                while let Ok(Some(e)) = p.next() {
                    if let Entry::Sample(s) = e {
                        n += s.series.len();
                    }
                }
                n
            })
        });
        g.bench_function("entries+labels", |b| {
            b.iter(|| {
                let mut p = Parser::from_str(black_box(&body), format, ParseOptions::default());
                let mut n = 0usize;
                while let Ok(Some(e)) = p.next() {
                    if let Entry::Sample(_) = e {
                        n += p.labels().map_or(0, |l| l.len());
                    }
                }
                n
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
