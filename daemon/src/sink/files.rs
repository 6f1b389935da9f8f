//! The portfolio files of the data folder: a bounded cache of open append
//! handles (least recently used ones are closed), files created on first
//! sight with the header, appends spread over all cores, and the sync of the
//! configured mode as a job that can run on another thread while the next
//! batch is written. No index of files is kept: whether a file is new is
//! asked of the file system.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use lru::LruCache;
use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::config::SyncMode;

/// Descriptors kept free of the cache for everything else (sockets,
/// plugins, state files, the files being opened beyond the cache).
const RESERVED_DESCRIPTORS: u64 = 512;

/// Files opened at once (on all cores) beyond the cache, well within the
/// reserved descriptors.
const OPEN_CHUNK: usize = 128;

/// An open file, its length, and which file it is (device and inode), to
/// notice the file moved, deleted or replaced behind the handle.
struct OpenFile {
    file: File,
    len: u64,
    identity: (u64, u64),
}

/// The files of one data folder.
pub struct DataFiles {
    dir: Arc<OwnedFd>,
    open: LruCache<String, OpenFile>,
    sync: SyncMode,
    /// A file was created since the last sync job was taken (the directory
    /// needs a sync in `file` mode).
    created: bool,
}

/// What makes every append made before it was taken durable. Independent
/// of the [`DataFiles`] it came from, so it can run on another thread while
/// the next batch is appended.
#[derive(Debug)]
pub struct SyncJob {
    dir: Arc<OwnedFd>,
    mode: SyncMode,
    /// A file was created: in `file` mode the directory entry needs a sync.
    created: bool,
}

impl SyncJob {
    /// Runs the sync (blocking).
    pub fn run(self) -> io::Result<()> {
        match self.mode {
            // The files themselves were synced as they were written.
            SyncMode::File if self.created => {
                rustix::fs::fsync(&*self.dir).map_err(|e| with_name("the data folder")(e.into()))
            }
            SyncMode::File | SyncMode::None => Ok(()),
            SyncMode::Filesystem => {
                rustix::fs::syncfs(&*self.dir).map_err(|e| with_name("the data folder's file system")(e.into()))
            }
        }
    }
}

fn with_name(name: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |error| io::Error::new(error.kind(), format!("{name}: {error}"))
}

/// `wanted` open files, or fewer if the process may not have that many
/// (after raising its soft limit to the hard one), with a warning.
fn open_files_allowed(wanted: usize) -> usize {
    let Some(limit) = crate::fsutil::raise_open_file_limit() else { return wanted };
    let allowed = limit.saturating_sub(RESERVED_DESCRIPTORS).max(16);
    if wanted as u64 <= allowed {
        return wanted;
    }
    tracing::warn!(
        "sink.open-files = {wanted} is more than this process may open ({limit} descriptors, {RESERVED_DESCRIPTORS} \
         kept for other uses): keeping {allowed} files open"
    );
    allowed as usize
}

fn open_at(dir: &OwnedFd, name: &str, flags: OFlags) -> io::Result<File> {
    rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::from_raw_mode(0o644))
        .map(File::from)
        .map_err(|e| with_name(name)(e.into()))
}

/// File `name` in `dir` opened for appending (created if missing), with its
/// length.
fn open_for_append(dir: &OwnedFd, name: &str) -> io::Result<OpenFile> {
    let file = open_at(dir, name, OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND)?;
    let stat = rustix::fs::fstat(&file).map_err(|e| with_name(name)(e.into()))?;
    Ok(OpenFile { file, len: stat.st_size as u64, identity: identity(&stat) })
}

/// Which file `stat` describes: its device and inode.
// Their types differ between platforms (u64 on Linux x86-64).
#[allow(clippy::unnecessary_cast)]
fn identity(stat: &rustix::fs::Stat) -> (u64, u64) {
    (stat.st_dev as u64, stat.st_ino as u64)
}

