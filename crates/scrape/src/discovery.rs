//! Service discovery: the target groups a job scrapes, from
//! `static_configs` and `file_sd_configs`.
//!
//! File discovery follows Prometheus's `discovery/file`: every pattern is a
//! path whose last element may hold a glob, naming `.json`, `.yml` or
//! `.yaml` files, each a list of `{targets, labels}` groups. Every group
//! gets the `__meta_filepath` label. Files are read again every
//! `refresh_interval` (5m by default) and whenever one changes: vigil checks
//! the matched files' size, modification time and inode every
//! [`ScrapeOptions::file_sd_poll_interval`](crate::ScrapeOptions) (1s) rather
//! than with inotify, which needs no platform code and sees files on
//! network filesystems too. A file that cannot be read or parsed keeps the
//! groups it gave last (and logs why), as Prometheus does; a file that no
//! longer exists, or no longer matches, takes its groups with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::PromDuration;

/// The label every group read from a file gets: the file's path.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// Prometheus's default `refresh_interval` for file discovery.
const DEFAULT_REFRESH_MS: i64 = 5 * 60 * 1000;

/// One `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSdConfig {
    /// Path patterns; the last element may hold a glob (`targets/*.json`).
    /// Relative paths are relative to the configuration file's directory
    /// once the loader calls [`crate::ScrapeConfig::resolve_paths`].
    pub files: Vec<String>,
    /// How often every file is read again, changed or not (5m).
    pub refresh_interval: PromDuration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSdConfig {
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    refresh_interval: Option<PromDuration>,
}

/// Why a `file_sd_configs` entry is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileSdConfigError {
    /// `files` is empty.
    #[error("file service discovery config must contain at least one path name")]
    NoFiles,
    /// A pattern is not `<dir>/<name-with-optional-*>.{json,yml,yaml}`.
    #[error("path name {0:?} is not valid for file discovery")]
    InvalidPath(String),
    /// `refresh_interval` is zero or negative.
    #[error("file service discovery refresh_interval must be greater than 0")]
    ZeroRefresh,
}

/// Prometheus's `patFileSDName`:
/// `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
pub(crate) fn valid_pattern(name: &str) -> bool {
    let stem = ["json", "yml", "yaml", "JSON", "YML", "YAML"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext)?.strip_suffix('.'));
    let Some(stem) = stem else {
        return false;
    };
    match stem.find('*') {
        None => true,
        Some(i) => !stem[i + 1..].contains(['*', '/']),
    }
}

impl TryFrom<RawFileSdConfig> for FileSdConfig {
    type Error = FileSdConfigError;

    fn try_from(r: RawFileSdConfig) -> Result<Self, Self::Error> {
        if r.files.is_empty() {
            return Err(FileSdConfigError::NoFiles);
        }
        if let Some(bad) = r.files.iter().find(|f| !valid_pattern(f)) {
            return Err(FileSdConfigError::InvalidPath(bad.clone()));
        }
        let refresh_interval = r
            .refresh_interval
            .unwrap_or(PromDuration(DEFAULT_REFRESH_MS));
        if refresh_interval.0 <= 0 {
            return Err(FileSdConfigError::ZeroRefresh);
        }
        Ok(FileSdConfig {
            files: r.files,
            refresh_interval,
        })
    }
}

impl<'de> Deserialize<'de> for FileSdConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawFileSdConfig::deserialize(d)?;
        FileSdConfig::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl FileSdConfig {
    /// A config for `files` with the default refresh interval.
    pub fn new(files: Vec<String>) -> FileSdConfig {
        FileSdConfig {
            files,
            refresh_interval: PromDuration(DEFAULT_REFRESH_MS),
        }
    }

    /// Makes relative patterns relative to `dir`.
    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        for f in &mut self.files {
            if Path::new(f.as_str()).is_relative() {
                *f = dir.join(&*f).to_string_lossy().into_owned();
            }
        }
    }
}

/// A group of targets sharing labels, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels of every target of the group.
    pub labels: BTreeMap<String, String>,
    /// `<file>:<index>` for file groups, the index for static ones.
    pub source: String,
}

/// A group as a file writes it. JSON ignores unknown keys and YAML refuses
/// them, as Go's `encoding/json` and `yaml.UnmarshalStrict` do.
#[derive(Deserialize)]
struct JsonGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// A group's targets and labels as read.
type RawGroup = (Vec<String>, Option<BTreeMap<String, String>>);

