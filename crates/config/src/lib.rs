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
//!
//! A `[[sources]]` entry with `links`/`links_file` is a template, expanded
//! on loading into one source per link ([`LinkConfig`]; README "Many
//! links").

mod links;
mod schema;
mod sinks;

use std::path::{Path, PathBuf};

pub use links::{
    valid_link_id, valid_link_name, CSV_HEADER, MAX_ACCOUNT_MAPPINGS, MAX_LINKS, MAX_LINKS_FILE_BYTES, MAX_LINK_ID,
    MAX_LINK_NAME,
};
pub use schema::*;
pub use sinks::{EnvSecret, MibudgeConfig, SinkConfig, SinkKind, TrupocketConfig};

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
    /// An entry of a links file (`links_file`) is not acceptable: `file` is
    /// the links file, `at` the place in it (`line 7` of a CSV file, `[3]`
    /// for the 0-based entry of a JSON array), `key` the column or field.
    #[error("{file}: {at}: {key} = {value:?}: {problem}")]
    Links { file: PathBuf, at: String, key: String, value: String, problem: String },
    /// A credential's environment variable cannot be read (see
    /// [`SinkConfig::resolve_secrets`]): `problem` is `not set`, `empty` or
    /// `not valid Unicode`. Names the variable, never a value.
    #[error("sink {sink:?}: environment variable {var} (named by {key}) is {problem}")]
    Secret { sink: String, key: &'static str, var: String, problem: &'static str },
}

