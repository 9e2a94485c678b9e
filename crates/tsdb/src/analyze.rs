//! `vigil tsdb analyze`: what a data directory holds, in the spirit of
//! `promtool tsdb analyze`: blocks, series, samples, bytes per sample, the
//! WAL's size, and the metrics and labels with the highest cardinality.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use vigil_model::{Queryable, METRIC_NAME};

use crate::db::{Db, Options};
use crate::error::TsdbError;

/// One block in the report.
#[derive(Debug, Clone)]
pub struct BlockReport {
    /// The block's id.
    pub ulid: String,
    /// First timestamp (ms, inclusive).
    pub min_time: i64,
    /// Last timestamp (ms, exclusive).
    pub max_time: i64,
    /// Series in the block.
    pub series: u64,
    /// Samples in the block.
    pub samples: u64,
    /// Chunks in the block.
    pub chunks: u64,
    /// Bytes of chunk segment files.
    pub chunk_bytes: u64,
    /// Bytes of all the block's files.
    pub total_bytes: u64,
}

/// What [`analyze`] found.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeReport {
    /// The blocks, oldest first.
    pub blocks: Vec<BlockReport>,
    /// Series in the head.
    pub head_series: u64,
    /// Samples in the head.
    pub head_samples: u64,
    /// The head's time range, if it has samples.
    pub head_range: Option<(i64, i64)>,
    /// Bytes of WAL segments and checkpoints.
    pub wal_bytes: u64,
    /// Bytes of head chunk files actually used on disk.
    pub head_chunk_bytes: u64,
    /// Distinct series over head and blocks.
    pub total_series: u64,
    /// Metric names with their number of series, highest first.
    pub top_metrics: Vec<(String, u64)>,
    /// Label names with their number of distinct values, highest first.
    pub top_labels: Vec<(String, u64)>,
    /// Label pairs with their number of series, highest first.
    pub top_pairs: Vec<(String, u64)>,
}

impl AnalyzeReport {
    /// Samples in blocks.
    pub fn block_samples(&self) -> u64 {
        self.blocks.iter().map(|b| b.samples).sum()
    }

    /// Bytes per sample of the blocks' chunk files alone.
    pub fn chunk_bytes_per_sample(&self) -> Option<f64> {
        let s = self.block_samples();
        (s > 0).then(|| self.blocks.iter().map(|b| b.chunk_bytes).sum::<u64>() as f64 / s as f64)
    }

    /// Bytes per sample of everything on disk: blocks, WAL and head chunks,
    /// over every sample in blocks and head.
    pub fn disk_bytes_per_sample(&self) -> Option<f64> {
        let s = self.block_samples() + self.head_samples;
        let b: u64 = self.blocks.iter().map(|b| b.total_bytes).sum::<u64>()
            + self.wal_bytes
            + self.head_chunk_bytes;
        (s > 0).then(|| b as f64 / s as f64)
    }
}

fn fmt_ms(ms: i64) -> String {
    vigil_model::time::to_system_time(ms)
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| format!("{}", d.as_secs()))
        .unwrap_or_else(|_| ms.to_string())
}

fn fmt_duration(ms: i64) -> String {
    let s = ms / 1000;
    format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
}

impl fmt::Display for AnalyzeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Blocks: {}", self.blocks.len())?;
        for b in &self.blocks {
            writeln!(
                f,
                "  Block ID: {}  mint: {}  maxt: {}  duration: {}  series: {}  samples: {}  chunks: {}  size: {} B",
                b.ulid,
                fmt_ms(b.min_time),
                fmt_ms(b.max_time),
                fmt_duration(b.max_time - b.min_time),
                b.series,
                b.samples,
                b.chunks,
                b.total_bytes
            )?;
        }
        match self.head_range {
            Some((a, b)) => writeln!(
                f,
                "Head: series: {}  samples: {}  mint: {}  maxt: {}  duration: {}",
                self.head_series,
                self.head_samples,
                fmt_ms(a),
                fmt_ms(b),
                fmt_duration(b - a)
            )?,
            None => writeln!(f, "Head: empty")?,
        }
        writeln!(f, "WAL size: {} B", self.wal_bytes)?;
        writeln!(f, "Head chunk files: {} B", self.head_chunk_bytes)?;
        writeln!(f, "Series (head and blocks): {}", self.total_series)?;
        writeln!(
            f,
            "Samples: {} in blocks, {} in the head",
            self.block_samples(),
            self.head_samples
        )?;
        match self.chunk_bytes_per_sample() {
            Some(b) => writeln!(f, "Bytes per sample (block chunks only): {b:.3}")?,
            None => writeln!(f, "Bytes per sample (block chunks only): no blocks")?,
        }
        if let Some(b) = self.disk_bytes_per_sample() {
            writeln!(f, "Bytes per sample (all files on disk): {b:.3}")?;
        }
        writeln!(f, "\nHighest cardinality metric names:")?;
        for (n, c) in &self.top_metrics {
            writeln!(f, "{c} {n}")?;
        }
        writeln!(f, "\nHighest cardinality labels:")?;
        for (n, c) in &self.top_labels {
            writeln!(f, "{c} {n}")?;
        }
        writeln!(f, "\nMost common label pairs:")?;
        for (n, c) in &self.top_pairs {
            writeln!(f, "{c} {n}")?;
        }
        Ok(())
    }
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                (m.blocks() * 512).min(m.len())
            }
            Err(_) => 0,
        })
        .sum()
}

