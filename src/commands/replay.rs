//! `bankpipe replay`: recorded pages in, canonical files out, no network.
//!
//! Two streaming passes over the recorded pages keep memory flat whatever
//! the history length: pass 1 indexes every identity's winning occurrence
//! (newest `updated_at`, DESIGN §4 rule 1) and keeps the ordinals of the
//! losing re-reads; pass 2 normalizes again and writes every occurrence that
//! did not lose, accumulating daily totals on the way. Held in memory: the
//! identity index during pass 1 (~40 B per transaction), then only the
//! losers (8 B per re-read), the accounts and the daily totals.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use bankpipe_enrich::accounts::merge_account;
use bankpipe_enrich::{DailyTotalsBuilder, IdentityIndex, Walk};
use bankpipe_model::{Account, ReconcileStatus, Status};
use bankpipe_sinks::file::CanonicalFiles;
use bankpipe_sources::recorded::walk_dir;
use bankpipe_sources::{NormalizeContext, PageError, SourceKind};
use serde::Serialize;

use crate::cli::ReplayArgs;
use crate::setup;

/// `--sink-requests DIR`: per sink, `<sink>.jsonl` of the planned requests
/// (see `bankpipe_sinks::offline`) for every deliverable transaction.
struct SinkRequestFiles {
    files: Vec<(bankpipe_config::SinkConfig, PathBuf, std::io::BufWriter<std::fs::File>)>,
    zone: chrono_tz::Tz,
}

impl SinkRequestFiles {
    fn create(
        dir: &std::path::Path,
        config: &bankpipe_config::Config,
        zone: chrono_tz::Tz,
    ) -> Result<SinkRequestFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut files = Vec::new();
        for sink in config.sinks.iter().filter(|s| s.kind != bankpipe_config::SinkKindConfig::File) {
            let path = dir.join(format!("{}.jsonl", sink.name));
            let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            files.push((sink.clone(), path, std::io::BufWriter::new(file)));
        }
        if files.is_empty() {
            return Err(setup::ConfigProblem("--sink-requests: the configuration has no [[sinks]]".into()).into());
        }
        Ok(SinkRequestFiles { files, zone })
    }

    fn write(&mut self, categorizer: &bankpipe_enrich::Categorizer, tx: &bankpipe_model::Transaction) -> Result<()> {
        use std::io::Write;
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
        use std::io::Write;
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
    out: std::io::BufWriter<std::fs::File>,
}

impl ExplainFile {
    fn create(path: &std::path::Path) -> Result<ExplainFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ExplainFile { path: path.to_owned(), out: std::io::BufWriter::new(file) })
    }

    fn write(&mut self, tx: &bankpipe_model::Transaction, explanation: &str) -> Result<()> {
        use std::io::Write;
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
        use std::io::Write;
        self.out.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

/// `summary.json`: counts of one replay.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Page files read (per pass).
    pub pages: u64,
    /// Input transaction records read (Truv transactions, Firefly splits).
    pub records_read: u64,
    /// Canonical transactions written.
    pub transactions: u64,
    /// Of those, rows counted in daily totals.
    pub counted: u64,
    /// Of those, pending rows.
    pub pending: u64,
    /// MEMO rows (stored, never money).
    pub memo: u64,
    /// Records and reported totals rejected to quarantine.
    pub quarantined: u64,
    /// Re-reads of an identity dropped (newest `updated_at` kept).
    pub duplicates: u64,
    /// Daily totals rows whose source figure disagrees.
    pub mismatching_days: u64,
    /// Daily totals rows reconciled and matching.
    pub matching_days: u64,
    /// Page-level warnings (also printed on stderr).
    pub warnings: Vec<String>,
    /// Wall time of the replay in seconds.
    pub elapsed_seconds: f64,
}

struct Input {
    kind: SourceKind,
    dir: PathBuf,
    ctx: NormalizeContext,
}

pub fn run(args: &ReplayArgs) -> Result<()> {
    if args.truv.is_empty() && args.firefly.is_empty() {
        // clap cannot express "at least one of two repeatable flags" with a
        // good message; keep usage errors on exit code 2.
        crate::diag::say(format_args!("bankpipe replay: give at least one --truv DIR or --firefly DIR (see --help)"));
        std::process::exit(2);
    }
    let summary = replay(args)?;
    for w in &summary.warnings {
        crate::diag::warn(w);
    }
    crate::diag::say(format_args!(
        "replayed {} pages: {} records -> {} transactions ({} counted, {} pending), {} quarantined, {} duplicates, {} mismatching days; wrote {}",
        summary.pages,
        summary.records_read,
        summary.transactions,
        summary.counted,
        summary.pending,
        summary.quarantined,
        summary.duplicates,
        summary.mismatching_days,
        args.out.display()
    ));
    Ok(())
}

