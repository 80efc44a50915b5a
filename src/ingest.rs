//! The ingestion steps `sync` and `backfill` share: walk a source over a
//! date window, categorize and write each page to the store as it arrives,
//! then pair pending → posted and cross-source duplicates.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use bankpipe_config::Config;
use bankpipe_enrich::dedupe::{cross_source, supersede_pending, AccountRef, DedupeConfig, LinkKind};
use bankpipe_enrich::Categorizer;
use bankpipe_http::HttpClient;
use bankpipe_model::Status;
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_store::{PageCounts, RunId, Store};
use chrono::NaiveDate;
use serde::Serialize;

/// What one source window brought.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceOutcome {
    /// Source name.
    pub source: String,
    /// First date fetched (`null` = all history).
    pub from: Option<NaiveDate>,
    /// Last date fetched (`null` = up to now).
    pub to: Option<NaiveDate>,
    /// Pages fetched.
    pub pages: u64,
    /// Records read.
    pub records: u64,
    /// New transactions stored.
    pub inserted: u64,
    /// Transactions updated in place (pending → posted, edits).
    pub updated: u64,
    /// Re-reads with nothing new.
    pub unchanged: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Page warnings (drift, count mismatches).
    pub warnings: Vec<String>,
    /// Latest posted booking date per account (for watermarks).
    #[serde(skip)]
    pub latest_posted: BTreeMap<String, NaiveDate>,
    /// Accounts seen.
    #[serde(skip)]
    pub accounts: BTreeSet<String>,
}

impl SourceOutcome {
    fn add(&mut self, c: PageCounts) {
        self.inserted += c.inserted;
        self.updated += c.updated;
        self.unchanged += c.unchanged;
        self.quarantined += c.quarantined;
    }
}

/// Walk one source over `window`, writing every page (one store transaction
/// per page) before fetching the next.
///
/// # Errors
/// The first HTTP, page or store error; pages written before it stay written.
pub async fn ingest_window<S: Store>(
    store: &S,
    run: RunId,
    client: &HttpClient,
    categorizer: &Categorizer,
    source: &LiveSource,
    window: Window,
) -> Result<SourceOutcome> {
    let mut out = SourceOutcome {
        source: source.ctx.source.to_string(),
        from: window.from,
        to: window.to,
        ..SourceOutcome::default()
    };
    let stats = source
        .walk::<anyhow::Error, _>(client, window, async |fetched| {
            let mut page = fetched.page;
            for tx in &mut page.transactions {
                categorizer.categorize(tx);
                out.accounts.insert(tx.source_account_id.clone());
                if tx.status == Status::Posted {
                    let latest = out.latest_posted.entry(tx.source_account_id.clone()).or_insert(tx.booking_date);
                    *latest = (*latest).max(tx.booking_date);
                }
            }
            for a in &page.accounts {
                out.accounts.insert(a.source_account_id.clone());
            }
            let counts = store.write_page(run, &page.accounts, &page.transactions, &page.quarantine).await?;
            out.add(counts);
            out.warnings.extend(page.warnings);
            Ok(())
        })
        .await?;
    out.pages = stats.pages;
    out.records = stats.records_read;
    Ok(out)
}

/// Where a sync of `source` starts: its latest watermark minus
/// `overlap_days` (late pending → posted, edits); `None` (all history)
/// before the first sync.
///
/// # Errors
/// Store errors.
pub async fn sync_start<S: Store>(store: &S, source: &str, overlap_days: u32) -> Result<Option<NaiveDate>> {
    let marks = store.watermarks(source).await?;
    Ok(marks.iter().map(|w| w.booking_date).max().map(|d| d - chrono::Days::new(u64::from(overlap_days))))
}

/// The run record of a finished sync or backfill, and its outcome and error
/// text (`ok`, or the outcome the error stands for).
pub fn run_record<T>(
    result: &Result<T>,
    outcomes: &[SourceOutcome],
    superseded: u64,
    duplicates: u64,
) -> bankpipe_store::RunSummary {
    let (outcome, message) = match result {
        Ok(_) => ("ok".to_owned(), None),
        Err(e) => (crate::outcome_of(e).to_owned(), Some(format!("{e:#}"))),
    };
    let mut counts = PageCounts::default();
    for o in outcomes {
        counts.add(PageCounts {
            inserted: o.inserted,
            updated: o.updated,
            unchanged: o.unchanged,
            quarantined: o.quarantined,
            ..PageCounts::default()
        });
    }
    bankpipe_store::RunSummary {
        outcome,
        pages: outcomes.iter().map(|o| o.pages).sum(),
        records: outcomes.iter().map(|o| o.records).sum(),
        counts,
        superseded,
        duplicates,
        message,
    }
}