/// Why a discovery file was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// Reads the groups of one file (by its extension, JSON or YAML).
pub(crate) fn read_file(path: &Path) -> Result<Vec<TargetGroup>, FileError> {
    let content = std::fs::read(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_err = |reason: String| FileError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let raw: Vec<RawGroup> = match ext.as_str() {
        "json" => serde_json::from_slice::<Vec<Option<JsonGroup>>>(&content)
            .map_err(|e| parse_err(e.to_string()))?
            .into_iter()
            .map(|g| g.map(|g| (g.targets, g.labels)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| parse_err("nil target group item found".into()))?,
        "yml" | "yaml" => {
            if content.iter().all(u8::is_ascii_whitespace) {
                Vec::new()
            } else {
                serde_yaml_ng::from_slice::<Vec<Option<YamlGroup>>>(&content)
                    .map_err(|e| parse_err(e.to_string()))?
                    .into_iter()
                    .map(|g| g.map(|g| (g.targets, g.labels)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| parse_err("nil target group item found".into()))?
            }
        }
        _ => return Err(parse_err(format!("unhandled file extension {ext:?}"))),
    };
    let name = path.to_string_lossy();
    let mut out = Vec::with_capacity(raw.len());
    for (i, (targets, labels)) in raw.into_iter().enumerate() {
        let mut labels = labels.unwrap_or_default();
        if let Some(bad) = labels.keys().find(|k| k.is_empty()) {
            return Err(parse_err(format!("invalid label name {bad:?}")));
        }
        if let Some(bad) = targets.iter().find(|t| t.is_empty()) {
            return Err(parse_err(format!("invalid target {bad:?}")));
        }
        labels.insert(FILEPATH_LABEL.to_string(), name.clone().into_owned());
        out.push(TargetGroup {
            targets,
            labels,
            source: format!("{name}:{i}"),
        });
    }
    Ok(out)
}

/// What identifies a file's content for change detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        ino,
    })
}

/// The state of one `file_sd_configs` entry: the last good groups of every
/// file it matches. Blocking (it reads files): run it off the async
/// workers.
#[derive(Debug)]
pub(crate) struct FileDiscovery {
    patterns: Vec<String>,
    refresh: Duration,
    /// Last good groups by file.
    groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
    /// Stamps of the matched files at the last refresh (`None`: unreadable).
    stamps: BTreeMap<PathBuf, Option<Stamp>>,
}

impl FileDiscovery {
    pub(crate) fn new(cfg: &FileSdConfig) -> FileDiscovery {
        FileDiscovery {
            patterns: cfg.files.clone(),
            refresh: cfg.refresh_interval.to_std(),
            groups: BTreeMap::new(),
            stamps: BTreeMap::new(),
        }
    }

    /// The full-refresh interval.
    pub(crate) fn refresh_interval(&self) -> Duration {
        self.refresh
    }

