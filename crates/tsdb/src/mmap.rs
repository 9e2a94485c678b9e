//! Memory-mapped files: the only module of the crate that uses `unsafe`.
//!
//! # Design decision
//!
//! Maps are created with memmap2's [`MmapRaw`] in read-only mode. `MmapRaw`
//! never hands out references, only a pointer, so the single place where
//! mapped memory becomes a `&[u8]` is the private `Inner::range`, and it
//! only ever covers the *published prefix* of a map: bytes that vigil has
//! finished writing and will never write again. Everything else in the crate
//! sees owned, clonable handles ([`MappedFile`], [`MmapSlice`]) with
//! bounds-checked accessors, never a borrowed lifetime tied to a map
//! (tantivy's `OwnedBytes` pattern).
//!
//! Two kinds of file are mapped:
//!
//! - **Immutable files** ([`MappedFile::open`]): the whole file is published
//!   from the start.
//! - **Append-only files** ([`AppendFile`]): a file is created, preallocated
//!   (sparse) to a fixed capacity and mapped once at that capacity, so the
//!   map never has to grow. Bytes are appended with `pwrite`; the published
//!   length advances only after a write has returned.
//!
//! # Invariants (the safety argument)
//!
//! 1. **Read-only.** Every map is created `PROT_READ`; nothing in vigil
//!    writes through a mapping. Decoders only ever see `&[u8]`.
//! 2. **Published bytes never change.** A reference is only formed over
//!    `[0, published)`. For an immutable file that is the whole file, and
//!    vigil never writes to a file after it has been opened with
//!    [`MappedFile::open`]. For an [`AppendFile`], `published` is the end of
//!    the last completed `append`; `append` writes only at `published` and
//!    beyond, and it is the only writer of the file: the file is created with
//!    `O_EXCL` by [`AppendFile::create`], `AppendFile` is not `Clone`, and
//!    `append` takes `&mut self`. On Linux (and every unified-page-cache
//!    Unix) a completed `pwrite` is visible through a `MAP_SHARED` map of the
//!    same file.
//! 3. **No shrinking while mapped.** Reading a mapped page past the end of
//!    the file raises `SIGBUS`, so vigil never truncates or shrinks a file
//!    while a map of it exists. Maps are reference counted (`Arc`, and every
//!    [`MmapSlice`] holds one); the only truncation this module offers,
//!    [`MappedFile::truncate`], consumes the handle and refuses while any
//!    other handle is alive. Unlinking a mapped file is fine: the inode lives
//!    until the last map is dropped.
//! 4. **One process.** The directory is owned by one process, enforced by an
//!    exclusive lock ([`DirLock`], `flock` via [`File::try_lock`]). Opening a
//!    map requires the lock of a directory containing the file, and every
//!    map keeps the lock alive, so the lock is released only after the last
//!    map is gone.
//! 5. **Bounds checked.** Every slice is checked against the published
//!    length when it is created ([`MappedFile::slice`], [`MmapSlice::slice`]);
//!    an out-of-range request yields `None`, never a panic or a wild read.
//!
//! Outside this model are other users or processes that ignore the lock and
//! modify or truncate vigil's files. As with every mmap-based store
//! (Prometheus, LMDB), that can crash the process with `SIGBUS` or change
//! bytes under a reader; callers checksum what they read, so such damage is
//! at least detected. Prometheus maps the same way
//! (`tsdb/fileutil/mmap_unix.go`, `tsdb/tsdbutil/dir_locker.go`).

#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::ops::{Deref, Range};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

