//! The bankpipe configuration file (TOML, DESIGN §10), parsed strictly:
//! unknown keys are errors (a typo must not silently disable a rule), and
//! every error names the file, the key and the value.
//!
//! Secrets never appear in the file: credentials are given by the *name* of
//! an environment variable (`token_env = "TRUPOCKET_PAT"`).
//!
//! Sections: [`StoreConfig`] `[store]`, [`SyncConfig`] `[sync]`,
//! [`SourceConfig`] `[[sources]]`, [`SinkConfig`] `[[sinks]]`,
//! [`RuleConfig`] `[[rules]]`, [`CategoriesConfig`] `[categories]`.

mod schema;

use std::path::{Path, PathBuf};

pub use schema::*;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    /// Not valid TOML, or a key/value does not fit the schema. The message
    /// from the TOML parser names the key and shows the line.
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    /// A value is well-formed but not acceptable.
    #[error("{file}: {key} = {value:?}: {problem}")]
    Invalid { file: PathBuf, key: String, value: String, problem: String },
}

impl Config {
    /// Read and validate a configuration file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the offending key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: path.to_owned(), source })?;
        Config::parse(&text, path)
    }

    /// Parse and validate configuration text; `file` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the offending key.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { file: file.to_owned(), message: e.to_string() })?;
        config.validate(file)?;
        Ok(config)
    }

    fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let invalid = |key: String, value: &str, problem: &str| ConfigError::Invalid {
            file: file.to_owned(),
            key,
            value: value.to_owned(),
            problem: problem.to_owned(),
        };
        if self.sync.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid("sync.timezone".into(), &self.sync.timezone, "not an IANA time zone name"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            if !names.insert(s.name.as_str()) {
                return Err(invalid(format!("sources[{i}].name"), &s.name, "source names must be unique"));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sinks.iter().enumerate() {
            if !names.insert(s.name.as_str()) {
                return Err(invalid(format!("sinks[{i}].name"), &s.name, "sink names must be unique"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
