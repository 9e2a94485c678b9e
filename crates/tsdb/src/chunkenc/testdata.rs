//! Synthetic but realistic scrape data for compression tests and the chunk
//! bench (which includes this file with `#[path]`, so it must not use any
//! crate items).
//!
//! Every series is 120 samples scraped every 15 s, with the scrape
//! timestamp off the ideal schedule by a uniform ±2 ms (what a loaded
//! Prometheus shows), unless `jitter` is off.
#![allow(dead_code)]

/// Samples per chunk, as the head cuts them.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// SplitMix64: small, deterministic, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal with mean 0 and standard deviation 1 (Irwin-Hall).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// The kinds of series measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `node_cpu_seconds_total`: a counter of 0.01 s ticks divided by 100
    /// (as node_exporter does), for the idle, user, system and iowait modes.
    CpuSeconds,
    /// `node_network_receive_bytes_total`-like: integer byte counters with
    /// noisy rates from 10 B/s to 10 MB/s.
    ByteCounter,
    /// A two-decimal gauge doing a random walk (temperatures, load).
    Gauge2dp,
    /// Constant values (`up`, `node_boot_time_seconds`, build info).
    Constant,
    /// A gauge with full-precision floats (ratios computed by recording
    /// rules): the worst case for the decimal path.
    FloatGauge,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [
        Kind::CpuSeconds,
        Kind::ByteCounter,
        Kind::Gauge2dp,
        Kind::Constant,
        Kind::FloatGauge,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::CpuSeconds => "cpu_seconds (0.01 counter)",
            Kind::ByteCounter => "bytes (int counter)",
            Kind::Gauge2dp => "gauge 2 decimals",
            Kind::Constant => "constant",
            Kind::FloatGauge => "float gauge",
        }
    }
}

/// Scrape timestamps: 15 s apart, each off by uniform ±2 ms if `jitter`.
pub fn timestamps(rng: &mut Rng, n: usize, jitter: bool) -> Vec<i64> {
    let t0 = 1_700_000_000_000 + rng.range(0, 15_000);
    (0..n as i64)
        .map(|i| t0 + i * 15_000 + if jitter { rng.range(-2, 2) } else { 0 })
        .collect()
}

/// One chunk's worth of samples of `kind`; `seed` picks the series.
pub fn series(kind: Kind, seed: u64, jitter: bool) -> Vec<(i64, f64)> {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(kind as u64));
    let n = SAMPLES_PER_CHUNK;
    let ts = timestamps(&mut rng, n, jitter);
    let values: Vec<f64> = match kind {
        Kind::CpuSeconds => {
            // Utilisation per mode; 100 ticks per second, 15 s per scrape.
            let util: f64 = [0.93, 0.05, 0.015, 0.001][(seed % 4) as usize];
            let mut ticks = rng.range(1_000_000, 100_000_000);
            (0..n)
                .map(|_| {
                    let v = ticks as f64 / 100.0;
                    let mean = util * 1500.0;
                    let inc = (mean + rng.normal() * mean.sqrt() * 2.0).round();
                    ticks += inc.max(0.0) as i64;
                    v
                })
                .collect()
        }
        Kind::ByteCounter => {
            let rate = 10f64.powf(1.0 + rng.unit() * 6.0);
            let mut bytes = rng.range(1_000_000, 1_000_000_000_000);
            (0..n)
                .map(|_| {
                    let v = bytes as f64;
                    let inc = rate * 15.0 * (1.0 + 0.5 * rng.normal()).max(0.0);
                    bytes += inc as i64;
                    v
                })
                .collect()
        }
        Kind::Gauge2dp => {
            let mut c = rng.range(1_000, 9_000);
            (0..n)
                .map(|_| {
                    let v = c as f64 / 100.0;
                    c += rng.range(-50, 50);
                    v
                })
                .collect()
        }
        Kind::Constant => {
            let v = [1.0, 8.0, 1_699_123_456.0, 0.0][(seed % 4) as usize];
            vec![v; n]
        }
        Kind::FloatGauge => {
            let mut v = rng.unit();
            (0..n)
                .map(|_| {
                    v = (v + rng.normal() * 0.01).abs();
                    v
                })
                .collect()
        }
    };
    ts.into_iter().zip(values).collect()
}
