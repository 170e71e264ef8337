//! Settings, layered: built-in defaults, then an optional TOML file (`--config`), then
//! `ROLELEDGER_*` environment variables, then command-line flags. Clap merges the last two
//! (a flag wins over its variable); this module lays the result over the file and the defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::{DatabaseUrl, StoreError};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_WORKFLOW: &str = "workflows/egi.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(transparent)]
    Database(#[from] StoreError),
}

/// Values given by flags or environment variables (`None` where neither was given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<String>,
    pub database: Option<String>,
    pub workflow: Option<PathBuf>,
}

/// The configuration file: the same names as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    bind: Option<String>,
    database: Option<String>,
    workflow: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub database: DatabaseUrl,
    pub workflow: PathBuf,
}

impl Settings {
    pub fn load(config_file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let file = match config_file {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let database = match overrides.database.or(file.database) {
            Some(text) => text.parse()?,
            None => DatabaseUrl::default_sqlite(),
        };
        Ok(Settings {
            bind: overrides.bind.or(file.bind).unwrap_or_else(|| DEFAULT_BIND.to_string()),
            database,
            workflow: overrides.workflow.or(file.workflow).unwrap_or_else(|| PathBuf::from(DEFAULT_WORKFLOW)),
        })
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    toml::from_str(&text).map_err(|error| ConfigError::Parse {
        path: path.into(),
        message: error.to_string().replace('\n', " "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn defaults_apply_without_file_or_overrides() {
        let settings = Settings::load(None, Overrides::default()).unwrap();
        assert_eq!(settings.bind, DEFAULT_BIND);
        assert_eq!(settings.database, DatabaseUrl::default_sqlite());
        assert_eq!(settings.workflow, PathBuf::from(DEFAULT_WORKFLOW));
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() {
        let file = file_with("bind = \"0.0.0.0:9000\"\ndatabase = \"sqlite:from-file.db\"\n");
        let settings = Settings::load(Some(file.path()), Overrides::default()).unwrap();
        assert_eq!(settings.bind, "0.0.0.0:9000");
        assert_eq!(settings.database, DatabaseUrl::Sqlite("from-file.db".into()));
        let flags = Overrides { database: Some("postgres://x@y/z".into()), ..Overrides::default() };
        let settings = Settings::load(Some(file.path()), flags).unwrap();
        assert_eq!(settings.bind, "0.0.0.0:9000");
        assert_eq!(settings.database, DatabaseUrl::Postgres("postgres://x@y/z".into()));
    }

    #[test]
    fn unknown_keys_and_bad_urls_are_refused() {
        let file = file_with("bnd = \"x\"\n");
        let error = Settings::load(Some(file.path()), Overrides::default()).unwrap_err();
        assert!(error.to_string().contains("unknown field `bnd`"), "{error}");
        let flags = Overrides { database: Some("mysql://h/db".into()), ..Overrides::default() };
        assert!(matches!(Settings::load(None, flags), Err(ConfigError::Database(StoreError::UnsupportedUrl(_)))));
    }
}
