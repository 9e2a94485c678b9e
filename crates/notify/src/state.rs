//! The state file: silences, acks, escalation progress, the notification
//! log, alerts, group timers and history, as an append-only log of
//! CRC-framed records.
//!
//! ## Layout of `notify.state`
//!
//! ```text
//! magic   8 bytes  "VGNTFY01"
//! record  repeated:
//!   len   u32 LE   length of payload (at most 16 MiB)
//!   crc   u32 LE   CRC-32 (IEEE, crc32fast) of payload
//!   payload        JSON of one `Record`
//! ```
//!
//! A record is an upsert or a deletion of one item; replaying them in
//! order gives the state. Opening reads records up to the first one whose
//! length or CRC is wrong or whose payload does not decode — a torn tail
//! from a crash — and drops the rest; it never fails for content. A file
//! without the magic is set aside as `notify.state.corrupt`. After
//! opening, and whenever the log has grown to twice the size of the last
//! snapshot (and past 1 MiB), the file is compacted: the current state is
//! written as a fresh file, synced, and renamed over the old one.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::escalation::{Ack, EscalationState};
use crate::history::HistoryEvent;
use crate::nflog::NflogEntry;
use crate::silence::Silence;

const MAGIC: &[u8; 8] = b"VGNTFY01";
const MAX_RECORD: usize = 16 << 20;
const FILE: &str = "notify.state";

/// An alert as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PersistedAlert {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
    pub updated_at: i64,
    pub timeout: bool,
}

/// One record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Record {
    Alert(PersistedAlert),
    AlertDel(u64),
    Group {
        key: String,
        next_flush: i64,
        has_flushed: bool,
    },
    GroupDel(String),
    Silence(Silence),
    SilenceDel(String),
    Nflog {
        key: String,
        entry: NflogEntry,
    },
    NflogDel(String),
    Ack(Ack),
    AckDel(String),
    Escalation {
        group_key: String,
        state: EscalationState,
    },
    EscalationDel(String),
    History(HistoryEvent),
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Records read.
    pub records: usize,
    /// Bytes dropped from a torn or corrupt tail.
    pub dropped_bytes: u64,
    /// Whether the file lacked the magic and was set aside.
    pub set_aside: bool,
}

/// The open state file.
#[derive(Debug)]
pub(crate) struct StateFile {
    dir: PathBuf,
    file: File,
    size: u64,
    snapshot_size: u64,
}

fn encode(rec: &Record, out: &mut Vec<u8>) {
    let payload = match serde_json::to_vec(rec) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "notify state: record not encodable; skipped");
            return;
        }
    };
    if payload.len() > MAX_RECORD {
        tracing::warn!(
            len = payload.len(),
            "notify state: record too large; skipped"
        );
        return;
    }
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Decodes records up to the first bad one; returns them and the offset
/// just past the last good one.
fn decode_all(buf: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut pos = MAGIC.len();
    while let Some(h) = buf.get(pos..pos + 8) {
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if len > MAX_RECORD {
            break;
        }
        let Some(p) = buf.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32fast::hash(p) != crc {
            break;
        }
        let Ok(rec) = serde_json::from_slice::<Record>(p) else {
            break;
        };
        out.push(rec);
        pos += 8 + len;
    }
    (out, pos.min(buf.len()))
}

impl StateFile {
    /// Opens (or creates) the state file in `dir`, returning its records.
    pub(crate) fn open(dir: &Path) -> io::Result<(StateFile, Vec<Record>, OpenReport)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let mut report = OpenReport::default();
        let mut buf = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut buf)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let records = if buf.is_empty() {
            Vec::new()
        } else if buf.len() < MAGIC.len() || &buf[..MAGIC.len()] != MAGIC {
            if buf.len() < MAGIC.len() && MAGIC.starts_with(&buf) {
                // A crash while creating the file.
                report.dropped_bytes = buf.len() as u64;
            } else {
                let aside = dir.join(format!("{FILE}.corrupt"));
                tracing::warn!(path = %path.display(), "notify state file has no valid header; set aside");
                std::fs::rename(&path, &aside)?;
                report.set_aside = true;
            }
            Vec::new()
        } else {
            let (recs, good) = decode_all(&buf);
            report.dropped_bytes = (buf.len() - good) as u64;
            if report.dropped_bytes > 0 {
                tracing::warn!(
                    path = %path.display(),
                    offset = good,
                    dropped = report.dropped_bytes,
                    "notify state file: torn or corrupt tail dropped"
                );
            }
            recs
        };
        report.records = records.len();
        let mut sf = StateFile {
            dir: dir.to_path_buf(),
            file: Self::create_fresh(dir, &[])?,
            size: MAGIC.len() as u64,
            snapshot_size: MAGIC.len() as u64,
        };
        // The caller compacts right away; until then keep the records as read.
        sf.rewrite(&records)?;
        Ok((sf, records, report))
    }

    fn create_fresh(dir: &Path, body: &[u8]) -> io::Result<File> {
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.tmp"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        OpenOptions::new().append(true).open(&path)
    }

    /// Appends records (buffered by the OS; synced on compaction).
    pub(crate) fn append(&mut self, recs: &[Record]) -> io::Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in recs {
            encode(r, &mut buf);
        }
        self.file.write_all(&buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    /// Replaces the file with these records.
    pub(crate) fn rewrite(&mut self, recs: &[Record]) -> io::Result<()> {
        let mut buf = Vec::new();
        for r in recs {
            encode(r, &mut buf);
        }
        self.file = Self::create_fresh(&self.dir, &buf)?;
        self.size = (MAGIC.len() + buf.len()) as u64;
        self.snapshot_size = self.size;
        Ok(())
    }

    /// Whether the log has grown enough to compact.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.size > (1 << 20) && self.size > 2 * self.snapshot_size
    }

    /// Syncs appended records to disk.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Current size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> Record {
        Record::AlertDel(i)
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, recs, _) = StateFile::open(dir.path()).unwrap();
        assert!(recs.is_empty());
        f.append(&[rec(1), rec(2), rec(3)]).unwrap();
        drop(f);
        let path = dir.path().join(FILE);
        let (_, recs, rep) = StateFile::open(dir.path()).unwrap();
        assert_eq!(recs, vec![rec(1), rec(2), rec(3)]);
        assert_eq!(rep.dropped_bytes, 0);
        // Cut the last record in half.
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let (_, recs, rep) = StateFile::open(dir.path()).unwrap();
        assert_eq!(recs, vec![rec(1), rec(2)]);
        assert!(rep.dropped_bytes > 0);
        // Flip a byte in the middle record's payload.
        let mut b = std::fs::read(&path).unwrap();
        let n = b.len();
        b[n - 2] ^= 0xff;
        std::fs::write(&path, &b).unwrap();
        let (_, recs, _) = StateFile::open(dir.path()).unwrap();
        assert_eq!(recs, vec![rec(1)]);
        // Garbage without the magic is set aside.
        std::fs::write(&path, b"garbage garbage").unwrap();
        let (_, recs, rep) = StateFile::open(dir.path()).unwrap();
        assert!(recs.is_empty() && rep.set_aside);
        assert!(dir.path().join("notify.state.corrupt").exists());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_open_without_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), keep_magic in proptest::prelude::any::<bool>()) {
            let dir = tempfile::tempdir().unwrap();
            let mut b = Vec::new();
            if keep_magic { b.extend_from_slice(MAGIC); }
            b.extend_from_slice(&bytes);
            std::fs::write(dir.path().join(FILE), &b).unwrap();
            proptest::prop_assert!(StateFile::open(dir.path()).is_ok());
        }
    }
}
