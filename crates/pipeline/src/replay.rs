//! Replay = a sync over recordings (DESIGN §8, issue #12).
//!
//! Each recorded directory is bound to a source — a configured one
//! (`--source NAME=DIR`: its name, hence its canonical ids, its rules and
//! sink plans) or, without a config, one named after its kind (`--truv DIR`
//! is the source `truv`). The pages then go through the very code a sync
//! runs: [`ingest::ingest_window`] page by page into a store (identity
//! dedupe: newest `updated_at` wins), [`ingest::dedupe`] (pending → posted,
//! cross-source), the sources' daily totals stored and reconciled, and
//! [`export`] writes the files. So a replay of recorded pages and a sync of
//! the same pages followed by `bankpipe export` give the same files, byte
//! for byte (`tests/replay_equivalence.rs` holds that). The store is an
//! empty one the caller provides (the binary: a `MemoryStore`; any store
//! with the SQL semantics gives the same files).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use bankpipe_config::{Config, SinkConfig, SourceKindConfig};
use bankpipe_enrich::Categorizer;
use bankpipe_model::{Status, Transaction};
use bankpipe_sinks::file::RowFormats;
use bankpipe_sources::live::{normalize_context, Window};
use bankpipe_sources::{NormalizeContext, SourceKind};
use bankpipe_store::{RunKind, RunLog, TransactionStore};

use crate::export::{export, FilesSummary};
use crate::ingest::{self, SourceOutcome};
use crate::recorded::RecordedFeed;
use crate::ConfigProblem;

/// What to write besides the canonical files.
#[derive(Clone, Debug, Default)]
pub struct ReplayOutput {
    /// Output directory (created; its files overwritten).
    pub out: PathBuf,
    /// Which transaction files.
    pub formats: RowFormats,
    /// Also `explain.jsonl`: per transaction, the rule, MCC row or source
    /// label that decided its category.
    pub explain: bool,
    /// Also, per configured API sink, `DIR/<sink>.jsonl`: the requests
    /// delivery would make for every deliverable row.
    pub sink_requests: Option<PathBuf>,
}

/// Bind recorded directories to sources. `named` are `NAME=DIR` pairs
/// (NAME a configured `[[sources]]` entry); `truv` and `firefly` are
/// directories of a source named after the kind (config-less use). `zone`
/// is the booking zone for Truv dates.
///
/// # Errors
/// [`ConfigProblem`] naming an unknown source, or nothing to replay.
pub fn bind(
    config: &Config,
    zone: chrono_tz::Tz,
    named: &[(String, PathBuf)],
    truv: &[PathBuf],
    firefly: &[PathBuf],
) -> Result<Vec<RecordedFeed>> {
    let mut feeds = Vec::new();
    for (name, dir) in named {
        let Some(source) = config.sources.iter().find(|s| &s.name == name) else {
            let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
            return Err(ConfigProblem(format!(
                "--source {name}={}: no source named {name:?} in the configuration (sources: {})",
                dir.display(),
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ))
            .into());
        };
        let kind = match source.kind {
            SourceKindConfig::Truv => SourceKind::Truv,
            SourceKindConfig::Firefly => SourceKind::Firefly,
        };
        feeds.push(RecordedFeed { kind, ctx: normalize_context(source, zone), dir: dir.clone() });
    }
    for (kind, dirs) in [(SourceKind::Truv, truv), (SourceKind::Firefly, firefly)] {
        for dir in dirs {
            let mut ctx = NormalizeContext::new(kind.as_str());
            ctx.timezone = zone;
            feeds.push(RecordedFeed { kind, ctx, dir: dir.clone() });
        }
    }
    if feeds.is_empty() {
        return Err(
            ConfigProblem("nothing to replay: give --source NAME=DIR, --truv DIR or --firefly DIR".into()).into()
        );
    }
    Ok(feeds)
}

