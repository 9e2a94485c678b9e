//! `meta.json`: what a block holds, in a form people and tools can read.
//!
//! The field names are Prometheus's (`ulid`, `minTime`, `maxTime`,
//! `stats`, `compaction`, `version`) so that operators' habits and scripts
//! carry over. `maxTime` is exclusive, as in Prometheus.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::BlockError;
use super::ulid::Ulid;
use super::{sync_dir, META_FILE};

/// The `version` this build writes and reads.
pub const META_VERSION: u32 = 1;

/// The contents of a block's `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// The block's id; also the name of its directory.
    pub ulid: Ulid,
    /// Earliest timestamp the block may hold, inclusive (ms).
    pub min_time: i64,
    /// End of the block's range, exclusive (ms).
    pub max_time: i64,
    /// Counts of what the block holds.
    pub stats: BlockStats,
    /// Where the block came from.
    pub compaction: CompactionMeta,
    /// Format version of the block ([`META_VERSION`]).
    pub version: u32,
}

/// Counts of what a block holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    /// Samples in all chunks (tombstones not subtracted).
    pub num_samples: u64,
    /// Series in the index.
    pub num_series: u64,
    /// Chunks in the segment files.
    pub num_chunks: u64,
    /// Deleted intervals recorded in `tombstones` (the compaction planner
    /// rewrites blocks with many). Absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Compaction lineage of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactionMeta {
    /// 1 for a block written from the head; one more than the highest
    /// parent's level for a compacted block.
    pub level: u32,
    /// The ids of the level-1 blocks whose data this block holds, sorted.
    pub sources: Vec<Ulid>,
}

impl BlockMeta {
    /// Does the block's range `[min_time, max_time)` overlap the closed
    /// interval `[mint, maxt]`?
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint < self.max_time
    }

    /// Reads and checks `dir/meta.json`.
    pub fn read(dir: &Path) -> Result<BlockMeta, BlockError> {
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).map_err(BlockError::io("read", &path))?;
        // Check the version before the shape, so a newer format is reported
        // as such rather than as a parse error.
        #[derive(Deserialize)]
        struct Version {
            version: Option<u32>,
        }
        if let Ok(Version { version: Some(v) }) = serde_json::from_slice::<Version>(&bytes) {
            if v != META_VERSION {
                return Err(BlockError::UnsupportedVersion {
                    file: path,
                    version: v,
                    supported: META_VERSION,
                });
            }
        }
        let meta: BlockMeta =
            serde_json::from_slice(&bytes).map_err(|source| BlockError::MetaJson {
                path: path.clone(),
                source,
            })?;
        let invalid = |what| {
            Err(BlockError::InvalidMeta {
                path: path.clone(),
                what,
            })
        };
        if meta.min_time >= meta.max_time {
            return invalid("minTime is not before maxTime");
        }
        if meta.compaction.level == 0 {
            return invalid("compaction level is 0");
        }
        let name_id = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<Ulid>().ok());
        if name_id.is_some_and(|id| id != meta.ulid) {
            return invalid("ulid does not match the directory name");
        }
        Ok(meta)
    }

    /// Writes `dir/meta.json` atomically: to a temporary file that is
    /// fsynced and renamed over the old one, then the directory is fsynced.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), BlockError> {
        let path = dir.join(META_FILE);
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(|source| BlockError::MetaJson {
            path: path.clone(),
            source,
        })?;
        write_file_synced(&tmp, &json)?;
        fs::rename(&tmp, &path).map_err(BlockError::io("rename meta.json into", &path))?;
        sync_dir(dir)
    }
}

/// Creates (or truncates) `path`, writes `data` and fsyncs it.
pub(crate) fn write_file_synced(path: &Path, data: &[u8]) -> Result<(), BlockError> {
    let mut f = fs::File::create(path).map_err(BlockError::io("create", path))?;
    f.write_all(data).map_err(BlockError::io("write", path))?;
    f.sync_all().map_err(BlockError::io("fsync", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BlockMeta {
        let id = Ulid::new();
        BlockMeta {
            ulid: id,
            min_time: 0,
            max_time: 7_200_000,
            stats: BlockStats {
                num_samples: 10,
                num_series: 2,
                num_chunks: 3,
                num_tombstones: 0,
            },
            compaction: CompactionMeta {
                level: 1,
                sources: vec![id],
            },
            version: META_VERSION,
        }
    }

    #[test]
    fn json_shape_is_prometheus_like() {
        let m = meta();
        let v: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(v["ulid"], m.ulid.to_string());
        assert_eq!(v["minTime"], 0);
        assert_eq!(v["maxTime"], 7_200_000);
        assert_eq!(v["stats"]["numSamples"], 10);
        assert!(v["stats"].get("numTombstones").is_none());
        assert_eq!(v["compaction"]["level"], 1);
        assert_eq!(v["compaction"]["sources"][0], m.ulid.to_string());
        assert_eq!(v["version"], 1);
    }

    #[test]
    fn read_checks_what_it_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let m = meta();
        let dir = tmp.path().join(m.ulid.to_string());
        fs::create_dir(&dir).unwrap();
        m.write(&dir).unwrap();
        assert_eq!(BlockMeta::read(&dir).unwrap(), m);

        let mut other = m.clone();
        other.ulid = Ulid::new();
        other.write(&dir).unwrap();
        assert!(matches!(
            BlockMeta::read(&dir),
            Err(BlockError::InvalidMeta { .. })
        ));

        let mut reversed = m.clone();
        reversed.max_time = reversed.min_time;
        reversed.write(&dir).unwrap();
        assert!(matches!(
            BlockMeta::read(&dir),
            Err(BlockError::InvalidMeta { .. })
        ));

        let mut newer = m.clone();
        newer.version = 7;
        newer.write(&dir).unwrap();
        assert!(matches!(
            BlockMeta::read(&dir),
            Err(BlockError::UnsupportedVersion { version: 7, .. })
        ));

        fs::write(dir.join(META_FILE), b"{\"ulid\": 3").unwrap();
        assert!(matches!(
            BlockMeta::read(&dir),
            Err(BlockError::MetaJson { .. })
        ));
    }
}