impl Config {
    /// Read and validate a configuration file, expanding template sources
    /// (their `links_file` is taken relative to `path`'s directory).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file (or links file) and the offending
    /// key (or line/entry and field).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: path.to_owned(), source })?;
        Config::parse(&text, path)
    }

    /// Parse and validate configuration text; `file` names it in errors,
    /// and a template's `links_file` is read relative to its directory.
    /// Each template source is replaced by one source per link
    /// (`{template}.{link name}`, [`SourceConfig::template`] set) and the
    /// links' account mappings are merged into the sinks' `accounts` as
    /// `"{template}.{link name}:{source account id}"`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file (or links file) and the offending
    /// key (or line/entry and field).
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { file: file.to_owned(), message: e.to_string() })?;
        config.validate(file)?;
        config.expand_links(file)?;
        config.check_account_links(file)?;
        Ok(config)
    }

    /// Read every sink's credentials from the environment
    /// ([`SinkConfig::resolve_secrets`]): called once before a run that
    /// delivers, so a missing variable stops it before anything is fetched.
    ///
    /// # Errors
    /// [`ConfigError::Secret`] for the first sink whose variable cannot be read.
    pub fn resolve_sink_secrets(&mut self) -> Result<(), ConfigError> {
        self.sinks.iter_mut().try_for_each(SinkConfig::resolve_secrets)
    }

    fn check_account_links(&self, file: &Path) -> Result<(), ConfigError> {
        for (i, link) in self.account_links.iter().enumerate() {
            let invalid = |problem: String| ConfigError::Invalid {
                file: file.to_owned(),
                key: format!("account_links[{i}].accounts"),
                value: format!("{:?}", link.accounts),
                problem,
            };
            let Some((a, b)) = link.sides() else {
                return Err(invalid("expected two \"source:account id\" entries".into()));
            };
            for (source, _) in [&a, &b] {
                if !self.sources.iter().any(|s| &s.name == source) {
                    let hint = if self.sources.iter().any(|s| s.template.as_ref() == Some(source)) {
                        format!("; {source:?} is a template: name one of its links, \"{source}.LINK\"")
                    } else {
                        String::new()
                    };
                    return Err(invalid(format!("no [[sources]] entry is named {source:?}{hint}")));
                }
            }
        }
        Ok(())
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
        if !(3..=3600).contains(&self.sync.lease_secs) {
            return Err(invalid(
                "sync.lease_secs".into(),
                &self.sync.lease_secs.to_string(),
                "must be within 3..=3600 seconds",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            if !names.insert(s.name.as_str()) {
                return Err(invalid(format!("sources[{i}].name"), &s.name, "source names must be unique"));
            }
            check_url(&format!("sources[{i}].base_url"), &s.base_url)
                .map_err(|p| invalid(format!("sources[{i}].base_url"), &s.base_url, &p))?;
            let template = links::is_template(s);
            if template {
                self.check_template(i, s, file)?;
            }
            let required: &[(&str, &Option<String>)] = match s.kind {
                SourceKindConfig::Truv if template => {
                    &[("client_id_env", &s.client_id_env), ("secret_env", &s.secret_env)]
                }
                SourceKindConfig::Truv => {
                    &[("link_id", &s.link_id), ("client_id_env", &s.client_id_env), ("secret_env", &s.secret_env)]
                }
                SourceKindConfig::Firefly => &[("token_env", &s.token_env)],
            };
            for (key, value) in required {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err(invalid(
                        format!("sources[{i}].{key}"),
                        "",
                        &format!("required for kind = {:?}", s.kind),
                    ));
                }
            }
        }
        let url = &self.store.database_url;
        let known = ["sqlite:", "postgres:", "postgresql:"];
        if self.store.database_url_env.is_none() && !known.iter().any(|k| url.starts_with(k)) {
            // Only the scheme is shown: the rest may hold a password.
            let shown =
                url.split_once("://").map_or_else(|| url.chars().take(12).collect(), |(s, _)| format!("{s}://…"));
            return Err(invalid(
                "store.database_url".into(),
                &shown,
                "expected sqlite://PATH (the embedded default) or postgres://USER@HOST/DB",
            ));
        }
        if let Some(var) = &self.store.database_url_env {
            if var.trim().is_empty() {
                return Err(invalid("store.database_url_env".into(), var, "names no variable"));
            }
        }
        let d = &self.dedupe;
        if d.pending_days < 0 || d.cross_source_days < 0 || !(0..=100).contains(&d.tip_tolerance_percent) {
            return Err(invalid("dedupe".into(), "", "days must be >= 0 and tip_tolerance_percent within 0..=100"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sinks.iter().enumerate() {
            if !names.insert(s.name.as_str()) {
                return Err(invalid(format!("sinks[{i}].name"), &s.name, "sink names must be unique"));
            }
            if !s.is_file() {
                check_url(&format!("sinks[{i}].base_url"), &s.base_url)
                    .map_err(|p| invalid(format!("sinks[{i}].base_url"), &s.base_url, &p))?;
            }
            if matches!(s.kind, SinkKind::Trupocket(_)) && s.deliver_pending {
                return Err(invalid(
                    format!("sinks[{i}].deliver_pending"),
                    "true",
                    "Trupocket's API defines no update or delete of a transaction, so a pending row sent there \
                     could never be corrected when it posts (new id, tip, changed amount); remove the key or set it to false",
                ));
            }
        }
        Ok(())
    }

    /// A template (`links`/`links_file`): Truv, a plain name, no `link_id`
    /// or `account_ids` of its own (each link has its own).
    fn check_template(&self, i: usize, s: &SourceConfig, file: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, value: &str, problem: &str| ConfigError::Invalid {
            file: file.to_owned(),
            key: format!("sources[{i}].{key}"),
            value: value.to_owned(),
            problem: problem.to_owned(),
        };
        if s.kind != SourceKindConfig::Truv {
            return Err(invalid(
                "kind",
                &format!("{:?}", s.kind).to_lowercase(),
                "only a kind = \"truv\" entry may have links or links_file (a Truv link per user)",
            ));
        }
        if !links::valid_template_name(&s.name) {
            return Err(invalid(
                "name",
                &s.name,
                "a template's name is 1 to 64 characters of A-Z a-z 0-9 _ . - (its links are named TEMPLATE.LINK)",
            ));
        }
        if let Some(id) = &s.link_id {
            return Err(invalid(
                "link_id",
                id,
                "a template (an entry with links or links_file) has no link_id of its own: each link gives its link_id; \
                 remove the key, or the links",
            ));
        }
        if !s.account_ids.is_empty() {
            return Err(invalid(
                "account_ids",
                &s.account_ids.join(","),
                "a template's account_ids would filter every link to the same accounts; remove the key",
            ));
        }
        Ok(())
    }
}

/// An absolute http(s) URL with a host.
fn check_url(_key: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "must start with https:// (or http:// for local simulators)".to_owned())?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
