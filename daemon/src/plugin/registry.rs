//! The set of loaded investors, keyed by investor id, kept in step with the
//! plugin folder.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::error::PluginError;
use super::host::PluginHost;
use super::image::PluginImage;
use crate::market::InvestorId;

/// A plugin file that failed to load.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// The file.
    pub path: PathBuf,
    /// Why, naming the investor.
    pub error: String,
}

/// The loaded plugins at one moment, by investor id.
pub type PluginSet = Arc<BTreeMap<InvestorId, Arc<PluginImage>>>;

/// The extensions of plugin files: a component, then the script languages.
const PLUGIN_EXTENSIONS: [&str; 3] = ["wasm", "py", "js"];

/// The investor id of a plugin file name: `investorN.wasm`, `investorN.py`
/// or `investorN.js` → N (N ≥ 1, no leading zeros). Any other name is not
/// a plugin.
pub fn investor_id_of(path: &Path) -> Option<InvestorId> {
    let name = path.file_name()?.to_str()?;
    let (stem, extension) = name.strip_prefix("investor")?.split_once('.')?;
    PLUGIN_EXTENSIONS.contains(&extension).then(|| stem.parse().ok()).flatten()
}

/// Investor `investor`'s plugin files that exist in `dir`.
fn plugin_files(dir: &Path, investor: InvestorId) -> Vec<PathBuf> {
    PLUGIN_EXTENSIONS
        .iter()
        .map(|extension| dir.join(format!("investor{investor}.{extension}")))
        .filter(|path| path.exists())
        .collect()
}

/// Identifies one version of a file, to skip events that changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Fingerprint {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Fingerprint {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.len(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec()),
        }
    }
}

/// What refreshing one path did.
#[derive(Debug)]
pub enum Change {
    /// A new investor was loaded.
    Loaded(Arc<PluginImage>),
    /// A running investor was replaced by a new version.
    Replaced(Arc<PluginImage>),
    /// The file is gone: the investor was unloaded.
    Removed(InvestorId),
    /// The file failed to load.
    Failed {
        /// Why.
        error: PluginError,
        /// Whether an earlier version of the investor stays in place.
        kept_running: bool,
    },
    /// Nothing to do (same file as loaded, or a deleted file never loaded).
    Unchanged,
    /// Not a plugin file name.
    Ignored(PathBuf),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Loaded(image) => {
                write!(f, "loaded investor {} ({}) from {}", image.investor(), image.name(), image.path().display())
            }
            Change::Replaced(image) => {
                write!(f, "replaced investor {} ({}) from {}", image.investor(), image.name(), image.path().display())
            }
            Change::Removed(investor) => write!(f, "unloaded investor {investor}: its file is gone"),
            Change::Failed { error, kept_running: true } => write!(f, "{error}; the running version stays in place"),
            Change::Failed { error, kept_running: false } => write!(f, "{error}"),
            Change::Unchanged => write!(f, "unchanged"),
            Change::Ignored(path) => write!(
                f,
                "ignored {}: plugin files are named investorN.wasm, investorN.py or investorN.js",
                path.display()
            ),
        }
    }
}

/// The plugins of one folder. Readers take a consistent snapshot with
/// [`plugins`](Self::plugins) or follow changes with
/// [`subscribe`](Self::subscribe); a new version replaces the old one in a
/// single step, and only after it passed validation.
pub struct PluginRegistry {
    host: PluginHost,
    dir: PathBuf,
    set: watch::Sender<PluginSet>,
    /// Serialises refreshes and remembers which file version each investor
    /// runs.
    loaded: Mutex<BTreeMap<InvestorId, Fingerprint>>,
    /// The last file of each investor that failed to load, until one loads
    /// or the file goes.
    failures: Mutex<BTreeMap<InvestorId, LoadFailure>>,
}

/// The folder could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("plugin folder {}: {cause}", dir.display())]
pub struct RegistryError {
    dir: PathBuf,
    cause: std::io::Error,
}

