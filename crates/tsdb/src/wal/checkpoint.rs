//! Checkpoints: a compacted copy of the records of segments `..=index`
//! that are still needed, stored as a directory `checkpoint.{index:08}`
//! inside the WAL directory with the same segment layout as the WAL itself.
//!
//! The head decides which records to keep; this module only writes them
//! crash-safely: into `checkpoint.{index:08}.tmp`, fsynced, renamed into
//! place, parent directory fsynced, then older checkpoints deleted. Replay
//! reads the last checkpoint with [`WalReader::open`](super::WalReader::open)
//! and continues with the WAL segments after `index`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::segment::{parse_segment_name, segment_name, sync_dir, SegmentWriter};
use super::writer::DEFAULT_SEGMENT_SIZE;
use super::WalError;

const PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

/// The directory name of checkpoint `index`: `checkpoint.00000042`.
pub fn checkpoint_name(index: u64) -> String {
    format!("{PREFIX}{}", segment_name(index))
}

/// Parses `checkpoint.NNNNNNNN`, returning the index and whether the name
/// carries the temporary suffix.
fn parse_checkpoint_name(name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix(PREFIX)?;
    match rest.strip_suffix(TMP_SUFFIX) {
        Some(digits) => parse_segment_name(digits).map(|i| (i, true)),
        None => parse_segment_name(rest).map(|i| (i, false)),
    }
}

/// Lists checkpoint directories in `dir` as `(index, is_tmp, path)`.
fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, bool, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let entry = entry.map_err(io_err("read directory", dir))?;
        let Some((index, tmp)) = entry.file_name().to_str().and_then(parse_checkpoint_name) else {
            continue;
        };
        if entry
            .file_type()
            .map_err(io_err("stat", entry.path()))?
            .is_dir()
        {
            out.push((index, tmp, entry.path()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The newest complete checkpoint in `dir`, if any, as its index and path.
/// Unfinished (`.tmp`) checkpoints are ignored.
pub fn last_checkpoint(dir: &Path) -> Result<Option<(u64, PathBuf)>, WalError> {
    Ok(list_checkpoints(dir)?
        .into_iter()
        .filter(|(_, tmp, _)| !tmp)
        .map(|(index, _, path)| (index, path))
        .next_back())
}

/// Deletes the checkpoints (complete or unfinished) with an index below
/// `index`. Returns how many directories were removed.
pub fn delete_checkpoints_before(dir: &Path, index: u64) -> Result<usize, WalError> {
    let mut removed = 0;
    for (_, _, path) in list_checkpoints(dir)?
        .into_iter()
        .filter(|(i, _, _)| *i < index)
    {
        remove_dir_all_if_exists(&path)?;
        removed += 1;
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn remove_dir_all_if_exists(path: &Path) -> Result<(), WalError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("delete directory", path)(e)),
    }
}

/// Writes checkpoint `index` of the WAL in `dir` from `records` and returns
/// its path. See [`CheckpointWriter`] for the steps and guarantees.
pub fn write_checkpoint<I>(dir: &Path, index: u64, records: I) -> Result<PathBuf, WalError>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut writer = CheckpointWriter::create(dir, index)?;
    for record in records {
        writer.append(record.as_ref())?;
    }
    writer.finish()
}

/// Streams records into a new checkpoint, for callers that produce them
/// while reading the WAL (a lending [`WalReader`](super::WalReader) cannot
/// feed an iterator).
///
/// Nothing is visible under the final name until [`finish`](Self::finish)
/// returns. Dropping an unfinished writer removes its temporary directory.
pub struct CheckpointWriter {
    dir: PathBuf,
    index: u64,
    tmp: PathBuf,
    writer: SegmentWriter,
    records: u64,
    finished: bool,
}

impl fmt::Debug for CheckpointWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointWriter")
            .field("tmp", &self.tmp)
            .field("index", &self.index)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl CheckpointWriter {
    /// Starts checkpoint `index` in the WAL directory `dir`, replacing any
    /// unfinished attempt at the same index.
    pub fn create(dir: &Path, index: u64) -> Result<Self, WalError> {
        let tmp = dir.join(format!("{}{TMP_SUFFIX}", checkpoint_name(index)));
        remove_dir_all_if_exists(&tmp)?;
        fs::create_dir(&tmp).map_err(io_err("create directory", &tmp))?;
        let writer = SegmentWriter::create(&tmp, 0, DEFAULT_SEGMENT_SIZE);
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            index,
            tmp,
            writer,
            records: 0,
            finished: false,
        })
    }

    /// Appends one record.
    pub fn append(&mut self, record: &[u8]) -> Result<(), WalError> {
        self.writer.append(record)?;
        self.records += 1;
        Ok(())
    }

    /// Number of records appended so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Makes the checkpoint durable and visible, then deletes older
    /// checkpoints: flush and fsync the last segment (earlier ones were
    /// fsynced when cut), fsync the temporary directory, replace any
    /// existing checkpoint of the same index, rename, fsync the WAL
    /// directory. Returns the checkpoint's path.
    pub fn finish(mut self) -> Result<PathBuf, WalError> {
        self.writer.flush()?;
        self.writer.sync()?;
        sync_dir(&self.tmp)?;
        let target = self.dir.join(checkpoint_name(self.index));
        // A rename cannot replace a non-empty directory. Same-index
        // checkpoints hold the same records, as in Prometheus's
        // `fileutil.Replace`.
        remove_dir_all_if_exists(&target)?;
        fs::rename(&self.tmp, &target).map_err(io_err("rename checkpoint", &self.tmp))?;
        self.finished = true;
        sync_dir(&self.dir)?;
        delete_checkpoints_before(&self.dir, self.index)?;
        Ok(target)
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}
