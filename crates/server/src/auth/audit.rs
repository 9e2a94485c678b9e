//! The audit log: one JSON line per admin action (config reloads, deletes,
//! snapshots, silences, acks) with who, what and when, appended to a file
//! (`--web.audit-log-file`, default `<storage.tsdb.path>/audit.log`) and
//! logged under the `audit` target.
//!
//! ```json
//! {"ts":"2026-11-27T16:02:11.123Z","who":"alice","via":"basic","remote":"10.0.0.5:51234","action":"silence_create","method":"POST","path":"/api/v2/silences","query":"","status":200}
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// One admin action.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// A user or token name; `anonymous` without authentication;
    /// `signal` for SIGHUP.
    pub who: &'a str,
    /// `basic`, `bearer`, `none`, `signal`, or `link` for an ack link
    /// used without credentials (its signed token is the credential).
    pub via: &'a str,
    /// The client's address, if known.
    pub remote: &'a str,
    /// What was done: `config_reload`, `delete_series`, `silence_create`...
    pub action: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The path, without the route prefix.
    pub path: &'a str,
    /// The query string (the matchers of a delete, for example).
    pub query: &'a str,
    /// The HTTP status the action ended with.
    pub status: u16,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    #[serde(flatten)]
    entry: &'a Entry<'a>,
}

/// Where audit lines go.
#[derive(Debug)]
pub struct AuditLog {
    file: Option<(PathBuf, Mutex<Option<std::fs::File>>)>,
    written: AtomicU64,
    failed: AtomicU64,
}

impl AuditLog {
    /// Lines go to the tracing log only.
    pub fn disabled() -> AuditLog {
        AuditLog {
            file: None,
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Lines are appended to `path` too (created with mode 0600 if new).
    pub fn to_file(path: &Path) -> Result<AuditLog, String> {
        let f = open(path).map_err(|e| format!("opening the audit log {}: {e}", path.display()))?;
        Ok(AuditLog {
            file: Some((path.to_path_buf(), Mutex::new(Some(f)))),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    /// Writes one line.
    pub fn record(&self, e: &Entry<'_>) {
        let line = Line {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            entry: e,
        };
        let Ok(mut json) = serde_json::to_string(&line) else {
            return;
        };
        tracing::info!(target: "audit", who = e.who, via = e.via, remote = e.remote, action = e.action, path = e.path, query = e.query, status = e.status, "admin action");
        let Some((path, f)) = &self.file else {
            self.written.fetch_add(1, Ordering::Relaxed);
            return;
        };
        json.push('\n');
        let mut f = f.lock();
        // Reopened after a failure (a rotated or deleted file).
        if f.is_none() {
            *f = open(path).ok();
        }
        let ok = match f.as_mut() {
            Some(file) => file.write_all(json.as_bytes()).is_ok(),
            None => false,
        };
        if ok {
            self.written.fetch_add(1, Ordering::Relaxed);
        } else {
            *f = None;
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(file = %path.display(), "writing the audit log failed");
        }
    }

    /// `vigil_audit_log_entries_total` and `..._failures_total`.
    pub fn write_metrics(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP vigil_audit_log_entries_total Admin actions written to the audit log.\n\
             # TYPE vigil_audit_log_entries_total counter\n\
             vigil_audit_log_entries_total {}\n\
             # HELP vigil_audit_log_write_failures_total Audit lines that could not be written to the file.\n\
             # TYPE vigil_audit_log_write_failures_total counter\n\
             vigil_audit_log_write_failures_total {}",
            self.written.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        );
    }
}

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_who_what_and_when() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/audit.log");
        let log = AuditLog::to_file(&p).unwrap();
        log.record(&Entry {
            who: "alice",
            via: "basic",
            remote: "127.0.0.1:1",
            action: "delete_series",
            method: "POST",
            path: "/api/v1/admin/tsdb/delete_series",
            query: "match[]=up",
            status: 204,
        });
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["who"], "alice");
        assert_eq!(v["action"], "delete_series");
        assert_eq!(v["query"], "match[]=up");
        assert_eq!(v["status"], 204);
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
        let mut m = String::new();
        log.write_metrics(&mut m);
        assert!(m.contains("vigil_audit_log_entries_total 1\n"), "{m}");
    }
}
