//! One module per subcommand.

pub mod gen;
pub mod record;
pub mod replay;