    /// The files the patterns match now, sorted.
    fn list_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in &self.patterns {
            match glob::glob(p) {
                Ok(paths) => out.extend(paths.filter_map(Result::ok)),
                Err(e) => tracing::error!(glob = %p, error = %e, "error expanding glob"),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether the set of matched files or any of their stamps changed
    /// since the last refresh.
    pub(crate) fn changed(&self) -> bool {
        let files = self.list_files();
        files.len() != self.stamps.len()
            || files
                .iter()
                .any(|f| self.stamps.get(f).is_none_or(|s| *s != stamp(f)))
    }

    /// Reads every matched file again. A file that fails keeps its last
    /// good groups; files no longer matched lose theirs. Returns whether the
    /// groups changed.
    pub(crate) fn refresh(&mut self) -> bool {
        let files = self.list_files();
        let mut groups = BTreeMap::new();
        let mut stamps = BTreeMap::new();
        for f in files {
            // Stamp before reading, so a write during the read is seen as
            // a change at the next poll.
            stamps.insert(f.clone(), stamp(&f));
            match read_file(&f) {
                Ok(g) => {
                    groups.insert(f, g);
                }
                Err(e) => {
                    tracing::error!(error = %e, "file_sd: error reading file; keeping its last good targets");
                    if let Some(old) = self.groups.get(&f) {
                        groups.insert(f, old.clone());
                    }
                }
            }
        }
        self.stamps = stamps;
        let changed = groups != self.groups;
        self.groups = groups;
        changed
    }

    /// The current groups, by file.
    pub(crate) fn groups(&self) -> impl Iterator<Item = &TargetGroup> {
        self.groups.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_as_prometheus() {
        for ok in [
            "a.json",
            "dir/*.yml",
            "/etc/vigil/targets/*_nodes.yaml",
            "x.JSON",
            "d[0-9]/f?.json",
        ] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in ["a.txt", "*/x.json", "a*b*.json", "json", "dir/*"] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: FileSdConfig = serde_yaml_ng::from_str("files: [a.json]").unwrap();
        assert_eq!(c.refresh_interval, PromDuration(300_000));
        assert_eq!(c, FileSdConfig::new(vec!["a.json".into()]));
        for bad in [
            "files: []",
            "{}",
            "files: [a.txt]",
            "files: [a.json]\nrefresh_interval: 0s",
            "files: [a.json]\nextra: 1",
        ] {
            assert!(
                serde_yaml_ng::from_str::<FileSdConfig>(bad).is_err(),
                "{bad}"
            );
        }
        let mut c = FileSdConfig::new(vec!["t/*.json".into(), "/abs/x.yml".into()]);
        c.resolve_paths(Path::new("/etc/vigil"));
        assert_eq!(c.files, vec!["/etc/vigil/t/*.json", "/abs/x.yml"]);
    }

    #[test]
    fn reads_json_and_yaml_groups_with_the_filepath_label() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("a.json");
        std::fs::write(
            &j,
            r#"[{"targets": ["h1:1", "h2:1"], "labels": {"env": "prod"}, "ignored": 1}, {"targets": ["h3:1"]}]"#,
        )
        .unwrap();
        let g = read_file(&j).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].targets, vec!["h1:1", "h2:1"]);
        assert_eq!(g[0].labels["env"], "prod");
        assert_eq!(g[0].labels[FILEPATH_LABEL], j.to_string_lossy());
        assert_eq!(g[1].source, format!("{}:1", j.to_string_lossy()));
        let y = dir.path().join("b.yml");
        std::fs::write(&y, "- targets: ['h4:1']\n  labels: {a: b}\n").unwrap();
        assert_eq!(read_file(&y).unwrap()[0].targets, vec!["h4:1"]);
        // YAML is strict about keys; a null group is refused; so is bad JSON.
        std::fs::write(&y, "- targets: ['h4:1']\n  labelz: {}\n").unwrap();
        assert!(read_file(&y).is_err());
        std::fs::write(&j, "[null]").unwrap();
        assert!(read_file(&j).is_err());
        std::fs::write(&j, "[{\"targets\": [\"x\"]").unwrap();
        assert!(read_file(&j).is_err());
        // An empty YAML file is no groups.
        std::fs::write(&y, "\n").unwrap();
        assert!(read_file(&y).unwrap().is_empty());
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pat = dir.path().join("*.json").to_string_lossy().into_owned();
        let mut d = FileDiscovery::new(&FileSdConfig::new(vec![pat]));
        assert!(!d.refresh());
        assert!(d.groups().next().is_none());
        let a = dir.path().join("a.json");
        std::fs::write(&a, r#"[{"targets": ["h1:1"]}]"#).unwrap();
        assert!(d.changed());
        assert!(d.refresh());
        assert!(!d.changed());
        assert_eq!(d.groups().count(), 1);
        std::fs::write(&a, "not json at all").unwrap();
        assert!(d.changed());
        assert!(!d.refresh());
        assert_eq!(d.groups().next().unwrap().targets, vec!["h1:1"]);
        // A second file joins; removing the first takes its groups away.
        std::fs::write(dir.path().join("b.json"), r#"[{"targets": ["h2:1"]}]"#).unwrap();
        assert!(d.refresh());
        assert_eq!(d.groups().count(), 2);
        std::fs::remove_file(&a).unwrap();
        assert!(d.changed());
        assert!(d.refresh());
        let t: Vec<_> = d.groups().flat_map(|g| g.targets.clone()).collect();
        assert_eq!(t, vec!["h2:1"]);
    }
}
