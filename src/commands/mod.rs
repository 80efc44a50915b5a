//! One module per subcommand.

pub mod backfill;
pub mod check;
pub mod deliveries;
pub mod demo;
pub mod explain;
pub mod export;
pub mod gen;
pub mod record;
pub mod replay;
pub mod status;
pub mod sync;
pub mod totals;