/// Everything that can go wrong while locking, mapping or appending.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MmapError {
    /// A filesystem operation failed.
    #[error("mmap: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was attempted, e.g. `"map file"` or `"append to file"`.
        op: &'static str,
        /// The file or directory the operation was applied to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Another process (or another [`DirLock`] in this one) holds the lock.
    #[error("mmap: {} is locked by another user of the directory", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// A file outside the locked directory was to be mapped.
    #[error("mmap: {} is not inside the locked directory {}", path.display(), lock_dir.display())]
    NotUnderLock {
        /// The file.
        path: PathBuf,
        /// The directory the presented lock covers.
        lock_dir: PathBuf,
    },

    /// The file is larger than the address space of this platform.
    #[error("mmap: {} is {len} bytes, too large to map", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },

    /// An append would write past the preallocated capacity of the file.
    #[error(
        "mmap: appending {len} bytes at offset {offset} exceeds the capacity {capacity} of {}",
        path.display()
    )]
    CapacityExceeded {
        /// The file.
        path: PathBuf,
        /// Where the append would start.
        offset: usize,
        /// Bytes to append.
        len: usize,
        /// The mapped capacity of the file.
        capacity: usize,
    },

    /// [`MappedFile::truncate`] was called while other handles to the map
    /// were alive; truncating would make their pages raise `SIGBUS`.
    #[error("mmap: refusing to truncate {} while it is still mapped", path.display())]
    StillMapped {
        /// The file.
        path: PathBuf,
    },
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> MmapError {
    MmapError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// An exclusive, advisory lock on a directory, held until the last clone
/// (and the last map opened under it) is dropped.
///
/// The lock is `flock(LOCK_EX | LOCK_NB)` on a file named [`DirLock::FILE_NAME`]
/// inside the directory ([`File::try_lock`]). The lock file is left in place
/// when the lock is released: a crashed process releases its lock with its
/// file descriptors, so a stale file never blocks a restart (unlike a lock
/// created with `O_EXCL`).
#[derive(Debug, Clone)]
pub struct DirLock {
    inner: Arc<LockInner>,
}

#[derive(Debug)]
struct LockInner {
    dir: PathBuf,
    // Closing the descriptor releases the lock.
    _file: File,
}

impl DirLock {
    /// Name of the lock file created inside the locked directory.
    pub const FILE_NAME: &'static str = "LOCK";

    /// Locks `dir`, which must exist. Fails with [`MmapError::Locked`] if
    /// another process, or another `DirLock` of this process, holds it.
    pub fn acquire(dir: impl AsRef<Path>) -> Result<DirLock, MmapError> {
        let dir = dir.as_ref();
        let path = dir.join(Self::FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err("open lock file", &path, e))?;
        // `File::try_lock` is stable since Rust 1.89; the workspace's declared
        // minimum (1.85) predates it, so the MSRV lint is silenced here.

        let locked = file.try_lock();
        match locked {
            Ok(()) => Ok(DirLock {
                inner: Arc::new(LockInner {
                    dir: dir.to_path_buf(),
                    _file: file,
                }),
            }),
            Err(TryLockError::WouldBlock) => Err(MmapError::Locked { path }),
            Err(TryLockError::Error(source)) => Err(MmapError::Io {
                op: "lock",
                path,
                source,
            }),
        }
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Checks that `path` lies inside the locked directory (lexically, and
    /// without `..` components).
    fn covers(&self, path: &Path) -> Result<(), MmapError> {
        let escapes = path.components().any(|c| c == Component::ParentDir);
        if escapes || !path.starts_with(self.dir()) {
            return Err(MmapError::NotUnderLock {
                path: path.to_path_buf(),
                lock_dir: self.dir().to_path_buf(),
            });
        }
        Ok(())
    }
}

/// The shared state behind every handle to one map.
struct Inner {
    raw: MmapRaw,
    path: PathBuf,
    /// Length of the prefix that is written and immutable. Monotonic, at most
    /// `raw.len()`.
    published: AtomicUsize,
    /// Keeps the directory locked while the map exists (invariant 4).
    _lock: DirLock,
}

impl Inner {
    fn map(lock: &DirLock, file: &File, path: &Path, len: u64) -> Result<Inner, MmapError> {
        let len_usize = usize::try_from(len).map_err(|_| MmapError::TooLarge {
            path: path.to_path_buf(),
            len,
        })?;
        let raw = MmapOptions::new()
            .len(len_usize)
            .map_raw_read_only(file)
            .map_err(|e| io_err("map file", path, e))?;
        Ok(Inner {
            raw,
            path: path.to_path_buf(),
            published: AtomicUsize::new(0),
            _lock: lock.clone(),
        })
    }

    fn published_len(&self) -> usize {
        self.published.load(Ordering::Acquire)
    }

    /// The published prefix.
    fn published(&self) -> &[u8] {
        self.range(0, self.published_len())
    }

    /// `len` bytes at `start`; the caller guarantees
    /// `start + len <= published_len()` (checked again in debug builds).
    fn range(&self, start: usize, len: usize) -> &[u8] {
        debug_assert!(start
            .checked_add(len)
            .is_some_and(|end| end <= self.published_len()));
        // SAFETY: `start + len <= published <= raw.len()` (every caller checks
        // against the published length, which never exceeds the map length
        // and never decreases), so the range lies inside the live mapping
        // held by `self.raw`, which outlives the returned borrow of `self`.
        // The pointer is non-null and `u8` has alignment 1. The bytes are
        // initialised (file contents or zero pages), are never written
        // through the map (invariant 1), and published bytes are never
        // modified (invariant 2) nor truncated away (invariant 3) while a
        // map exists, so they do not change for the lifetime of the borrow.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(start), len) }
    }
}

/// A read-only map of a file: a cheap, clonable handle.
///
/// [`len`](Self::len) and [`bytes`](Self::bytes) cover the *published*
/// prefix: the whole file for [`MappedFile::open`], the bytes appended so far
/// for the map of an [`AppendFile`].
#[derive(Clone)]
pub struct MappedFile {
    inner: Arc<Inner>,
}

impl fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedFile")
            .field("path", &self.inner.path)
            .field("len", &self.len())
            .field("capacity", &self.inner.raw.len())
            .finish()
    }
}

impl MappedFile {
    /// Maps the existing file at `path`, which must lie inside the directory
    /// locked by `lock`, in full. The file must not be written again while it
    /// is mapped (module invariant 2).
    pub fn open(lock: &DirLock, path: impl AsRef<Path>) -> Result<MappedFile, MmapError> {
        let path = path.as_ref();
        lock.covers(path)?;
        let file = File::open(path).map_err(|e| io_err("open file for mapping", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| io_err("stat file for mapping", path, e))?
            .len();
        let inner = Inner::map(lock, &file, path, len)?;
        inner.published.store(inner.raw.len(), Ordering::Release);
        Ok(MappedFile {
            inner: Arc::new(inner),
        })
    }

    /// The path the file was mapped from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Length of the published prefix in bytes.
    pub fn len(&self) -> usize {
        self.inner.published_len()
    }

    /// Whether nothing is published yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The published prefix.
    pub fn bytes(&self) -> &[u8] {
        self.inner.published()
    }

    /// An owned handle to `range` of the published prefix, or `None` if the
    /// range is out of bounds or reversed.
    pub fn slice(&self, range: Range<usize>) -> Option<MmapSlice> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        Some(MmapSlice {
            map: Arc::clone(&self.inner),
            start: range.start,
            len: range.end - range.start,
        })
    }

    /// Truncates the file to `new_len` bytes and maps it again.
    ///
    /// Consumes the handle so the old map is gone before the file shrinks;
    /// fails with [`MmapError::StillMapped`] (giving nothing back) if any
    /// other handle ([`MappedFile`] clone or [`MmapSlice`]) is alive. The
    /// truncation is fsynced. Meant for repair at start-up, before any handle
    /// has been given out.
    pub fn truncate(self, new_len: u64) -> Result<MappedFile, MmapError> {
        let inner = Arc::try_unwrap(self.inner).map_err(|inner| MmapError::StillMapped {
            path: inner.path.clone(),
        })?;
        let Inner {
            raw,
            path,
            _lock: lock,
            ..
        } = inner;
        // Unmap before the file shrinks (invariant 3).
        drop(raw);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err("open file for truncation", &path, e))?;
        file.set_len(new_len)
            .map_err(|e| io_err("truncate file", &path, e))?;
        file.sync_all()
            .map_err(|e| io_err("fsync truncated file", &path, e))?;
        drop(file);
        MappedFile::open(&lock, &path)
    }
}

