//! Archive files for the Parquet reader, read with positioned reads.
//!
//! The `parquet` crate reads a [`File`] by duplicating its descriptor and
//! seeking for every page (`fcntl`, `lseek`, `read`, `close`): over an
//! hour of the seed's scale that is a million system calls, about a fifth
//! of a statistics query's time. [`PositionedFile`] reads each range with
//! one `pread`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parquet::errors::Result;
use parquet::file::reader::{ChunkReader, Length};

/// An open file whose ranges the Parquet reader reads by `pread`.
#[derive(Debug, Clone)]
pub struct PositionedFile {
    file: Arc<File>,
    len: u64,
}

impl PositionedFile {
    /// Opens `path`.
    pub fn open(path: &Path) -> io::Result<PositionedFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(PositionedFile { file: Arc::new(file), len })
    }
}

impl Length for PositionedFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for PositionedFile {
    type T = BufReader<ReaderAt>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        Ok(BufReader::new(ReaderAt { file: Arc::clone(&self.file), offset: start }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        let mut buffer = vec![0; length];
        self.file.read_exact_at(&mut buffer, start)?;
        Ok(buffer.into())
    }
}

/// A reader of a file from an offset on, by `pread`.
#[derive(Debug)]
pub struct ReaderAt {
    file: Arc<File>,
    offset: u64,
}

impl Read for ReaderAt {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buffer, self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_readers_return_the_files_bytes_from_where_they_are_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..=255).cycle().take(100_000).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = PositionedFile::open(&path).unwrap();
        assert_eq!(file.len(), 100_000);
        assert_eq!(file.get_bytes(70_000, 300).unwrap(), bytes[70_000..70_300]);
        let (mut a, mut b) = (file.get_read(10).unwrap(), file.get_read(99_990).unwrap());
        let (mut first, mut rest) = (vec![0; 5], Vec::new());
        a.read_exact(&mut first).unwrap();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!((&first[..], &rest[..]), (&bytes[10..15], &bytes[99_990..]), "readers do not move each other");
        assert!(file.get_bytes(99_999, 2).is_err(), "a range past the end is an error");
    }
}
