//! The portfolio files of the data folder: a bounded cache of open append
//! handles (least recently used ones are closed), files created on first
//! sight with the header, and the syncs of the configured mode. No index of
//! files is kept: whether a file is new is asked of the file system.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::path::Path;

use lru::LruCache;
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::config::SyncMode;

/// An open file and what the sink knows of it.
struct OpenFile {
    file: File,
    len: u64,
    /// Written since its last sync.
    dirty: bool,
}

/// The files of one data folder.
pub struct DataFiles {
    dir: OwnedFd,
    open: LruCache<String, OpenFile>,
    sync: SyncMode,
    /// A file was created since the last sync (the directory needs one).
    created: bool,
}

fn with_name(name: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |error| io::Error::new(error.kind(), format!("{name}: {error}"))
}

impl DataFiles {
    /// Opens the data folder `path` (creating it) with room for `capacity`
    /// open files.
    pub fn open(path: &Path, capacity: usize, sync: SyncMode) -> io::Result<Self> {
        std::fs::create_dir_all(path)?;
        let dir = rustix::fs::open(path, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Ok(DataFiles { dir, open: LruCache::new(capacity), sync, created: false })
    }

    /// The current length of file `name`, or `None` if it does not exist.
    pub fn length(&mut self, name: &str) -> io::Result<Option<u64>> {
        if let Some(open) = self.open.peek(name) {
            return Ok(Some(open.len));
        }
        match rustix::fs::statat(&self.dir, name, AtFlags::empty()) {
            Ok(stat) => Ok(Some(stat.st_size as u64)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(error) => Err(with_name(name)(error.into())),
        }
    }

    /// Appends `bytes` to file `name`, creating it (with `header` first)
    /// when it does not exist or is empty. Returns whether it was created.
    pub fn append(&mut self, name: &str, header: &[u8], bytes: &[u8]) -> io::Result<bool> {
        let open = self.handle(name)?;
        let created = open.len == 0;
        let mut chunk = Vec::with_capacity(header.len() + bytes.len());
        if created {
            chunk.extend_from_slice(header);
        }
        chunk.extend_from_slice(bytes);
        open.file.write_all(&chunk).map_err(with_name(name))?;
        open.len += chunk.len() as u64;
        open.dirty = true;
        self.created |= created;
        Ok(created)
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

    /// Makes everything appended so far durable, the way the sync mode says.
    pub fn sync(&mut self) -> io::Result<()> {
        match self.sync {
            SyncMode::File => {
                for (name, open) in self.open.iter_mut().filter(|(_, open)| open.dirty) {
                    open.file.sync_data().map_err(with_name(name))?;
                }
                if self.created {
                    rustix::fs::fsync(&self.dir).map_err(|e| with_name("the data folder")(e.into()))?;
                }
            }
            SyncMode::Filesystem => {
                rustix::fs::syncfs(&self.dir).map_err(|e| with_name("the data folder's file system")(e.into()))?;
            }
            SyncMode::None => {}
        }
        for (_, open) in self.open.iter_mut() {
            open.dirty = false;
        }
        self.created = false;
        Ok(())
    }

    /// Truncates file `name` back to `length` (removing it when `None`, i.e.
    /// it did not exist), and returns the bytes removed.
    pub fn truncate(&mut self, name: &str, length: Option<u64>) -> io::Result<u64> {
        self.open.pop(name);
        let Some(now) = self.length(name)? else { return Ok(0) };
        match length {
            None => {
                rustix::fs::unlinkat(&self.dir, name, AtFlags::empty()).map_err(|e| with_name(name)(e.into()))?;
                Ok(now)
            }
            Some(length) if length < now => {
                let file = self.open_raw(name, OFlags::WRONLY)?;
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
        let mut file = self.open_raw(name, OFlags::RDWR)?;
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

    /// The open handle of `name`, opening (and creating) it if needed; a
    /// handle pushed out of the cache is synced first if the mode syncs
    /// files.
    fn handle(&mut self, name: &str) -> io::Result<&mut OpenFile> {
        if !self.open.contains(name) {
            let file = self.open_raw(name, OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND)?;
            let len = file.metadata().map_err(with_name(name))?.len();
            let evicted = self.open.push(name.to_string(), OpenFile { file, len, dirty: false });
            if let Some((evicted_name, evicted)) = evicted
                && evicted.dirty
                && self.sync == SyncMode::File
            {
                evicted.file.sync_data().map_err(with_name(&evicted_name))?;
            }
        }
        Ok(self.open.get_mut(name).expect("just inserted"))
    }

    fn open_raw(&self, name: &str, flags: OFlags) -> io::Result<File> {
        rustix::fs::openat(&self.dir, name, flags | OFlags::CLOEXEC, Mode::from_raw_mode(0o644))
            .map(File::from)
            .map_err(|e| with_name(name)(e.into()))
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
        files.sync().unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("a.csv")).unwrap(), "H\n1\n2\n5\n");
        assert_eq!(files.length("a.csv").unwrap(), Some(8));
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
    }
}
