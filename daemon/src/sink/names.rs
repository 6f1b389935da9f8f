//! `DATA/investors.csv` (`INVESTOR,NAME`): the investors' display names as
//! the valuations give them, for the query. Rewritten atomically when a
//! name is new or changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::market::InvestorId;

/// The names file's name in the data folder.
pub const NAMES_FILE: &str = "investors.csv";

/// Investor names, as last seen.
pub struct Names {
    path: PathBuf,
    names: BTreeMap<InvestorId, String>,
    changed: bool,
}

impl Names {
    /// Loads the names file of the data folder `data` (rows that cannot be
    /// read are skipped with a warning).
    pub fn load(data: &Path) -> Self {
        let path = data.join(NAMES_FILE);
        let names = read_names(&path);
        Names { path, names, changed: false }
    }

    /// Records `name` for `investor`.
    pub fn observe(&mut self, investor: InvestorId, name: &str) {
        if self.names.get(&investor).map(String::as_str) != Some(name) {
            self.names.insert(investor, name.to_string());
            self.changed = true;
        }
    }

    /// Rewrites the file if a name changed.
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        let rows = std::iter::once(["INVESTOR".to_string(), "NAME".to_string()])
            .chain(self.names.iter().map(|(id, name)| [id.to_string(), name.clone()]));
        for row in rows {
            writer.write_record(&row).map_err(std::io::Error::other)?;
        }
        let bytes = writer.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
        fsutil::write_atomically(&self.path, &bytes)?;
        self.changed = false;
        Ok(())
    }
}

/// Reads an `INVESTOR,NAME` file; a missing file is empty.
pub fn read_names(path: &Path) -> BTreeMap<InvestorId, String> {
    let mut names = BTreeMap::new();
    let Ok(mut reader) = csv::Reader::from_path(path) else { return names };
    for (line, record) in reader.records().enumerate() {
        let parsed = record.ok().and_then(|r| Some((r.get(0)?.parse::<InvestorId>().ok()?, r.get(1)?.to_string())));
        match parsed {
            Some((id, name)) => {
                names.insert(id, name);
            }
            None => tracing::warn!(file = %path.display(), line = line + 2, "unreadable row skipped"),
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_names_and_rewrites_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut names = Names::load(dir.path());
        names.observe(InvestorId::new(2).unwrap(), "Investor 2");
        names.observe(InvestorId::new(10).unwrap(), "Smith, Jones & Co");
        names.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join(NAMES_FILE)).unwrap();
        assert_eq!(text, "INVESTOR,NAME\n2,Investor 2\n10,\"Smith, Jones & Co\"\n");
        let mut again = Names::load(dir.path());
        again.observe(InvestorId::new(2).unwrap(), "Investor 2");
        assert!(!again.changed);
        again.observe(InvestorId::new(2).unwrap(), "Renamed");
        again.save().unwrap();
        assert_eq!(read_names(&dir.path().join(NAMES_FILE))[&InvestorId::new(2).unwrap()], "Renamed");
    }
}