/// An owned, clonable view of part of a map. Keeps the map (and the
/// directory lock) alive; derefs to the bytes.
#[derive(Clone)]
pub struct MmapSlice {
    map: Arc<Inner>,
    start: usize,
    len: usize,
}

impl fmt::Debug for MmapSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapSlice")
            .field("path", &self.map.path)
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl MmapSlice {
    /// A sub-slice of this slice, or `None` if `range` is out of bounds or
    /// reversed.
    pub fn slice(&self, range: Range<usize>) -> Option<MmapSlice> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        Some(MmapSlice {
            map: Arc::clone(&self.map),
            start: self.start + range.start,
            len: range.end - range.start,
        })
    }

    /// Offset of the first byte in the mapped file.
    pub fn file_offset(&self) -> usize {
        self.start
    }
}

impl Deref for MmapSlice {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // Checked against the published length when the slice was created;
        // the published prefix only grows.
        self.map.range(self.start, self.len)
    }
}

impl AsRef<[u8]> for MmapSlice {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// The single writer of an append-only, preallocated, mapped file.
///
/// The file is created (it must not exist), extended with `set_len` to its
/// capacity (sparse: no disk blocks until written) and mapped once at that
/// capacity. [`append`](Self::append) writes with `pwrite` right after the
/// published prefix and then publishes the new bytes to every
/// [`MappedFile`] handle from [`reader`](Self::reader).
#[derive(Debug)]
pub struct AppendFile {
    file: File,
    map: MappedFile,
}

impl AppendFile {
    /// Creates `path` inside the directory locked by `lock`, preallocated and
    /// mapped at `capacity` bytes. On failure the partially created file is
    /// removed again (best effort).
    pub fn create(
        lock: &DirLock,
        path: impl AsRef<Path>,
        capacity: u64,
    ) -> Result<AppendFile, MmapError> {
        let path = path.as_ref();
        lock.covers(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_err("create file", path, e))?;
        let mapped = file
            .set_len(capacity)
            .map_err(|e| io_err("preallocate file", path, e))
            .and_then(|()| Inner::map(lock, &file, path, capacity));
        match mapped {
            Ok(inner) => Ok(AppendFile {
                file,
                map: MappedFile {
                    inner: Arc::new(inner),
                },
            }),
            Err(e) => {
                drop(file);
                // Nothing was mapped, so removing is safe; an error here
                // leaves an empty file that start-up repair discards.
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// A read handle that sees every byte once [`append`](Self::append)
    /// has returned.
    pub fn reader(&self) -> &MappedFile {
        &self.map
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        self.map.path()
    }

    /// Bytes appended (and published) so far.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing has been appended yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The preallocated, mapped size of the file.
    pub fn capacity(&self) -> usize {
        self.map.inner.raw.len()
    }

    /// Writes `data` right after the published prefix and publishes it.
    ///
    /// On error nothing is published; some of `data` may have reached the
    /// file, and the next `append` overwrites it.
    pub fn append(&mut self, data: &[u8]) -> Result<(), MmapError> {
        let inner = &self.map.inner;
        let offset = inner.published_len();
        let end = offset.checked_add(data.len());
        if end.is_none_or(|end| end > inner.raw.len()) {
            return Err(MmapError::CapacityExceeded {
                path: inner.path.clone(),
                offset,
                len: data.len(),
                capacity: inner.raw.len(),
            });
        }
        // `usize` to `u64` never truncates on supported platforms.
        self.file
            .write_all_at(data, offset as u64)
            .map_err(|e| io_err("append to file", &inner.path, e))?;
        // Publish only after the write has returned (invariant 2). `&mut
        // self` makes this the only writer, so a plain store suffices.
        inner
            .published
            .store(offset + data.len(), Ordering::Release);
        Ok(())
    }

    /// Forces appended bytes to disk (`fdatasync`).
    pub fn sync_data(&self) -> Result<(), MmapError> {
        self.file
            .sync_data()
            .map_err(|e| io_err("fsync file", self.path(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked_tempdir() -> (tempfile::TempDir, DirLock) {
        let tmp = tempfile::tempdir().unwrap();
        let lock = DirLock::acquire(tmp.path()).unwrap();
        (tmp, lock)
    }

    #[test]
    fn dir_lock_is_exclusive_until_last_map_drops() {
        let (tmp, lock) = locked_tempdir();
        assert!(matches!(
            DirLock::acquire(tmp.path()),
            Err(MmapError::Locked { .. })
        ));
        let path = tmp.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let map = MappedFile::open(&lock, &path).unwrap();
        let slice = map.slice(1..3).unwrap();
        drop(map);
        drop(lock);
        // The slice still holds the map, and the map holds the lock.
        assert!(DirLock::acquire(tmp.path()).is_err());
        assert_eq!(&*slice, b"el");
        drop(slice);
        DirLock::acquire(tmp.path()).unwrap();
    }

    #[test]
    fn open_maps_whole_file_and_bounds_checks() {
        let (tmp, lock) = locked_tempdir();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let map = MappedFile::open(&lock, &path).unwrap();
        assert_eq!(map.len(), 10);
        assert_eq!(map.bytes(), b"0123456789");
        let s = map.slice(2..8).unwrap();
        assert_eq!(&*s, b"234567");
        assert_eq!(s.file_offset(), 2);
        assert_eq!(&*s.slice(1..3).unwrap(), b"34");
        assert!(s.slice(5..7).is_none());
        assert!(map.slice(0..11).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = map.slice(5..4);
        assert!(reversed.is_none());
        assert_eq!(map.slice(10..10).unwrap().len(), 0);
    }

    #[test]
    fn empty_file_maps_to_empty_slice() {
        let (tmp, lock) = locked_tempdir();
        let path = tmp.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        let map = MappedFile::open(&lock, &path).unwrap();
        assert!(map.is_empty());
        assert_eq!(map.bytes(), b"");
    }

    #[test]
    fn paths_outside_the_lock_are_refused() {
        let (tmp, lock) = locked_tempdir();
        let other = tempfile::tempdir().unwrap();
        let path = other.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        assert!(matches!(
            MappedFile::open(&lock, &path),
            Err(MmapError::NotUnderLock { .. })
        ));
        let sneaky = tmp.path().join("..").join("f");
        assert!(matches!(
            AppendFile::create(&lock, sneaky, 64),
            Err(MmapError::NotUnderLock { .. })
        ));
    }

    #[test]
    fn append_publishes_after_write() {
        let (tmp, lock) = locked_tempdir();
        let path = tmp.path().join("a");
        let mut f = AppendFile::create(&lock, &path, 16).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        let reader = f.reader().clone();
        assert!(reader.is_empty());
        f.append(b"abc").unwrap();
        assert_eq!(reader.bytes(), b"abc");
        let first = reader.slice(0..3).unwrap();
        f.append(b"defgh").unwrap();
        assert_eq!(reader.bytes(), b"abcdefgh");
        assert_eq!(&*first, b"abc");
        assert!(matches!(
            f.append(&[0; 9]),
            Err(MmapError::CapacityExceeded { .. })
        ));
        f.append(&[7; 8]).unwrap();
        assert_eq!(reader.len(), 16);
        f.sync_data().unwrap();
        // Creating an existing file fails (one writer per file).
        assert!(matches!(
            AppendFile::create(&lock, &path, 16),
            Err(MmapError::Io { .. })
        ));
    }

    #[test]
    fn truncate_refuses_while_mapped() {
        let (tmp, lock) = locked_tempdir();
        let path = tmp.path().join("t");
        std::fs::write(&path, b"0123456789").unwrap();
        let map = MappedFile::open(&lock, &path).unwrap();
        let slice = map.slice(0..10).unwrap();
        assert!(matches!(
            map.truncate(4),
            Err(MmapError::StillMapped { .. })
        ));
        assert_eq!(&*slice, b"0123456789");
        drop(slice);
        let map = MappedFile::open(&lock, &path).unwrap();
        let map = map.truncate(4).unwrap();
        assert_eq!(map.bytes(), b"0123");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4);
    }
}
