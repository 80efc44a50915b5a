//! Any bytes as a Firefly III `/api/v1/transactions` page: the normalizer
//! must never panic, and its error and quarantine messages must format.
#![no_main]

use bankpipe_sources::NormalizeContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = NormalizeContext::new("firefly");
    match bankpipe_sources::firefly::normalize_page(&ctx, "fuzz", data) {
        Ok((page, _cursor)) => {
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
