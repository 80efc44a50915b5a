//! `bankpipe replay`: recorded pages in, canonical files out, no network —
//! a sync over recordings into an in-memory store, then an export (see
//! `bankpipe_pipeline::replay`); with `--expect`, a golden check.

use anyhow::Result;
use bankpipe_pipeline::export::FilesSummary;
use bankpipe_pipeline::golden;
use bankpipe_pipeline::replay::{bind, ReplayOutput};

use crate::cli::ReplayArgs;
use crate::setup;

pub fn run(args: &ReplayArgs) -> Result<()> {
    if args.sources.is_empty() && args.truv.is_empty() && args.firefly.is_empty() {
        // clap cannot express "at least one of three repeatable flags" with a
        // good message; keep usage errors on exit code 2.
        crate::diag::say(format_args!(
            "bankpipe replay: give at least one --source NAME=DIR, --truv DIR or --firefly DIR (see --help)"
        ));
        std::process::exit(2);
    }
    let summary = replay(args)?;
    for w in &summary.warnings {
        crate::diag::warn(w);
    }
    crate::diag::say(format_args!(
        "replayed {} pages: {} records -> {} transactions ({} counted, {} pending), {} quarantined, {} superseded or duplicate, {} mismatching days; wrote {}",
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
    let Some(golden_dir) = &args.expect else { return Ok(()) };
    if args.update {
        let n = golden::update(&args.out, golden_dir)?;
        crate::diag::say(format_args!("updated {n} golden file(s) in {}", golden_dir.display()));
        return Ok(());
    }
    if !golden_dir.is_dir() {
        return Err(setup::ConfigProblem(format!(
            "--expect {}: no such directory (create it with --update)",
            golden_dir.display()
        ))
        .into());
    }
    let report = golden::compare(&args.out, golden_dir)?;
    if report.is_clean() {
        crate::diag::say(format_args!("output matches the golden files in {}", golden_dir.display()));
        return Ok(());
    }
    print!("{report}");
    anyhow::bail!(
        "the output in {} differs from the golden files in {} ({} file(s), diff above; `--update` accepts the change)",
        args.out.display(),
        golden_dir.display(),
        report.files.len()
    )
}

/// Bind the directories, replay them into an in-memory store and write
/// every output file.
pub fn replay(args: &ReplayArgs) -> Result<FilesSummary> {
    let config = setup::load_config(args.config.as_deref())?;
    let categorizer = setup::categorizer(&config, args.config.as_deref())?;
    let zone = match args.tz {
        Some(tz) => tz,
        None => setup::timezone(&config)?,
    };
    let feeds = bind(&config, zone, &args.sources, &args.truv, &args.firefly)?;
    let output = ReplayOutput {
        out: args.out.clone(),
        formats: args.format.into(),
        explain: args.explain,
        sink_requests: args.sink_requests.clone(),
    };
    // A replay's state ends with the process: it lives in memory (the
    // same semantics as a database, see `bankpipe_store::MemoryStore`).
    let store = bankpipe_store::MemoryStore::new("replay");
    let summary = setup::runtime()?.block_on(bankpipe_pipeline::replay::replay(
        &store,
        &config,
        &categorizer,
        zone,
        &feeds,
        &output,
    ));
    // Every file is written and the process is about to exit: freeing the
    // rows one by one would only delay it (≈ 30 ms per 200,000 rows).
    std::mem::forget(store);
    summary
}
