//! One module per subcommand.

pub mod gen;
pub mod replay;
