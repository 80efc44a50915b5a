//! `bankpipe gen`: write a large, realistic recorded page set.

use anyhow::Result;

use crate::cli::GenArgs;

pub fn run(_args: &GenArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
