//! `bankpipe gen`: write a large, realistic recorded page set.

use anyhow::{Context, Result};
use bankpipe_gen::{write_pages, FireflyGenerator, GenConfig, TruvGenerator};

use crate::cli::{GenArgs, GenKind};

pub fn run(args: &GenArgs) -> Result<()> {
    let cfg = GenConfig {
        accounts: args.accounts,
        transactions: args.transactions,
        page_size: args.page_size,
        seed: args.seed,
        ..GenConfig::default()
    };
    let pages = match args.kind {
        GenKind::Truv => write_pages(&args.out, TruvGenerator::new(cfg)),
        GenKind::Firefly => write_pages(&args.out, FireflyGenerator::new(cfg)),
    }
    .with_context(|| format!("writing pages into {}", args.out.display()))?;
    crate::diag::say(format_args!("wrote {pages} pages ({} records) into {}", args.transactions, args.out.display()));
    Ok(())
}
