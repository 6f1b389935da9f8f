//! Reading `stockd.toml`.

use std::path::{Path, PathBuf};

use super::Config;

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("cannot read configuration file {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// It is not valid TOML, or a key is unknown or of the wrong type.
    #[error("invalid configuration file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key, line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration ({origin}): {message}")]
    Invalid {
        /// Where the configuration came from.
        origin: String,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// Reads the configuration file at `path`. A missing file is an error only
/// when `required` (the user named it); otherwise it means "all defaults".
/// Returns the configuration and the table of keys the file set.
pub fn load_file(path: &Path, required: bool) -> Result<(Config, toml::Table), ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok((Config::default(), toml::Table::new()));
        }
        Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), cause: source }),
    };
    let parse_error = |e: toml::de::Error| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() };
    let table: toml::Table = toml::from_str(&text).map_err(parse_error)?;
    let config: Config = toml::from_str(&text).map_err(parse_error)?;
    Ok((config, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stockd.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_missing_default_file_means_defaults_but_a_named_one_is_required() {
        let (config, table) = load_file(Path::new("/nonexistent/stockd.toml"), false).unwrap();
        assert_eq!(config, Config::default());
        assert!(table.is_empty());
        let error = load_file(Path::new("/nonexistent/stockd.toml"), true).unwrap_err();
        assert!(error.to_string().starts_with("cannot read configuration file /nonexistent/stockd.toml"), "{error}");
    }

    #[test]
    fn reads_keys_and_keeps_defaults_for_the_rest() {
        let (_dir, path) = write(
            "interval = \"500ms\"\n[market]\nseed = 7\n[[market.exchanges]]\nname = \"x\"\ntickers = { ZZZ = 1.5, AAA = 2.0 }\n",
        );
        let (config, table) = load_file(&path, true).unwrap();
        assert_eq!(config.interval, std::time::Duration::from_millis(500));
        assert_eq!(config.market.seed, Some(7));
        assert_eq!(config.market.exchanges[0].tickers, [("ZZZ".to_string(), 1.5), ("AAA".to_string(), 2.0)]);
        assert_eq!(config.data, PathBuf::from("data"));
        assert!(table.contains_key("interval") && !table.contains_key("data"));
    }

    #[test]
    fn errors_name_the_key_and_the_file() {
        let (_dir, path) = write("intervall = \"20s\"\n");
        let error = load_file(&path, true).unwrap_err().to_string();
        assert!(error.contains("stockd.toml") && error.contains("unknown field `intervall`"), "{error}");
        let (_dir, path) = write("[sink]\nopen-files = \"many\"\n");
        let error = load_file(&path, true).unwrap_err().to_string();
        assert!(error.contains("open-files") && error.contains("line 2"), "{error}");
        let (_dir, path) = write("interval = \"soon\"\n");
        let error = load_file(&path, true).unwrap_err().to_string();
        assert!(error.contains("interval") && error.contains("use e.g. 20s"), "{error}");
    }
}