impl PluginRegistry {
    /// Loads every plugin file of `dir`. Files that fail are reported in
    /// the returned changes (and logged); the others are loaded.
    pub fn open(host: PluginHost, dir: impl Into<PathBuf>) -> Result<(Self, Vec<Change>), RegistryError> {
        let dir = dir.into();
        let not_a_dir = |source| RegistryError { dir: dir.clone(), cause: source };
        if !std::fs::metadata(&dir).map_err(not_a_dir)?.is_dir() {
            return Err(not_a_dir(std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory")));
        }
        let registry = PluginRegistry {
            host,
            dir,
            set: watch::Sender::new(Arc::new(BTreeMap::new())),
            loaded: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(BTreeMap::new()),
        };
        let changes = registry.rescan()?;
        Ok((registry, changes))
    }

    /// The folder watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plugins loaded now.
    pub fn plugins(&self) -> PluginSet {
        self.set.borrow().clone()
    }

    /// The investors whose latest file failed to load, with the error.
    pub fn failures(&self) -> BTreeMap<InvestorId, LoadFailure> {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Follows the loaded set: the receiver sees every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<PluginSet> {
        self.set.subscribe()
    }

    /// Brings every plugin file of the folder, and every loaded investor whose
    /// file is gone, up to date. Names that are not plugin files are ignored
    /// with a warning.
    pub fn rescan(&self) -> Result<Vec<Change>, RegistryError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|source| RegistryError { dir: self.dir.clone(), cause: source })?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut changes = Vec::new();
        for path in paths {
            if path.is_dir() || path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            let change = self.refresh(&path);
            if let Change::Ignored(_) = change {
                tracing::warn!("{change}");
            }
            changes.push(change);
        }
        let loaded: Vec<InvestorId> = self.plugins().keys().copied().collect();
        for investor in loaded {
            if plugin_files(&self.dir, investor).is_empty() {
                changes.push(self.refresh(&self.dir.join(format!("investor{investor}.wasm"))));
            }
        }
        Ok(changes)
    }

    /// Loads, replaces or unloads the investor of `path` to match its
    /// plugin files: the one of `investorN.wasm`, `.py` and `.js` that
    /// exists (two are an error naming both). A file that fails to load
    /// leaves a running version in place.
    pub fn refresh(&self, path: &Path) -> Change {
        let Some(investor) = investor_id_of(path) else {
            return Change::Ignored(path.to_path_buf());
        };
        let dir = path.parent().unwrap_or(&self.dir);
        let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let running = loaded.contains_key(&investor);
        let files = plugin_files(dir, investor);
        let path = match files.as_slice() {
            [one] => one.as_path(),
            [] => path,
            _ => {
                let change = Change::Failed {
                    error: PluginError::Ambiguous { investor, paths: files.clone() },
                    kept_running: running,
                };
                return self.record(investor, &files[0], change);
            }
        };
        let change = match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if loaded.remove(&investor).is_some() {
                    self.set.send_modify(|set| {
                        Arc::make_mut(set).remove(&investor);
                    });
                    Change::Removed(investor)
                } else {
                    // A file that failed to load is gone: nothing to report.
                    self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&investor);
                    Change::Unchanged
                }
            }
            Err(source) => Change::Failed {
                error: PluginError::Io { investor, path: path.to_path_buf(), cause: source },
                kept_running: running,
            },
            Ok(metadata) => {
                let fingerprint = Fingerprint::of(&metadata);
                if loaded.get(&investor) == Some(&fingerprint) {
                    Change::Unchanged
                } else {
                    match self.host.load(investor, path) {
                        Ok(image) => {
                            let image = Arc::new(image);
                            loaded.insert(investor, fingerprint);
                            self.set.send_modify(|set| {
                                Arc::make_mut(set).insert(investor, Arc::clone(&image));
                            });
                            if running { Change::Replaced(image) } else { Change::Loaded(image) }
                        }
                        Err(error) => Change::Failed { error, kept_running: running },
                    }
                }
            }
        };
        self.record(investor, path, change)
    }

    /// Keeps the failures in step with `change` of investor `investor`'s
    /// `path`, logs it, and returns it.
    fn record(&self, investor: InvestorId, path: &Path, change: Change) -> Change {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &change {
            Change::Loaded(_) | Change::Replaced(_) | Change::Removed(_) => {
                failures.remove(&investor);
                tracing::info!("{change}");
            }
            Change::Failed { error, .. } => {
                failures.insert(investor, LoadFailure { path: path.to_path_buf(), error: error.to_string() });
                tracing::warn!("{change}");
            }
            Change::Unchanged | Change::Ignored(_) => {}
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn investor_ids_come_from_canonical_file_names() {
        let id = |name: &str| investor_id_of(Path::new(name)).map(InvestorId::get);
        assert_eq!(id("investors/investor1.wasm"), Some(1));
        assert_eq!(id("investor42.wasm"), Some(42));
        assert_eq!(id("investor7.py"), Some(7));
        assert_eq!(id("investor8.js"), Some(8));
        for bad in [
            "investor0.wasm",
            "investor01.wasm",
            "investor.wasm",
            "investor1.wasm.tmp",
            "investor1.py.swp",
            "investor1.pyc",
            "investor1.ts",
            "Investor1.wasm",
            "investor-1.wasm",
            "x.wasm",
        ] {
            assert_eq!(id(bad), None, "{bad}");
        }
    }
}
