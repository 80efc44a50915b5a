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
