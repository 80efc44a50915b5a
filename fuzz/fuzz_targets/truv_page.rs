//! Any bytes as a Truv transactions page: the normalizer must never panic,
//! and every transaction record it reads ends up either as a transaction or
//! in quarantine, exactly once.
#![no_main]

use std::collections::BTreeSet;

use bankpipe_sources::NormalizeContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut ctx = NormalizeContext::new("truv");
    // Booking dates in a zone with DST for half of the inputs.
    if data.len() % 2 == 1 {
        ctx.timezone = chrono_tz::America::New_York;
    }
    match bankpipe_sources::truv::normalize_page(&ctx, "fuzz", data) {
        Ok((page, _cursor)) => {
            let quarantined: BTreeSet<&str> = page
                .quarantine
                .iter()
                .filter(|q| q.pointer.starts_with("/transactions/"))
                .map(|q| q.pointer.as_str())
                .collect();
            assert_eq!(
                page.transactions.len() as u64 + quarantined.len() as u64,
                page.records_read,
                "every transaction record is either normalized or quarantined"
            );
            // Messages are built from hostile text: formatting must not panic.
            for q in &page.quarantine {
                let _ = format!("{q:?}");
            }
            let _ = page.warnings.join("\n");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
