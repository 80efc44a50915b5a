//! What a normalizer needs to know besides the page itself.

use std::sync::Arc;

use chrono_tz::Tz;

/// Settings shared by every page of one source.
#[derive(Clone, Debug)]
pub struct NormalizeContext {
    /// Source name written on every row (`truv`, `firefly`, or a configured name).
    pub source: Arc<str>,
    /// Zone in which Truv booking dates are taken (default UTC). Firefly
    /// booking dates are the calendar date written in `date` and ignore it.
    pub timezone: Tz,
}

impl NormalizeContext {
    /// A context for `source` with booking dates in UTC.
    pub fn new(source: &str) -> NormalizeContext {
        NormalizeContext { source: Arc::from(source), timezone: Tz::UTC }
    }
}
