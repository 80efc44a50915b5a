//! `bankpipe export`: the stored dataset as the same files, with the same
//! columns, as `replay` writes (see `bankpipe_pipeline::export`).

use anyhow::Result;
use bankpipe_pipeline::export::{export, FilesSummary};
use bankpipe_store::with_store;

use crate::cli::ExportArgs;
use crate::setup;

pub fn run(args: &ExportArgs) -> Result<()> {
    let config = setup::load_config(Some(&args.config.config))?;
    let summary = setup::runtime()?.block_on(async {
        let store = setup::open_existing_store(&config).await?;
        with_store!(&store, s => export(s, &args.out, args.format.into(), FilesSummary::default(), |_| Ok(())).await)
    })?;
    crate::diag::say(format_args!(
        "exported {} transactions ({} counted, {} pending, {} superseded or duplicate), {} quarantined, {} mismatching days into {}",
        summary.transactions,
        summary.counted,
        summary.pending,
        summary.duplicates,
        summary.quarantined,
        summary.mismatching_days,
        args.out.display()
    ));
    Ok(())
}
