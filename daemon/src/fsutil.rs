//! Small file-system helpers shared by the components that persist state.

use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// An I/O error's context: `path`, then the error (for `map_err`).
pub fn with_path(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |error| io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// Replaces `path` with `contents` atomically and durably: writes a
/// temporary file beside it, syncs it, renames it over `path`, and syncs the
/// directory, so that after a crash `path` holds either the old or the new
/// contents, never a mix. Creates the parent directory if needed.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_and_rename(path, contents, true)
}

/// Replaces `path` with `contents` atomically with respect to a process
/// crash (temporary file + rename), without syncing: after a power loss the
/// old contents may come back.
pub fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_and_rename(path, contents, false)
}

fn write_and_rename(path: &Path, contents: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable { sync_dir(dir) } else { Ok(()) }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Raises the process's soft limit on open files to its hard limit (the
/// sink keeps many files open) and returns the soft limit now in force, if
/// it can be read.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current?;
    if limit.maximum.is_none_or(|hard| hard > soft) {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum.or(Some(u64::MAX));
        }
    }
    Some(soft)
}

/// Syncs a directory, making renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The outcome of one attempt at a lock file.
pub enum LockAttempt {
    /// Taken: held until the file is dropped (or the process dies).
    Taken(File),
    /// Another process holds it; what it wrote in the file.
    Held(String),
}

/// Tries once to take the lock file `path` (an advisory lock of the file
/// system, `flock`: the kernel releases it when its process dies; NFSv4
/// honours it across machines), creating it and its folder. Once taken,
/// the file says who holds it: `pid N on HOST`.
pub fn try_lock(path: &Path) -> io::Result<LockAttempt> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut file = File::options().read(true).write(true).create(true).truncate(false).open(path)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "pid {} on {}", std::process::id(), host_name())?;
            Ok(LockAttempt::Taken(file))
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Ok(LockAttempt::Held(holder.trim().to_string()))
        }
        Err(TryLockError::Error(error)) => Err(error),
    }
}

fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "?".into(), |name| name.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_names_its_holder_and_is_free_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/lock");
        let LockAttempt::Taken(lock) = try_lock(&path).unwrap() else { panic!("free at first") };
        match try_lock(&path).unwrap() {
            LockAttempt::Held(holder) => assert_eq!(holder, format!("pid {} on {}", std::process::id(), host_name())),
            LockAttempt::Taken(_) => panic!("a second open file description must not take it"),
        }
        drop(lock);
        assert!(matches!(try_lock(&path).unwrap(), LockAttempt::Taken(_)));
    }

    #[test]
    fn replaces_contents_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["state.json"]);
    }
}