/// Replay `feeds` into `store` (empty, and dropped afterwards: replay
/// records a run there like a sync) and write the files of `output`.
/// Returns the summary also written as `summary.json`.
///
/// # Errors
/// The first page error (named by file), store or file error.
pub async fn replay<S: RunLog + TransactionStore>(
    store: &S,
    config: &Config,
    categorizer: &Categorizer,
    zone: chrono_tz::Tz,
    feeds: &[RecordedFeed],
    output: &ReplayOutput,
) -> Result<FilesSummary> {
    let started = Instant::now();
    let run = store.begin_run(RunKind::Sync).await?;
    let mut outcomes: Vec<SourceOutcome> = Vec::new();
    let result: Result<(u64, u64)> = async {
        for feed in feeds {
            let o = ingest::ingest_window(store, run, categorizer, feed, Window { from: None, to: None })
                .await
                .with_context(|| format!("replaying {}", feed.dir.display()))?;
            outcomes.push(o);
        }
        let touched = outcomes.iter().flat_map(|o| o.accounts.iter().map(|a| (o.source.clone(), a.clone()))).collect();
        let counts = ingest::dedupe(store, run, config, &touched, None).await?;
        ingest::reconcile_totals(store, &mut outcomes, None).await?;
        Ok(counts)
    }
    .await;
    let (superseded, duplicates) = result.as_ref().map_or((0, 0), |&c| c);
    store.finish_run(run, &ingest::run_record(&result, &outcomes, superseded, duplicates)).await?;
    result?;

    let mut summary = FilesSummary {
        pages: outcomes.iter().map(|o| o.pages).sum(),
        records_read: outcomes.iter().map(|o| o.records).sum(),
        // A scratch store starts empty: every later sighting of an id is a re-read.
        rereads: outcomes.iter().map(|o| o.updated + o.unchanged).sum(),
        warnings: outcomes.iter().flat_map(|o| o.warnings.iter().cloned()).collect(),
        ..FilesSummary::default()
    };
    let mut explain = match output.explain {
        true => Some(ExplainFile::create(&output.out.join("explain.jsonl"))?),
        false => None,
    };
    let mut requests = match &output.sink_requests {
        Some(dir) => SinkRequestFiles::create(dir, config, zone)?,
        None => SinkRequestFiles { files: Vec::new(), zone },
    };
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    let summary = export(store, &output.out, output.formats, summary, |tx| {
        if let Some(file) = explain.as_mut() {
            // Categorizing is pure: the stored category is this decision's.
            let mut again = tx.clone();
            let decision = categorizer.categorize(&mut again);
            file.write(tx, &categorizer.explain(&again, &decision))?;
        }
        requests.write(categorizer, tx)
    })
    .await?;
    if let Some(file) = explain {
        file.finish()?;
    }
    requests.finish()?;
    Ok(summary)
}

/// `--sink-requests DIR`: per sink, `<sink>.jsonl` of the planned requests
/// (see `bankpipe_sinks::offline`) for every deliverable transaction.
struct SinkRequestFiles {
    files: Vec<(SinkConfig, PathBuf, BufWriter<std::fs::File>)>,
    zone: chrono_tz::Tz,
}

impl SinkRequestFiles {
    fn create(dir: &Path, config: &Config, zone: chrono_tz::Tz) -> Result<SinkRequestFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut files = Vec::new();
        for sink in config.sinks.iter().filter(|s| !s.is_file()) {
            let path = dir.join(format!("{}.jsonl", sink.name));
            let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            files.push((sink.clone(), path, BufWriter::new(file)));
        }
        if files.is_empty() {
            return Err(ConfigProblem("--sink-requests: the configuration has no [[sinks]]".into()).into());
        }
        Ok(SinkRequestFiles { files, zone })
    }

    fn write(&mut self, categorizer: &Categorizer, tx: &Transaction) -> Result<()> {
        for (sink, path, out) in &mut self.files {
            let deliverable = !tx.memo_only
                && tx.duplicate_of.is_none()
                && tx.superseded_by.is_none()
                && (tx.status == Status::Posted || sink.deliver_pending);
            if deliverable {
                let plan = bankpipe_sinks::offline::plan(sink, &categorizer.sink_maps, self.zone, tx);
                writeln!(out, "{}", bankpipe_sinks::offline::line(tx, &plan))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        for (_, path, mut out) in self.files {
            out.flush().with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// `explain.jsonl`: one `{id, source, source_transaction_id, category,
/// category_source, kind, explanation}` object per transaction.
struct ExplainFile {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl ExplainFile {
    fn create(path: &Path) -> Result<ExplainFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ExplainFile { path: path.to_owned(), out: BufWriter::new(file) })
    }

    fn write(&mut self, tx: &Transaction, explanation: &str) -> Result<()> {
        let line = serde_json::json!({
            "id": tx.id.to_string(),
            "source": &*tx.source,
            "source_transaction_id": tx.source_transaction_id,
            "category": tx.category.as_deref(),
            "category_source": tx.category_source.as_str(),
            "kind": tx.kind.as_str(),
            "explanation": explanation,
        });
        writeln!(self.out, "{line}").with_context(|| format!("writing {}", self.path.display()))
    }

    fn finish(mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}
