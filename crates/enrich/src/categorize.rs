//! Categorization (DESIGN §5) — the source-label step.
//!
//! This stage currently applies the source's own label: Truv `categories`
//! (`["Food & Dining", "Coffee Shops"]` → `Food & Dining/Coffee Shops`) and
//! Firefly `category_name`, else `Uncategorized` (`category_source` =
//! `source` or `default`). The MCC table and user rules take precedence once
//! they are configured (issue #5).

use bankpipe_model::{CategorySource, Transaction};

/// The canonical path for rows nothing else categorizes.
pub const UNCATEGORIZED: &str = "Uncategorized";

/// Set `category` and `category_source` from the source's labels.
pub fn categorize(tx: &mut Transaction) {
    let labels: Vec<&str> = tx.source_categories.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    if labels.is_empty() {
        tx.category = Some(UNCATEGORIZED.to_owned());
        tx.category_source = CategorySource::Default;
    } else {
        tx.category = Some(labels.join("/"));
        tx.category_source = CategorySource::Source;
    }
}
