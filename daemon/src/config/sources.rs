//! Merging the file, the environment and the flags, and remembering where
//! each setting came from (`stockd config` prints it).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{ConfigError, load_file};
use super::{Config, Role};

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Nobody set it.
    Default,
    /// The configuration file.
    File,
    /// A `STOCKD_*` environment variable.
    Environment,
    /// A command-line flag.
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Environment => "environment",
            Source::Flag => "flag",
        })
    }
}

/// The settings that flags and environment variables can give, each with
/// where it came from.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--brokers` / `STOCKD_BROKERS`.
    pub brokers: Option<(String, Source)>,
    /// `--roles` / `STOCKD_ROLES`.
    pub roles: Option<(Vec<Role>, Source)>,
    /// `--interval` / `STOCKD_INTERVAL`.
    pub interval: Option<(Duration, Source)>,
    /// `--plugins` / `STOCKD_PLUGINS`.
    pub plugins: Option<(PathBuf, Source)>,
    /// `--data` / `STOCKD_DATA`.
    pub data: Option<(PathBuf, Source)>,
    /// `--http` / `STOCKD_HTTP`.
    pub http: Option<(SocketAddr, Source)>,
}

/// The effective configuration, and where each setting came from.
#[derive(Debug, Clone)]
pub struct Sourced {
    /// The configuration to run with.
    pub config: Config,
    /// The file read (it may not exist).
    pub file: PathBuf,
    file_keys: toml::Table,
    overridden: BTreeMap<&'static str, Source>,
}

/// Reads `file` (required only when `file_required`), applies the overrides
/// on top, and validates the result.
pub fn effective(file: &Path, file_required: bool, overrides: Overrides) -> Result<Sourced, ConfigError> {
    let (mut config, file_keys) = load_file(file, file_required)?;
    let mut overridden = BTreeMap::new();
    let mut apply = |key: &'static str, source: Source| {
        overridden.insert(key, source);
    };
    if let Some((brokers, source)) = overrides.brokers {
        config.brokers = Some(brokers);
        apply("brokers", source);
    }
    if let Some((roles, source)) = overrides.roles {
        config.roles = roles;
        apply("roles", source);
    }
    if let Some((interval, source)) = overrides.interval {
        config.interval = interval;
        apply("interval", source);
    }
    if let Some((plugins, source)) = overrides.plugins {
        config.plugins = plugins;
        apply("plugins", source);
    }
    if let Some((data, source)) = overrides.data {
        config.data = data;
        apply("data", source);
    }
    if let Some((http, source)) = overrides.http {
        config.http = Some(http);
        apply("http", source);
    }
    config.roles.sort();
    config.roles.dedup();
    let origin =
        if file_keys.is_empty() { "defaults, environment and flags".to_string() } else { file.display().to_string() };
    config.validate().map_err(|message| ConfigError::Invalid { origin, message })?;
    Ok(Sourced { config, file: file.to_path_buf(), file_keys, overridden })
}

impl Sourced {
    /// Where the setting at the dotted `key` (e.g. `market.seed`) came from.
    pub fn source(&self, key: &str) -> Source {
        if let Some(&source) = self.overridden.get(key) {
            return source;
        }
        let mut table = &self.file_keys;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            match table.get(part) {
                None => return Source::Default,
                Some(toml::Value::Table(inner)) if parts.peek().is_some() => table = inner,
                Some(_) => return Source::File,
            }
        }
        Source::File
    }

    /// Every setting as `(dotted key, value as TOML, source)`, sorted.
    pub fn settings(&self) -> Vec<(String, String, Source)> {
        let value = toml::Value::try_from(&self.config).expect("the configuration serialises");
        let mut leaves = Vec::new();
        flatten("", &value, &mut leaves);
        leaves.into_iter().map(|(key, value)| (key.clone(), value, self.source(&key))).collect()
    }
}

/// Flattens nested tables into dotted keys; arrays and scalars are leaves.
fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&path, inner, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_over_environment_over_file_over_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stockd.toml");
        std::fs::write(&path, "interval = \"1m\"\ndata = \"from-file\"\n[sink]\nopen-files = 64\n").unwrap();
        let overrides = Overrides {
            interval: Some((Duration::from_millis(500), Source::Flag)),
            data: Some((PathBuf::from("from-env"), Source::Environment)),
            ..Overrides::default()
        };
        let sourced = effective(&path, true, overrides).unwrap();
        assert_eq!(sourced.config.interval, Duration::from_millis(500));
        assert_eq!(sourced.config.data, PathBuf::from("from-env"));
        assert_eq!(sourced.config.sink.open_files, 64);
        assert_eq!(sourced.source("interval"), Source::Flag);
        assert_eq!(sourced.source("data"), Source::Environment);
        assert_eq!(sourced.source("sink.open-files"), Source::File);
        assert_eq!(sourced.source("sink.sync"), Source::Default);
        assert_eq!(sourced.source("plugins"), Source::Default);
        let settings = sourced.settings();
        assert!(settings.contains(&("interval".to_string(), "\"500ms\"".to_string(), Source::Flag)), "{settings:?}");
        assert!(settings.iter().any(|(k, _, s)| k == "market.exchanges" && *s == Source::Default));
    }

    #[test]
    fn invalid_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stockd.toml");
        std::fs::write(&path, "[topics]\npartitions = 0\n").unwrap();
        let error = effective(&path, true, Overrides::default()).unwrap_err().to_string();
        assert!(error.contains("topics.partitions: must be at least 1") && error.contains("stockd.toml"), "{error}");
    }
}
