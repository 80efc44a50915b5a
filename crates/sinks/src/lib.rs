//! Sinks. For now the canonical file sink ([`file`]): the CSV/JSONL output
//! of `bankpipe replay`, the target of CI fixture replays and dry runs.
//! Trupocket and mibudge delivery arrive with the outbox (issue #6).

pub mod file;
