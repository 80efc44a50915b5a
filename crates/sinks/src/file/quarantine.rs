//! `quarantine.jsonl`: one [`QuarantineRecord`] object per line.

use std::io::{self, Write};

use bankpipe_model::QuarantineRecord;

pub(super) fn write_json<W: Write>(record: &QuarantineRecord, out: &mut W) -> io::Result<()> {
    super::write_line(out, record)
}
