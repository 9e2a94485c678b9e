//! Parsing a node_exporter-like exposition of 10k lines, in both
//! formats: the scrape loop's hot path (entries only, series text as the
//! cache key) and its cache-miss path (labels built for every sample).
//!
//! Run: `cargo bench -p vigil-scrape --bench parse` (add `-- --quick` for a
//! short run). Before the timings it prints the heap allocations of one
//! parse of each payload, counted by a global allocator that wraps the
//! system one.
// The counting allocator is the only unsafe code: it forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{black_box, criterion_group, Criterion, Throughput};
use vigil_model::Labels;
use vigil_scrape::parse::write::{write_eof, write_help, write_sample, write_type};
use vigil_scrape::parse::{Entry, Format, MetricType, ParseOptions, Parser};

/// Counts allocations (and reallocations) on top of the system allocator.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments,
// so `System`'s guarantees hold; the counters have no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc` or `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes allocated while `f` runs.
fn count_allocs<R>(f: impl FnOnce() -> R) -> (u64, u64, R) {
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    let r = f();
    let (a1, b1) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    (a1 - a0, b1 - b0, r)
}

fn parse_entries(body: &str, format: Format) -> usize {
    let mut p = Parser::from_str(body, format, ParseOptions::default());
    let mut n = 0usize;
    while let Ok(Some(e)) = p.next() {
        if let Entry::Sample(s) = e {
            n += s.series.len();
        }
    }
    n
}

fn parse_with_labels(body: &str, format: Format) -> usize {
    let mut p = Parser::from_str(body, format, ParseOptions::default());
    let mut n = 0usize;
    while let Ok(Some(e)) = p.next() {
        if let Entry::Sample(_) = e {
            n += p.labels().map_or(0, |l| l.len());
        }
    }
    n
}

/// Prints the allocations of one parse of each payload, per path.
fn report_allocations() {
    for (format, name) in [
        (Format::PrometheusText, "text"),
        (Format::OpenMetrics, "openmetrics"),
    ] {
        let (body, lines) = payload(format);
        let samples = body.lines().filter(|l| !l.starts_with('#')).count();
        let (a, b, _) = count_allocs(|| parse_entries(black_box(&body), format));
        println!(
            "parse/{name}: {lines} lines, {samples} samples, {} bytes; entries: {a} allocations ({b} bytes) per parse",
            body.len()
        );
        let (a, b, _) = count_allocs(|| parse_with_labels(black_box(&body), format));
        println!(
            "parse/{name}: entries+labels: {a} allocations ({b} bytes) per parse, {:.2} per sample",
            a as f64 / samples as f64
        );
    }
}

/// 10,100 lines (10,101 in OpenMetrics) shaped like node_exporter's output: per-CPU counters,
/// per-device gauges with several labels, histograms with `le` buckets.
fn payload(format: Format) -> (String, u64) {
    let mut out = String::new();
    let mut lines = 0u64;
    let fam = |out: &mut String, name: &str, kind: MetricType| {
        write_help(out, format, name, "Seconds the CPUs spent in each mode.");
        write_type(out, format, name, kind);
        2
    };
    for f in 0..30 {
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
    for f in 0..50 {
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
    for f in 0..60 {
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
            b.iter(|| parse_entries(black_box(&body), format))
        });
        g.bench_function("entries+labels", |b| {
            b.iter(|| parse_with_labels(black_box(&body), format))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);

fn main() {
    report_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
