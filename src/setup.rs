//! Loading what commands share: the configuration and the categorizer.

use std::path::{Path, PathBuf};

use anyhow::Result;
use bankpipe_config::Config;
use bankpipe_enrich::Categorizer;

pub use bankpipe_pipeline::ConfigProblem;

/// Load `path` if given, else the defaults. A relative SQLite path
/// (`sqlite://bankpipe.db`) is taken relative to the configuration file's
/// directory, never the current one: every command run with the same
/// `--config` uses the same database, wherever it is started from.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        None => Ok(Config::default()),
        Some(p) => {
            let mut config = Config::load(p).map_err(|e| ConfigProblem(e.to_string()))?;
            let url = &config.store.database_url;
            if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
                let file = Path::new(rest);
                if file.is_relative() && config.store.database_url_env.is_none() {
                    let base = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
                    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
                    config.store.database_url = format!("sqlite://{}", base.join(file).display());
                }
            }
            Ok(config)
        }
    }
}

/// Read every sink's credentials from the environment, once, before a run
/// that delivers (`SinkConfig::resolve_secrets`): a variable that is not
/// set is a [`ConfigProblem`] (exit 2) naming the file, the sink and the
/// variable, before anything is fetched or sent.
pub fn resolve_sink_secrets(config: &mut Config, path: &Path) -> Result<()> {
    config.resolve_sink_secrets().map_err(|e| ConfigProblem(format!("{}: {e}", path.display())).into())
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
        .map(|c| c.with_sources(&config.sources))
        .map_err(|e| named(&e).into())
}

/// The live sources to run: the named ones, else all. A name is a source's
/// or a template's (`--source bank` runs every link of template `bank`);
/// each must exist.
pub fn select_sources(
    config: &Config,
    config_path: &Path,
    names: &[String],
) -> Result<Vec<bankpipe_sources::live::LiveSource>> {
    let timezone: chrono_tz::Tz =
        config.sync.timezone.parse().map_err(|_| ConfigProblem(format!("{}: sync.timezone", config_path.display())))?;
    for name in names {
        if !config.sources.iter().any(|s| named_by(s, name)) {
            let mut known: Vec<&str> =
                config.sources.iter().map(|s| s.template.as_deref().unwrap_or(s.name.as_str())).collect();
            known.dedup();
            return Err(ConfigProblem(format!(
                "{}: no source named {name:?} (sources: {})",
                config_path.display(),
                known.join(", ")
            ))
            .into());
        }
    }
    let chosen: Vec<_> =
        config.sources.iter().filter(|s| names.is_empty() || names.iter().any(|n| named_by(s, n))).collect();
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

/// `name` is the source's own or its template's.
fn named_by(source: &bankpipe_config::SourceConfig, name: &str) -> bool {
    source.name == name || source.template.as_deref() == Some(name)
}

/// Open the configured store (applying migrations), creating an SQLite
/// file if it is missing.
///
/// A PostgreSQL session dropped while the schema is created or migrated
/// (a server restart, an operator's `pg_terminate_backend`) is retried
/// twice, a second apart; an unreachable server is reported at once.
pub async fn open_store(config: &Config) -> Result<bankpipe_store::AnyStore> {
    let url = config.store.url().map_err(ConfigProblem)?;
    let mut attempt = 1;
    loop {
        match bankpipe_store::open(&url, config.store.schema.as_deref()).await {
            Err(bankpipe_store::StoreError::Database { operation, cause, .. })
                if attempt < 3 && !matches!(operation, "connecting" | "parsing the URL") =>
            {
                tracing::warn!(attempt, "opening the store: {operation}: {cause}; trying again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Open the configured store for reading (read-side commands, dry runs):
/// a missing SQLite file is an error naming it, never created.
pub async fn open_existing_store(config: &Config) -> Result<bankpipe_store::AnyStore> {
    let url = config.store.url().map_err(ConfigProblem)?;
    if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        if !Path::new(rest).exists() {
            return Err(anyhow::anyhow!(
                "{rest}: no bankpipe database here; `bankpipe sync` creates it (is --config the file you sync with?)"
            ));
        }
    }
    Ok(bankpipe_store::open(&url, config.store.schema.as_deref()).await?)
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

/// The configured store if it exists, else (SQLite) an empty scratch store
/// in the temporary directory, removed by [`Scratch`]'s drop: for commands
/// that read state but must not create the database (`sync --dry-run`,
/// `check`).
pub async fn existing_or_scratch_store(config: &Config) -> Result<(bankpipe_store::AnyStore, Scratch)> {
    match open_existing_store(config).await {
        Ok(store) => Ok((store, Scratch(None))),
        Err(_) if config.store.url().is_ok_and(|u| u.starts_with("sqlite:")) => {
            let scratch = Scratch::new("scratch");
            let store = bankpipe_store::SqliteStore::open(&scratch.url()).await?;
            Ok((bankpipe_store::AnyStore::Sqlite(store), scratch))
        }
        Err(e) => Err(e),
    }
}

/// A scratch database file, removed when dropped (after the store).
pub struct Scratch(Option<PathBuf>);

impl Scratch {
    /// A fresh file name in the temporary directory
    /// (`bankpipe-<label>-<pid>.db`), not created yet: a leftover of a
    /// killed process that had the same pid is removed first.
    pub fn new(label: &str) -> Scratch {
        let scratch = Scratch(Some(std::env::temp_dir().join(format!("bankpipe-{label}-{}.db", std::process::id()))));
        scratch.remove();
        scratch
    }

    fn remove(&self) {
        if let Some(path) = &self.0 {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }

    /// `sqlite://PATH` of the file.
    pub fn url(&self) -> String {
        self.0.as_ref().map_or_else(String::new, |p| format!("sqlite://{}", p.display()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}
