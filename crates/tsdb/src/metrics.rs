//! The storage engine's self-metrics, in the Prometheus text format, named
//! after Prometheus's `prometheus_tsdb_*` metrics with a `vigil_tsdb_`
//! prefix. The server exposes them on `/metrics`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::db::Db;

fn family(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

impl Db {
    /// Appends the database's metrics to `out` in the text exposition
    /// format.
    pub fn write_metrics(&self, out: &mut String) {
        let h = self.head().stats();
        let d = self.stats();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        let head = self.head();
        let _ = writeln!(
            out,
            "# HELP vigil_tsdb_limit_hits_total New series refused by a storage limit.\n\
             # TYPE vigil_tsdb_limit_hits_total counter"
        );
        for (name, n) in crate::head::LIMIT_NAMES.iter().zip(&h.limit_hits) {
            let _ = writeln!(
                out,
                "vigil_tsdb_limit_hits_total{{limit=\"{name}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        family(
            out,
            "vigil_tsdb_head_series",
            "gauge",
            "Series in the head.",
            head.num_series() as f64,
        );
        family(
            out,
            "vigil_tsdb_head_series_created_total",
            "counter",
            "Series created in the head.",
            get(&h.series_created),
        );
        family(
            out,
            "vigil_tsdb_head_series_removed_total",
            "counter",
            "Series removed from the head.",
            get(&h.series_removed),
        );
        family(
            out,
            "vigil_tsdb_head_samples_appended_total",
            "counter",
            "Samples appended to the head.",
            get(&h.samples_appended),
        );
        family(
            out,
            "vigil_tsdb_head_out_of_order_samples_appended_total",
            "counter",
            "Out-of-order samples accepted into the window.",
            get(&h.ooo_samples_appended),
        );
        family(
            out,
            "vigil_tsdb_out_of_order_samples_total",
            "counter",
            "Samples rejected as out of order.",
            get(&h.out_of_order_rejected),
        );
        family(
            out,
            "vigil_tsdb_out_of_bounds_samples_total",
            "counter",
            "Samples rejected as out of bounds or too old.",
            get(&h.out_of_bounds_rejected),
        );
        family(
            out,
            "vigil_tsdb_duplicate_samples_total",
            "counter",
            "Samples rejected as duplicates with another value.",
            get(&h.duplicate_rejected),
        );
        family(
            out,
            "vigil_tsdb_head_chunks_created_total",
            "counter",
            "Head chunks completed and written to the head chunk files.",
            get(&h.chunks_created),
        );
        family(
            out,
            "vigil_tsdb_head_chunks_corruptions_total",
            "counter",
            "Damaged head chunk files repaired at start-up.",
            get(&h.chunk_corruptions),
        );
        family(
            out,
            "vigil_tsdb_wal_corruptions_total",
            "counter",
            "Damaged WAL tails repaired at start-up.",
            get(&h.wal_corruptions),
        );
        family(
            out,
            "vigil_tsdb_wal_bad_records_total",
            "counter",
            "WAL records that did not decode during replay.",
            get(&h.wal_bad_records),
        );
        family(
            out,
            "vigil_tsdb_data_replay_duration_seconds",
            "gauge",
            "Time the last start-up replay took.",
            get(&h.replay_ms) / 1000.0,
        );
        if let Some((a, b)) = head.time_range() {
            family(
                out,
                "vigil_tsdb_head_min_time",
                "gauge",
                "Oldest sample in the head (ms).",
                a as f64,
            );
            family(
                out,
                "vigil_tsdb_head_max_time",
                "gauge",
                "Newest sample in the head (ms).",
                b as f64,
            );
        }
        let wal = head.wal();
        family(
            out,
            "vigil_tsdb_wal_storage_size_bytes",
            "gauge",
            "Bytes of WAL segments and checkpoints.",
            wal.size_bytes().unwrap_or(0) as f64,
        );
        let ws = wal.stats();
        family(
            out,
            "vigil_tsdb_wal_fsyncs_total",
            "counter",
            "fsyncs of WAL segments.",
            ws.fsyncs as f64,
        );
        family(
            out,
            "vigil_tsdb_wal_records_total",
            "counter",
            "Records written to the WAL.",
            ws.records as f64,
        );
        let blocks = self.open_blocks();
        family(
            out,
            "vigil_tsdb_blocks_loaded",
            "gauge",
            "Blocks open.",
            blocks.len() as f64,
        );
        family(
            out,
            "vigil_tsdb_storage_blocks_bytes",
            "gauge",
            "Bytes of all blocks.",
            blocks.iter().map(|b| b.size().total()).sum::<u64>() as f64,
        );
        family(
            out,
            "vigil_tsdb_blocks_damaged",
            "gauge",
            "Block directories left out because they are damaged.",
            get(&d.blocks_damaged),
        );
        family(
            out,
            "vigil_tsdb_head_truncations_total",
            "counter",
            "Head truncations after persisting blocks.",
            get(&d.head_truncations),
        );
        family(
            out,
            "vigil_tsdb_head_persisted_blocks_total",
            "counter",
            "Blocks written from the head.",
            get(&d.head_persisted_blocks),
        );
        family(
            out,
            "vigil_tsdb_compactions_total",
            "counter",
            "Block compactions run.",
            get(&d.compactions),
        );
        family(
            out,
            "vigil_tsdb_compactions_failed_total",
            "counter",
            "Block compactions that failed.",
            get(&d.compactions_failed),
        );
        family(
            out,
            "vigil_tsdb_compaction_duration_seconds",
            "gauge",
            "Duration of the last compaction.",
            get(&d.last_compaction_duration_ms) / 1000.0,
        );
        family(
            out,
            "vigil_tsdb_time_retentions_total",
            "counter",
            "Blocks deleted by time retention.",
            get(&d.retention_time_deletions),
        );
        family(
            out,
            "vigil_tsdb_size_retentions_total",
            "counter",
            "Blocks deleted by size retention.",
            get(&d.retention_size_deletions),
        );
        family(
            out,
            "vigil_tsdb_retention_rule_rewrites_total",
            "counter",
            "Blocks rewritten without series past their retention rule.",
            get(&d.retention_rule_rewrites),
        );
        family(
            out,
            "vigil_tsdb_blocks_picked_up_total",
            "counter",
            "Blocks that appeared in the data directory while open (imports) and were opened.",
            get(&d.blocks_picked_up),
        );
        family(
            out,
            "vigil_tsdb_last_maintenance_timestamp_seconds",
            "gauge",
            "When maintenance last completed.",
            d.last_maintenance_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{Db, Options};
    use vigil_model::{labels, Appender, Value};

    #[test]
    fn metrics_are_well_formed_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut app = db.appender();
        app.append(None, &labels!("__name__" => "x"), 1, Value::Float(1.0))
            .unwrap();
        app.commit().unwrap();
        let mut out = String::new();
        db.write_metrics(&mut out);
        assert!(out.contains("vigil_tsdb_head_series 1\n"));
        assert!(out.contains("vigil_tsdb_head_samples_appended_total 1\n"));
        for line in out.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP vigil_tsdb_")
                        || line.starts_with("# TYPE vigil_tsdb_")
                );
            } else {
                let (name, value) = line.split_once(' ').unwrap();
                assert!(name.starts_with("vigil_tsdb_"));
                value.parse::<f64>().unwrap();
            }
        }
    }
}