/// Run the replay and write every output file; returns the summary.
pub fn replay(args: &ReplayArgs) -> Result<Summary> {
    let started = Instant::now();
    let config = setup::load_config(args.config.as_deref())?;
    let categorizer = setup::categorizer(&config, args.config.as_deref())?;
    let timezone = match args.tz {
        Some(tz) => tz,
        // Validated when the config was loaded.
        None => config.sync.timezone.parse().map_err(|_| setup::ConfigProblem("sync.timezone".into()))?,
    };
    let mut explain = match args.explain {
        true => Some(ExplainFile::create(&args.out.join("explain.jsonl"))?),
        false => None,
    };
    let mut sink_requests = match &args.sink_requests {
        Some(dir) => SinkRequestFiles::create(dir, &config, timezone)?,
        None => SinkRequestFiles { files: Vec::new(), zone: timezone },
    };
    let mut inputs = Vec::new();
    for (kind, dirs) in [(SourceKind::Truv, &args.truv), (SourceKind::Firefly, &args.firefly)] {
        for dir in dirs {
            let mut ctx = NormalizeContext::new(kind.as_str());
            ctx.timezone = timezone;
            inputs.push(Input { kind, dir: dir.clone(), ctx });
        }
    }

    // Pass 1: the winning occurrence of every identity.
    let mut index = IdentityIndex::new();
    let mut ordinal = 0u64;
    for input in &inputs {
        walk_dir(input.kind, &input.ctx, &input.dir, |_, page| {
            for tx in &page.transactions {
                index.observe_transaction(tx, ordinal);
                ordinal += 1;
            }
            Ok::<(), PageError>(())
        })
        .with_context(|| format!("replaying {}", input.dir.display()))?;
    }

    // Pass 2: write the winners, accumulate totals, accounts and quarantine.
    let mut losers = index.into_losers();
    let duplicates = losers.len();
    let mut files = CanonicalFiles::create(&args.out)?;
    let mut summary = Summary { duplicates, ..Summary::default() };
    let mut totals = DailyTotalsBuilder::new();
    let mut accounts: BTreeMap<(Arc<str>, String), Account> = BTreeMap::new();
    let mut walks = Vec::new();
    let mut ordinal = 0u64;
    for input in &inputs {
        let mut walk = Walk { source: input.ctx.source.clone(), ..Walk::default() };
        let stats = walk_dir(input.kind, &input.ctx, &input.dir, |_, page| {
            summary.warnings.extend(page.warnings);
            for q in &page.quarantine {
                files.write_quarantine(q)?;
            }
            summary.quarantined += page.quarantine.len() as u64;
            for a in page.accounts {
                walk.accounts.entry(a.source_account_id.clone()).or_default().extend(a.currency);
                match accounts.get_mut(&(a.source.clone(), a.source_account_id.clone())) {
                    Some(held) => merge_account(held, a),
                    None => {
                        accounts.insert((a.source.clone(), a.source_account_id.clone()), a);
                    }
                }
            }
            walk.reported.extend(page.reported_totals);
            let mut winners = Vec::with_capacity(page.transactions.len());
            for mut tx in page.transactions {
                let this = ordinal;
                ordinal += 1;
                let currency = tx.amount.currency();
                match walk.accounts.get_mut(tx.source_account_id.as_str()) {
                    Some(set) => {
                        set.insert(currency);
                    }
                    None => {
                        walk.accounts.entry(tx.source_account_id.clone()).or_default().insert(currency);
                    }
                }
                losers.note(this, &tx);
                if losers.contains(this) {
                    continue;
                }
                let decision = categorizer.categorize(&mut tx);
                if let Some(file) = explain.as_mut() {
                    file.write(&tx, &categorizer.explain(&tx, &decision))?;
                }
                sink_requests.write(&categorizer, &tx)?;
                totals.add(&tx);
                summary.transactions += 1;
                summary.counted += u64::from(tx.counts());
                summary.pending += u64::from(tx.status == Status::Pending);
                summary.memo += u64::from(tx.memo_only);
                winners.push(tx);
            }
            files.write_batch(winners)?;
            Ok::<(), anyhow::Error>(())
        })
        .with_context(|| format!("replaying {}", input.dir.display()))?;
        // Accounts seen only on transactions (not in an account list) still get a row.
        for (id, currencies) in &walk.accounts {
            let key = (walk.source.clone(), id.clone());
            accounts.entry(key).or_insert_with(|| {
                let mut bare = Account::bare(walk.source.clone(), id.clone());
                bare.currency = (currencies.len() == 1).then(|| *currencies.iter().next().expect("one"));
                bare
            });
        }
        summary.pages += stats.pages;
        summary.records_read += stats.records_read;
        walks.push(walk);
    }

    // Two copies of one identity with the same updated_at but different
    // content: the later is kept, and the pair is reported, never silently.
    summary.warnings.extend(losers.conflict_warnings());
    let (daily, rejected) = totals.finish(&walks);
    for q in &rejected {
        files.write_quarantine(q)?;
    }
    summary.quarantined += rejected.len() as u64;
    for d in &daily {
        match d.status() {
            ReconcileStatus::Mismatch => summary.mismatching_days += 1,
            ReconcileStatus::Match => summary.matching_days += 1,
            ReconcileStatus::Computed => {}
        }
    }
    let accounts: Vec<Account> = accounts.into_values().collect();
    files.finish(&accounts, &daily)?;
    if let Some(file) = explain {
        file.finish()?;
    }
    sink_requests.finish()?;
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    let path = args.out.join("summary.json");
    let json = serde_json::to_string_pretty(&summary)?;
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(summary)
}
