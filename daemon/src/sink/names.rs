//! The investors' display names as the valuations give them, kept for the
//! query in `DATA/.sink/investors.csv` (see [`crate::layout`]). Rewritten
//! atomically when a name is new or changes, under a lock and merged with
//! what the file holds, so that sinks sharing the data folder keep each
//! other's names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::layout::{LEGACY_NAMES_FILE, names_path, read_names};
use crate::market::InvestorId;

/// Investor names, as last seen.
pub struct Names {
    path: PathBuf,
    names: BTreeMap<InvestorId, String>,
    /// The investors whose name this process changed since the last save.
    changed: BTreeSet<InvestorId>,
}

impl Names {
    /// Loads the names of the data folder `data`, first moving a legacy
    /// `DATA/investors.csv` (where a reader of the folder's `*.csv` took it
    /// for a portfolio file) into `.sink/`; names already there win.
    pub fn load(data: &Path) -> std::io::Result<Self> {
        let path = names_path(data);
        let mut names = Names { names: read_names(&path), path, changed: BTreeSet::new() };
        let legacy = data.join(LEGACY_NAMES_FILE);
        if legacy.exists() {
            for (investor, name) in read_names(&legacy) {
                names.names.entry(investor).or_insert(name);
            }
            names.changed = names.names.keys().copied().collect();
            names.save()?;
            std::fs::remove_file(&legacy)?;
            fsutil::sync_dir(data)?;
            tracing::info!(
                from = %legacy.display(), to = %names.path.display(),
                "moved the investors' names out of the data folder's *.csv files"
            );
        }
        Ok(names)
    }

    /// Records `name` for `investor`.
    pub fn observe(&mut self, investor: InvestorId, name: &str) {
        if self.names.get(&investor).map(String::as_str) != Some(name) {
            self.names.insert(investor, name.to_string());
            self.changed.insert(investor);
        }
    }

    /// Rewrites the file if a name changed: under the lock
    /// `.sink/investors.lock`, the names this process changed replace those
    /// in the file, and the others are kept.
    pub fn save(&mut self) -> std::io::Result<()> {
        if self.changed.is_empty() {
            return Ok(());
        }
        let lock_path = self.path.with_extension("lock");
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lock = std::fs::File::options().write(true).create(true).truncate(false).open(&lock_path)?;
        lock.lock()?;
        for (investor, name) in read_names(&self.path) {
            if !self.changed.contains(&investor) {
                self.names.insert(investor, name);
            }
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        let rows = std::iter::once(["INVESTOR".to_string(), "NAME".to_string()])
            .chain(self.names.iter().map(|(id, name)| [id.to_string(), name.clone()]));
        for row in rows {
            writer.write_record(&row).map_err(std::io::Error::other)?;
        }
        let bytes = writer.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
        fsutil::write_atomically(&self.path, &bytes)?;
        self.changed.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_names_and_rewrites_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut names = Names::load(dir.path()).unwrap();
        names.observe(InvestorId::new(2).unwrap(), "Investor 2");
        names.observe(InvestorId::new(10).unwrap(), "Smith, Jones & Co");
        names.save().unwrap();
        let text = std::fs::read_to_string(names_path(dir.path())).unwrap();
        assert_eq!(text, "INVESTOR,NAME\n2,Investor 2\n10,\"Smith, Jones & Co\"\n");
        let mut again = Names::load(dir.path()).unwrap();
        again.observe(InvestorId::new(2).unwrap(), "Investor 2");
        assert!(again.changed.is_empty());
        again.observe(InvestorId::new(2).unwrap(), "Renamed");
        again.save().unwrap();
        assert_eq!(read_names(&names_path(dir.path()))[&InvestorId::new(2).unwrap()], "Renamed");
        // Another sink of the folder, which knew the old names, adds one:
        // the rename stays.
        let mut other = names;
        other.observe(InvestorId::new(7).unwrap(), "Investor 7");
        other.save().unwrap();
        let on_disk = read_names(&names_path(dir.path()));
        assert_eq!(on_disk[&InvestorId::new(2).unwrap()], "Renamed");
        assert_eq!(on_disk[&InvestorId::new(7).unwrap()], "Investor 7");
    }

    #[test]
    fn a_legacy_names_file_moves_out_of_the_csv_namespace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY_NAMES_FILE), "INVESTOR,NAME\n1,Old One\n2,Old Two\n").unwrap();
        std::fs::create_dir_all(dir.path().join(".sink")).unwrap();
        std::fs::write(names_path(dir.path()), "INVESTOR,NAME\n2,New Two\n").unwrap();
        let names = Names::load(dir.path()).unwrap();
        assert!(!dir.path().join(LEGACY_NAMES_FILE).exists(), "the legacy file is gone");
        assert!(names.changed.is_empty());
        let on_disk = read_names(&names_path(dir.path()));
        assert_eq!(on_disk[&InvestorId::new(1).unwrap()], "Old One", "kept from the legacy file");
        assert_eq!(on_disk[&InvestorId::new(2).unwrap()], "New Two", "the newer file wins");
    }
}