fn top<K: Ord + Clone>(m: HashMap<K, u64>, limit: usize) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

/// Analyzes the data directory `dir`, listing the `limit` highest
/// cardinalities. Opens the database (so the directory must not be in use
/// by a running vigil: analyze a snapshot instead).
pub fn analyze(dir: impl AsRef<Path>, limit: usize) -> Result<AnalyzeReport, TsdbError> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(TsdbError::io(
            "open data directory",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        ));
    }
    let db = Db::open(
        dir,
        Options {
            retention_time: None,
            ..Options::default()
        },
    )?;
    let mut report = AnalyzeReport::default();
    for b in db.open_blocks() {
        let meta = b.meta();
        let size = b.size();
        report.blocks.push(BlockReport {
            ulid: meta.ulid.to_string(),
            min_time: meta.min_time,
            max_time: meta.max_time,
            series: meta.stats.num_series,
            samples: meta.stats.num_samples,
            chunks: meta.stats.num_chunks,
            chunk_bytes: size.chunks,
            total_bytes: size.total(),
        });
    }
    report.head_series = db.head().num_series();
    report.head_samples = db.head().num_samples();
    report.head_range = db.head().time_range();
    report.wal_bytes = db.head().wal().size_bytes().unwrap_or(0);
    report.head_chunk_bytes = dir_bytes(&dir.join("chunks_head"));

    let q = db
        .querier(i64::MIN, i64::MAX)
        .map_err(|e| TsdbError::io("query", dir, std::io::Error::other(e.to_string())))?;
    let set = q
        .select(false, None, &[])
        .map_err(|e| TsdbError::io("query", dir, std::io::Error::other(e.to_string())))?;
    let mut metrics: HashMap<String, u64> = HashMap::new();
    let mut values: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut pairs: HashMap<String, u64> = HashMap::new();
    report.total_series = set.series.len() as u64;
    for s in &set.series {
        let l = s.labels();
        *metrics
            .entry(l.get(METRIC_NAME).unwrap_or("").to_string())
            .or_default() += 1;
        for lb in l.iter() {
            values
                .entry(lb.name.to_string())
                .or_default()
                .insert(lb.value.to_string());
            *pairs
                .entry(format!("{}={}", lb.name, lb.value))
                .or_default() += 1;
        }
    }
    report.top_metrics = top(metrics, limit);
    report.top_labels = top(
        values
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect(),
        limit,
    );
    report.top_pairs = top(pairs, limit);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::{labels, Appender, Value};

    #[test]
    fn reports_blocks_head_and_cardinality() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut o = Options::default();
            o.head.chunk_range = 1_000;
            o.retention_time = None;
            let db = Db::open(dir.path(), o).unwrap();
            let mut app = db.appender();
            for t in (0..5_000).step_by(100) {
                for i in 0..3 {
                    let l = labels!("__name__" => "a", "i" => i.to_string().as_str());
                    app.append(None, &l, t, Value::Float(1.0)).unwrap();
                }
                app.append(None, &labels!("__name__" => "b"), t, Value::Float(1.0))
                    .unwrap();
            }
            app.commit().unwrap();
            db.maintain().unwrap();
        }
        let r = analyze(dir.path(), 10).unwrap();
        assert!(!r.blocks.is_empty());
        assert_eq!(r.total_series, 4);
        assert_eq!(r.block_samples() + r.head_samples, 200);
        assert_eq!(r.top_metrics[0], ("a".to_string(), 3));
        assert_eq!(r.top_labels[0], ("i".to_string(), 3));
        assert!(r.chunk_bytes_per_sample().unwrap() > 0.0);
        let text = r.to_string();
        assert!(text.contains("Highest cardinality metric names:"));
        assert!(text.contains("3 a"));
        assert!(analyze(dir.path().join("missing"), 10).is_err());
    }
}
