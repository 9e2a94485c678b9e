//! The RAM-backed directory behind [`Db::open_in_memory`](crate::Db::open_in_memory).
//!
//! The database keeps its usual files (WAL, head chunk files, blocks) but
//! in a fresh directory on a RAM filesystem (tmpfs), and deletes it when the
//! database is dropped. Nothing reaches a disk: the pages live in RAM (or
//! swap, as any anonymous memory may) and are counted against the tmpfs
//! size limit. The engine runs exactly the code that serves on-disk
//! databases, with the same guarantees, instead of a second storage path.
//!
//! The directory is `vigil-mem-<pid>-<n>` under `/dev/shm`. Opening
//! refuses (rather than fall back to a disk) when `/dev/shm` is not a
//! tmpfs or ramfs mount, as on systems other than Linux. A process that
//! dies without dropping its database leaves its directory behind; the
//! next in-memory open in any process removes such directories: those
//! whose lock file exists and is no longer held (a live database holds it).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::TsdbError;
use crate::mmap::DirLock;

/// Where RAM-backed databases live.
const RAM_ROOT: &str = "/dev/shm";
/// The name prefix of their directories.
const PREFIX: &str = "vigil-mem-";

/// A directory on a RAM filesystem, removed when dropped.
#[derive(Debug)]
pub(crate) struct RamDir {
    path: PathBuf,
}

impl RamDir {
    /// Creates a new, private (mode 0700) directory under `/dev/shm`.
    pub(crate) fn create() -> Result<RamDir, TsdbError> {
        Self::create_in(Path::new(RAM_ROOT), &mount_fs_type)
    }

    fn create_in(
        root: &Path,
        fs_type: &dyn Fn(&Path) -> Option<String>,
    ) -> Result<RamDir, TsdbError> {
        match fs_type(root).as_deref() {
            Some("tmpfs" | "ramfs") => {}
            other => {
                return Err(TsdbError::NoRamFilesystem {
                    path: root.to_path_buf(),
                    found: other.unwrap_or("no such mount").to_string(),
                })
            }
        }
        remove_abandoned(root);
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = root.join(format!("{PREFIX}{pid}-{n}"));
            let mut builder = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&path) {
                Ok(()) => return Ok(RamDir { path }),
                // Left by an earlier process with our pid that is still
                // locked or could not be removed: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(TsdbError::io("create in-memory data directory", &path, e)),
            }
        }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RamDir {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            // Swept by another process after the database's lock went.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %self.path.display(), error = %e, "removing the in-memory database's directory failed")
            }
        }
    }
}

/// Removes the directories of in-memory databases whose process is gone:
/// their lock file exists (the database was opened) and nobody holds it.
/// A directory just created and not yet opened has no lock file and is
/// left alone.
fn remove_abandoned(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(PREFIX)) {
            continue;
        }
        let dir = e.path();
        if !dir.join(DirLock::FILE_NAME).is_file() {
            continue;
        }
        if let Ok(lock) = DirLock::acquire(&dir) {
            tracing::info!(dir = %dir.display(), "removing an abandoned in-memory database");
            let _ = std::fs::remove_dir_all(&dir);
            drop(lock);
        }
    }
}

/// The filesystem type of the mount that holds `path` exactly (a mount
/// point), from `/proc/self/mounts`.
fn mount_fs_type(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let target = path.to_str()?;
    // The last mount over a point is the visible one.
    mounts.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_dev, point, fs) = (f.next()?, f.next()?, f.next()?);
        (point == target).then(|| fs.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_root_that_is_not_a_ram_filesystem() {
        let d = tempfile::tempdir().unwrap();
        let e = RamDir::create_in(d.path(), &|_| Some("ext4".into())).unwrap_err();
        assert!(
            matches!(&e, TsdbError::NoRamFilesystem { found, .. } if found == "ext4"),
            "{e}"
        );
        let e = RamDir::create_in(d.path(), &|_| None).unwrap_err();
        assert!(e.to_string().contains("no such mount"), "{e}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn directories_are_private_removed_on_drop_and_abandoned_ones_swept() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let tmpfs = |_: &Path| Some("tmpfs".to_string());
        let a = RamDir::create_in(d.path(), &tmpfs).unwrap();
        let b = RamDir::create_in(d.path(), &tmpfs).unwrap();
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // `a` is in use (locked); an abandoned one has a free lock file; a
        // fresh one has none yet.
        let held = DirLock::acquire(a.path()).unwrap();
        let abandoned = d.path().join(format!("{PREFIX}999999999-0"));
        std::fs::create_dir(&abandoned).unwrap();
        std::fs::write(abandoned.join(DirLock::FILE_NAME), "").unwrap();
        let fresh = d.path().join(format!("{PREFIX}999999999-1"));
        std::fs::create_dir(&fresh).unwrap();
        let other = d.path().join("not-ours");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join(DirLock::FILE_NAME), "").unwrap();
        let c = RamDir::create_in(d.path(), &tmpfs).unwrap();
        assert!(!abandoned.exists());
        assert!(fresh.exists() && other.exists() && a.path().exists());
        drop(held);
        let (pa, pc) = (a.path().to_path_buf(), c.path().to_path_buf());
        drop(a);
        drop(c);
        assert!(!pa.exists() && !pc.exists());
        assert!(b.path().exists());
    }

    #[test]
    fn dev_shm_is_recognised_where_it_is_a_tmpfs() {
        // On Linux with /dev/shm mounted (nearly everywhere, containers
        // included) the real check passes; elsewhere it refuses.
        match mount_fs_type(Path::new(RAM_ROOT)).as_deref() {
            Some("tmpfs" | "ramfs") => {
                let d = RamDir::create().unwrap();
                assert!(d.path().starts_with(RAM_ROOT));
            }
            _ => assert!(RamDir::create().is_err()),
        }
    }
}