/// The length of file `name` in `dir` and which file it is (device,
/// inode), or `None` if it does not exist.
fn stat_file(dir: &OwnedFd, name: &str) -> io::Result<Option<(u64, (u64, u64))>> {
    match rustix::fs::statat(dir, name, AtFlags::empty()) {
        Ok(stat) => Ok(Some((stat.st_size as u64, identity(&stat)))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(error) => Err(with_name(name)(error.into())),
    }
}

/// The length of file `name` in `dir`, or `None` if it does not exist.
fn stat_length(dir: &OwnedFd, name: &str) -> io::Result<Option<u64>> {
    Ok(stat_file(dir, name)?.map(|(len, _)| len))
}

/// Appends `bytes` to an open file, with `header` first when it is empty,
/// and syncs it in `file` mode; returns whether it was empty.
fn write_to(open: &mut OpenFile, name: &str, header: &[u8], bytes: &[u8], mode: SyncMode) -> io::Result<bool> {
    let created = open.len == 0;
    if created {
        let mut chunk = Vec::with_capacity(header.len() + bytes.len());
        chunk.extend_from_slice(header);
        chunk.extend_from_slice(bytes);
        open.file.write_all(&chunk).map_err(with_name(name))?;
        open.len += chunk.len() as u64;
    } else {
        open.file.write_all(bytes).map_err(with_name(name))?;
        open.len += bytes.len() as u64;
    }
    if mode == SyncMode::File {
        open.file.sync_data().map_err(with_name(name))?;
    }
    Ok(created)
}

impl DataFiles {
    /// Opens the data folder `path` (creating it) with room for `capacity`
    /// open files, or as many as the process may open.
    pub fn open(path: &Path, capacity: usize, sync: SyncMode) -> io::Result<Self> {
        std::fs::create_dir_all(path)?;
        let dir = rustix::fs::open(path, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        let capacity = NonZeroUsize::new(open_files_allowed(capacity)).unwrap_or(NonZeroUsize::MIN);
        Ok(DataFiles { dir: Arc::new(dir), open: LruCache::new(capacity), sync, created: false })
    }

    /// The current length of file `name`, or `None` if it does not exist.
    pub fn length(&mut self, name: &str) -> io::Result<Option<u64>> {
        match self.open.peek(name) {
            Some(open) => Ok(Some(open.len)),
            None => stat_length(&self.dir, name),
        }
    }

    /// The lengths of `names` (see [`length`](Self::length)), asked of the
    /// file system on all cores. An open handle whose file was moved,
    /// deleted or replaced by hand since it was opened is closed (and
    /// logged): the next append goes to the file now at that name, created
    /// with its header if there is none. A file written or cut by another
    /// hand keeps its handle, with its length refreshed (a file cut to
    /// nothing gets its header again).
    pub fn lengths(&mut self, names: &[String]) -> io::Result<Vec<Option<u64>>> {
        let open: Vec<Option<(u64, (u64, u64))>> =
            names.iter().map(|name| self.open.peek(name).map(|f| (f.len, f.identity))).collect();
        let dir = &self.dir;
        let found: Vec<Option<(u64, (u64, u64))>> =
            names.par_iter().map(|name| stat_file(dir, name)).collect::<io::Result<_>>()?;
        for ((name, open), now) in names.iter().zip(open).zip(&found) {
            let Some((len, identity)) = open else { continue };
            let change = match now {
                None => "moved away or deleted: it is created again with its header",
                Some((_, now)) if *now != identity => "replaced: the rows go to the file now at its name",
                Some((now, _)) => {
                    // The same file, written or cut by another hand: its
                    // handle appends at the end anyway; only the length
                    // (which says whether a header is due) is refreshed.
                    if *now != len
                        && let Some(open) = self.open.peek_mut(name.as_str())
                    {
                        open.len = *now;
                    }
                    continue;
                }
            };
            tracing::warn!(file = name.as_str(), "{name} was {change}");
            self.open.pop(name.as_str());
        }
        Ok(found.into_iter().map(|f| f.map(|(len, _)| len)).collect())
    }

    /// Appends to every file of `appends` its bytes, creating it (with
    /// `header` first) when it does not exist or is empty; returns how many
    /// were created. Files with an open handle are written through it; the
    /// others are opened and written on all cores, a chunk at a time, and
    /// their handles join the cache, pushing out the least recently used.
    pub fn append_all(&mut self, header: &[u8], appends: &[(String, &[u8])]) -> io::Result<u64> {
        let mode = self.sync;
        let mut created = 0;
        let mut closed = Vec::new();
        for (name, bytes) in appends {
            match self.open.get_mut(name.as_str()) {
                Some(open) => created += u64::from(write_to(open, name, header, bytes, mode)?),
                None => closed.push((name, *bytes)),
            }
        }
        for chunk in closed.chunks(OPEN_CHUNK) {
            let opened: Vec<(String, OpenFile, bool)> = chunk
                .par_iter()
                .map(|(name, bytes)| {
                    let mut open = open_for_append(&self.dir, name)?;
                    let new = write_to(&mut open, name, header, bytes, mode)?;
                    Ok(((*name).clone(), open, new))
                })
                .collect::<io::Result<_>>()?;
            for (name, open, new) in opened {
                created += u64::from(new);
                self.open.push(name, open);
            }
        }
        self.created |= created > 0;
        Ok(created)
    }

    /// Appends `bytes` to file `name` (see [`append_all`](Self::append_all));
    /// returns whether it was created.
    pub fn append(&mut self, name: &str, header: &[u8], bytes: &[u8]) -> io::Result<bool> {
        Ok(self.append_all(header, &[(name.to_string(), bytes)])? == 1)
    }

    /// Writes all of `bytes` but the last three and stops, leaving a torn
    /// row, as a crash in the middle of a write would (failure injection).
    #[doc(hidden)]
    pub fn append_torn(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let open = self.handle(name)?;
        let part = &bytes[..bytes.len().saturating_sub(3)];
        open.file.write_all(part)?;
        open.len += part.len() as u64;
        Ok(())
    }

    /// The job that makes everything appended so far durable, the way the
    /// sync mode says.
    pub fn take_sync(&mut self) -> SyncJob {
        SyncJob { dir: Arc::clone(&self.dir), mode: self.sync, created: std::mem::take(&mut self.created) }
    }

    /// Truncates file `name` back to `length` (removing it when `None`, i.e.
    /// it did not exist), and returns the bytes removed.
    pub fn truncate(&mut self, name: &str, length: Option<u64>) -> io::Result<u64> {
        self.open.pop(name);
        let Some(now) = self.length(name)? else { return Ok(0) };
        match length {
            None => {
                rustix::fs::unlinkat(&*self.dir, name, AtFlags::empty()).map_err(|e| with_name(name)(e.into()))?;
                Ok(now)
            }
            Some(length) if length < now => {
                let file = open_at(&self.dir, name, OFlags::WRONLY)?;
                file.set_len(length).map_err(with_name(name))?;
                file.sync_all().map_err(with_name(name))?;
                Ok(now - length)
            }
            Some(_) => Ok(0),
        }
    }

    /// Removes an incomplete last line (no final newline) from file `name`,
    /// and returns it.
    pub fn trim_torn_line(&mut self, name: &str) -> io::Result<Option<String>> {
        self.open.pop(name);
        let Some(len) = self.length(name)? else { return Ok(None) };
        if len == 0 {
            return Ok(None);
        }
        let mut file = open_at(&self.dir, name, OFlags::RDWR)?;
        let tail_len = len.min(64 << 10);
        file.seek(SeekFrom::Start(len - tail_len))?;
        let mut tail = Vec::with_capacity(tail_len as usize);
        file.read_to_end(&mut tail)?;
        if tail.last() == Some(&b'\n') {
            return Ok(None);
        }
        let keep = tail.iter().rposition(|&b| b == b'\n').map_or(len - tail_len, |i| len - tail_len + i as u64 + 1);
        let torn = String::from_utf8_lossy(&tail[(keep - (len - tail_len)) as usize..]).into_owned();
        file.set_len(keep).map_err(with_name(name))?;
        file.sync_all().map_err(with_name(name))?;
        Ok(Some(torn))
    }

    /// Cuts every file of `names` longer than `length` back to it (on all
    /// cores); returns how many were cut. Missing files are left missing.
    pub fn cut_all(&mut self, names: &[String], length: u64) -> io::Result<u64> {
        for name in names {
            self.open.pop(name.as_str());
        }
        let dir = &self.dir;
        let cut: Vec<bool> = names
            .par_iter()
            .map(|name| match stat_length(dir, name)? {
                Some(now) if now > length => {
                    let file = open_at(dir, name, OFlags::WRONLY)?;
                    file.set_len(length).map_err(with_name(name))?;
                    Ok(true)
                }
                _ => Ok(false),
            })
            .collect::<io::Result<_>>()?;
        Ok(cut.iter().filter(|c| **c).count() as u64)
    }

    /// Cuts file `name` back to a whole number of `record`-byte records,
    /// and returns the bytes cut.
    pub fn trim_partial_record(&mut self, name: &str, record: u64) -> io::Result<u64> {
        self.open.pop(name);
        let Some(len) = self.length(name)? else { return Ok(0) };
        let partial = len % record;
        if partial > 0 {
            let file = open_at(&self.dir, name, OFlags::WRONLY)?;
            file.set_len(len - partial).map_err(with_name(name))?;
            file.sync_all().map_err(with_name(name))?;
        }
        Ok(partial)
    }

    /// The open handle of `name`, opening (and creating) it if needed.
    fn handle(&mut self, name: &str) -> io::Result<&mut OpenFile> {
        if !self.open.contains(name) {
            self.open.push(name.to_string(), open_for_append(&self.dir, name)?);
        }
        Ok(self.open.get_mut(name).expect("just opened"))
    }

    /// Closes the handle of file `name`, if open (before the file is
    /// replaced).
    pub fn close(&mut self, name: &str) {
        self.open.pop(name);
    }

    /// Closes every handle: lengths are asked of the file system again
    /// (after another process may have written the files).
    pub fn close_all(&mut self) {
        self.open.clear();
    }

    /// How many files are open now.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_with_a_header_once_and_bounds_open_handles() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = DataFiles::open(dir.path(), 2, SyncMode::File).unwrap();
        assert_eq!(files.length("a.csv").unwrap(), None);
        assert!(files.append("a.csv", b"H\n", b"1\n").unwrap());
        assert!(!files.append("a.csv", b"H\n", b"2\n").unwrap());
        files.append("b.csv", b"H\n", b"3\n").unwrap();
        files.append("c.csv", b"H\n", b"4\n").unwrap();
        assert_eq!(files.open_count(), 2, "the least recently used handle was closed");
        files.append("a.csv", b"H\n", b"5\n").unwrap();
        files.take_sync().run().unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("a.csv")).unwrap(), "H\n1\n2\n5\n");
        assert_eq!(files.length("a.csv").unwrap(), Some(8));
    }

    #[test]
    fn a_file_changed_by_another_hand_is_seen_at_the_next_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = DataFiles::open(dir.path(), 8, SyncMode::None).unwrap();
        let names = ["cut.csv".to_string(), "moved.csv".to_string()];
        for name in &names {
            files.append(name, b"H\n", b"1\n").unwrap();
        }
        // Cut to nothing, and moved away, with their handles open.
        std::fs::File::create(dir.path().join("cut.csv")).unwrap();
        std::fs::rename(dir.path().join("moved.csv"), dir.path().join("elsewhere")).unwrap();
        assert_eq!(files.lengths(&names).unwrap(), [Some(0), None]);
        for name in &names {
            files.append(name, b"H\n", b"2\n").unwrap();
        }
        for name in &names {
            assert_eq!(std::fs::read_to_string(dir.path().join(name)).unwrap(), "H\n2\n", "{name}: a header again");
        }
        assert_eq!(std::fs::read_to_string(dir.path().join("elsewhere")).unwrap(), "H\n1\n", "nothing more");
    }

    #[test]
    fn appends_to_many_files_at_once_within_the_open_handles() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = DataFiles::open(dir.path(), 16, SyncMode::Filesystem).unwrap();
        let names: Vec<String> = (0..1000).map(|n| format!("f{n}.csv")).collect();
        let rows: Vec<String> = (0..1000).map(|n| format!("{n}\n")).collect();
        let appends: Vec<(String, &[u8])> = names.iter().cloned().zip(rows.iter().map(|r| r.as_bytes())).collect();
        assert_eq!(files.append_all(b"H\n", &appends).unwrap(), 1000);
        assert_eq!(files.append_all(b"H\n", &appends).unwrap(), 0);
        files.take_sync().run().unwrap();
        assert_eq!(files.open_count(), 16);
        assert_eq!(std::fs::read_to_string(dir.path().join("f7.csv")).unwrap(), "H\n7\n7\n");
        let lengths = files.lengths(&[names[999].clone(), "absent.csv".to_string()]).unwrap();
        assert_eq!(lengths, [Some(10), None]);
    }

    #[test]
    fn truncates_back_and_trims_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = DataFiles::open(dir.path(), 8, SyncMode::None).unwrap();
        files.append("a.csv", b"H\n", b"1\n").unwrap();
        files.append("a.csv", b"H\n", b"2\n").unwrap();
        assert_eq!(files.truncate("a.csv", Some(4)).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(dir.path().join("a.csv")).unwrap(), "H\n1\n");
        files.append("new.csv", b"H\n", b"1\n").unwrap();
        assert_eq!(files.truncate("new.csv", None).unwrap(), 4);
        assert!(!dir.path().join("new.csv").exists());
        files.append_torn("a.csv", b"2026,halfrow\n").unwrap();
        assert_eq!(files.trim_torn_line("a.csv").unwrap().as_deref(), Some("2026,halfr"));
        assert_eq!(std::fs::read_to_string(dir.path().join("a.csv")).unwrap(), "H\n1\n");
        assert_eq!(files.trim_torn_line("a.csv").unwrap(), None);
        files.append("log.bin", b"", &[10; 37]).unwrap();
        assert_eq!(files.trim_partial_record("log.bin", 16).unwrap(), 5);
        assert_eq!(std::fs::read(dir.path().join("log.bin")).unwrap(), [10; 32]);
        assert_eq!(files.trim_partial_record("log.bin", 16).unwrap(), 0);
    }
}
