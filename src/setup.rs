//! Loading what commands share: the configuration and the categorizer.

use std::path::{Path, PathBuf};

use anyhow::Result;
use bankpipe_config::Config;
use bankpipe_enrich::Categorizer;

/// A configuration problem: the command exits with code 2 (DESIGN §8).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigProblem(pub String);

/// Load `path` if given, else the defaults.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        None => Ok(Config::default()),
        Some(p) => Config::load(p).map_err(|e| ConfigProblem(e.to_string()).into()),
    }
}

/// Build the categorizer from the configuration. A `categories.mcc_table`
/// path is taken relative to the configuration file.
pub fn categorizer(config: &Config, config_path: Option<&Path>) -> Result<Categorizer> {
    let named = |e: &dyn std::fmt::Display| {
        let file = config_path.map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
        ConfigProblem(format!("{file}: {e}"))
    };
    let table = match &config.categories.mcc_table {
        None => None,
        Some(rel) => {
            let base = config_path.and_then(Path::parent).unwrap_or_else(|| Path::new("."));
            let path: PathBuf = base.join(rel);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| named(&format!("categories.mcc_table = {rel:?}: cannot read {}: {e}", path.display())))?;
            Some((text, path.display().to_string()))
        }
    };
    Categorizer::new(&config.rules, &config.categories, table.as_ref().map(|(t, o)| (t.as_str(), o.as_str())))
        .map_err(|e| named(&e).into())
}

/// The live sources to run: the named ones (each must exist), else all.
pub fn select_sources(
    config: &Config,
    config_path: &Path,
    names: &[String],
) -> Result<Vec<bankpipe_sources::live::LiveSource>> {
    let timezone: chrono_tz::Tz =
        config.sync.timezone.parse().map_err(|_| ConfigProblem(format!("{}: sync.timezone", config_path.display())))?;
    for name in names {
        if !config.sources.iter().any(|s| &s.name == name) {
            let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
            return Err(ConfigProblem(format!(
                "{}: no source named {name:?} (sources: {})",
                config_path.display(),
                known.join(", ")
            ))
            .into());
        }
    }
    let chosen: Vec<_> = config.sources.iter().filter(|s| names.is_empty() || names.contains(&s.name)).collect();
    if chosen.is_empty() {
        return Err(ConfigProblem(format!("{}: no [[sources]] configured", config_path.display())).into());
    }
    chosen
        .into_iter()
        .map(|s| {
            bankpipe_sources::live::LiveSource::from_config(s, timezone)
                .map_err(|e| ConfigProblem(format!("{}: {e}", config_path.display())).into())
        })
        .collect()
}

/// Open the configured store (applying migrations).
pub async fn open_store(config: &Config) -> Result<bankpipe_store::AnyStore> {
    Ok(bankpipe_store::open(&config.store.database_url, config.store.schema.as_deref()).await?)
}

/// A multi-threaded tokio runtime for the async commands.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// The booking zone, `sync.timezone` (already checked by [`select_sources`]).
pub fn timezone(config: &Config) -> Result<chrono_tz::Tz> {
    config.sync.timezone.parse().map_err(|_| ConfigProblem("sync.timezone".into()).into())
}
