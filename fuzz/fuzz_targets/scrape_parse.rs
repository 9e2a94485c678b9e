//! Feeds arbitrary bytes to both exposition parsers: they must never panic,
//! must report errors with a line inside the input, and whatever parses must
//! survive a round trip through the writer (labels, timestamps and value
//! bits, NaN as Prometheus's normal NaN).
//!
//! Run with `cargo fuzz run scrape_parse` from this directory (nightly).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_scrape::parse::write::write_sample;
use vigil_scrape::parse::{Entry, Format, ParseOptions, Parser, NORMAL_NAN_BITS};

fuzz_target!(|data: &[u8]| {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let mut p = Parser::new(data, format, ParseOptions::default());
        let mut samples = Vec::new();
        loop {
            match p.next() {
                Ok(Some(Entry::Sample(s))) => {
                    if let Ok(l) = p.labels() {
                        samples.push((l, s.value, s.timestamp));
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
                    assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
                    samples.clear();
                    break;
                }
            }
        }
        // Re-write what parsed (in the text format, whose integer
        // timestamps are exact) and parse it again.
        let mut out = String::new();
        for (l, v, t) in &samples {
            if t.is_some_and(|t| t < 0) {
                continue;
            }
            write_sample(&mut out, Format::PrometheusText, l, *v, *t);
        }
        let mut again = Parser::from_str(&out, Format::PrometheusText, ParseOptions::default());
        let mut it = samples.iter().filter(|s| !s.2.is_some_and(|t| t < 0));
        while let Some(e) = again.next().expect("written text must parse") {
            if let Entry::Sample(s) = e {
                let (l, v, t) = it.next().expect("no extra samples");
                assert_eq!(&again.labels().expect("labels"), l);
                assert_eq!(s.timestamp, *t);
                let want = if v.is_nan() { NORMAL_NAN_BITS } else { v.to_bits() };
                assert_eq!(s.value.to_bits(), want);
            }
        }
        assert!(it.next().is_none(), "every sample read back");
    }
});