/// The dedupe settings of the config.
pub fn dedupe_config(config: &Config) -> DedupeConfig {
    let d = &config.dedupe;
    DedupeConfig {
        pending_days: d.pending_days,
        tip_tolerance_percent: d.tip_tolerance_percent,
        tip_prone_mccs: d.tip_prone_mccs.clone(),
        cross_source_days: d.cross_source_days,
    }
}

/// Pair pending → posted and cross-source duplicates among the touched
/// accounts (and the accounts linked to them), booked on or after `since`
/// (less the matching windows). Works one account group (an account and
/// the accounts linked to it) at a time, so memory holds one group's
/// candidates, not the whole history. Returns (superseded, duplicates)
/// newly marked.
///
/// # Errors
/// Store errors.
pub async fn dedupe<S: Store>(
    store: &S,
    run: RunId,
    config: &Config,
    touched: &BTreeSet<(String, String)>,
    since: Option<NaiveDate>,
) -> Result<(u64, u64)> {
    let cfg = dedupe_config(config);
    let links: Vec<_> = config.account_links.iter().filter_map(|l| l.sides()).collect();
    let since = since
        .map(|d| d - chrono::Days::new(cfg.pending_days.max(cfg.cross_source_days).unsigned_abs()))
        .unwrap_or(NaiveDate::MIN);
    let (mut superseded, mut duplicates) = (0, 0);
    for group in account_groups(touched, &links) {
        let candidates = store.dedupe_candidates(&group, since).await?;
        let mut decisions = supersede_pending(&candidates, &cfg);
        let gone: BTreeSet<&str> = decisions.iter().map(|l| l.transaction_id.as_str()).collect();
        let remaining: Vec<_> = candidates.iter().filter(|c| !gone.contains(c.id.as_str())).cloned().collect();
        decisions.extend(cross_source(&remaining, &links, &cfg));
        let (sup, dup): (Vec<_>, Vec<_>) = decisions.into_iter().partition(|l| l.kind == LinkKind::Superseded);
        superseded += store.apply_dedupe(run, &sup).await?;
        duplicates += store.apply_dedupe(run, &dup).await?;
    }
    Ok((superseded, duplicates))
}

/// Touched accounts grouped with every account linked to them (transitively).
fn account_groups(touched: &BTreeSet<AccountRef>, links: &[(AccountRef, AccountRef)]) -> Vec<Vec<AccountRef>> {
    let mut groups: Vec<BTreeSet<(String, String)>> = Vec::new();
    let mut pending: Vec<(String, String)> = touched.iter().cloned().collect();
    let mut placed: BTreeSet<(String, String)> = BTreeSet::new();
    while let Some(start) = pending.pop() {
        if placed.contains(&start) {
            continue;
        }
        let mut group = BTreeSet::new();
        let mut queue = vec![start];
        while let Some(a) = queue.pop() {
            if !group.insert(a.clone()) {
                continue;
            }
            for (x, y) in links {
                if *x == a {
                    queue.push(y.clone());
                }
                if *y == a {
                    queue.push(x.clone());
                }
            }
        }
        placed.extend(group.iter().cloned());
        groups.push(group);
    }
    groups.into_iter().map(|g| g.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str, id: &str) -> (String, String) {
        (s.to_owned(), id.to_owned())
    }

    #[test]
    fn linked_accounts_share_a_group_others_stand_alone() {
        let touched: BTreeSet<_> = [a("truv", "chk"), a("truv", "card"), a("firefly", "9")].into_iter().collect();
        let links = vec![(a("truv", "chk"), a("firefly", "1"))];
        let mut groups = account_groups(&touched, &links);
        groups.sort();
        assert_eq!(
            groups,
            vec![vec![a("firefly", "1"), a("truv", "chk")], vec![a("firefly", "9")], vec![a("truv", "card")]]
        );
    }
}
