//! The ingestion steps `sync` and `backfill` share: walk a source over a
//! date window, categorize and write each page to the store as it arrives,
//! then pair pending → posted and cross-source duplicates.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use bankpipe_config::Config;
use bankpipe_enrich::dedupe::{cross_source, supersede_pending, AccountRef, DedupeConfig, LinkKind};
use bankpipe_enrich::identity::PageConflicts;
use bankpipe_enrich::{resolve_targets, Categorizer, Walk};
use bankpipe_http::HttpClient;
use bankpipe_model::{Account, QuarantineRecord, Status, Transaction};
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_sources::{NormalizedPage, SourceKind};
use bankpipe_store::{PageCounts, PageWrite, RunId, RunLog, TransactionStore};
use chrono::NaiveDate;
use serde::Serialize;

use crate::windows::{catch_up, plan_walks, PlannedWalk, SourceState};

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
    /// Walks made (several: per-account windows, a new account's history,
    /// a pass repeated after a shortfall).
    pub walks: u32,
    /// Why the source failed, when it did (the other sources proceeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Latest posted booking date per account (for watermarks).
    #[serde(skip)]
    pub latest_posted: BTreeMap<String, NaiveDate>,
    /// Latest booking date of any row per account.
    #[serde(skip)]
    pub latest_seen: BTreeMap<String, NaiveDate>,
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

    /// Fold another walk of the same source into this outcome: counts and
    /// walks add up, warnings and accounts accumulate, `from` widens, the
    /// latest dates per account are the later of both.
    pub fn merge(&mut self, o: SourceOutcome) {
        self.from = match (self.from, o.from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        self.pages += o.pages;
        self.records += o.records;
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.quarantined += o.quarantined;
        self.walks += o.walks;
        self.warnings.extend(o.warnings);
        for (map, other) in [(&mut self.latest_posted, o.latest_posted), (&mut self.latest_seen, o.latest_seen)] {
            for (a, d) in other {
                let e = map.entry(a).or_insert(d);
                *e = (*e).max(d);
            }
        }
        self.accounts.extend(o.accounts);
    }
}

/// Keep in `map` the later of its date for `account` and `date`.
fn latest(map: &mut BTreeMap<String, NaiveDate>, account: &str, date: NaiveDate) {
    match map.get_mut(account) {
        Some(held) => *held = (*held).max(date),
        None => {
            map.insert(account.to_owned(), date);
        }
    }
}

/// What a walk read: pages, records, and walks made (a live walk repeats a
/// pass that came up short).
#[derive(Clone, Copy, Debug, Default)]
pub struct Walked {
    /// Pages read.
    pub pages: u64,
    /// Input transaction records read.
    pub records: u64,
    /// Passes made.
    pub walks: u32,
}

/// The seam between the pipeline and where pages come from: the live API
/// over HTTP ([`LiveFeed`]) or a recorded directory
/// ([`crate::recorded::RecordedFeed`]). Either way the pipeline sees the
/// same normalized pages of one configured source, in order.
pub trait PageSource {
    /// The configured source name (the namespace of canonical ids).
    fn name(&self) -> &Arc<str>;

    /// Hand every normalized page of `window` to `on_page`, in order.
    ///
    /// # Errors
    /// The first fetch or page error, or the first error of `on_page`.
    fn walk<F>(&self, window: Window, on_page: F) -> impl std::future::Future<Output = Result<Walked>>
    where
        F: AsyncFnMut(NormalizedPage) -> Result<()>;
}

/// A configured source's live API.
pub struct LiveFeed<'a> {
    /// The source.
    pub source: &'a LiveSource,
    /// The HTTP client (rate gates, retries, body limits).
    pub client: &'a HttpClient,
}

impl PageSource for LiveFeed<'_> {
    fn name(&self) -> &Arc<str> {
        &self.source.ctx.source
    }

    async fn walk<F>(&self, window: Window, mut on_page: F) -> Result<Walked>
    where
        F: AsyncFnMut(NormalizedPage) -> Result<()>,
    {
        let stats = self
            .source
            .walk::<anyhow::Error, _>(self.client, window, async |fetched| on_page(fetched.page).await)
            .await?;
        Ok(Walked { pages: stats.pages, records: stats.records_read, walks: stats.walks })
    }
}

/// Pages fetched, normalized and prepared ahead of the ones being written.
const PAGES_AHEAD: usize = 8;

/// Pages written in one store transaction, at most: those waiting when the
/// writer is free (none wait while the store keeps up).
const WRITE_BATCH_PAGES: usize = 8;

/// What one walk keeps from page to page while preparing its pages for
/// the store: the outcome so far, the previous page for conflict checks,
/// the walk's accounts and reported totals, and the account copies already
/// sent to the writer.
struct PageIntake<'c> {
    categorizer: &'c Categorizer,
    out: SourceOutcome,
    /// Same id and updated_at, different content, on one page or the next
    /// (where re-reads land): the later copy is stored (as the store does),
    /// and the pair is reported, never silently.
    conflicts: PageConflicts,
    /// The walk's accounts and currencies, and the totals it reported: what
    /// the source's daily totals are resolved against (DESIGN §3).
    walk: Walk,
    /// Accounts on some page's account list.
    listed: BTreeSet<String>,
    /// The last copy of each account sent to the store.
    written: HashMap<String, Account>,
}

/// A page ready for the store.
struct PreparedPage {
    /// New or changed account copies only.
    accounts: Vec<Account>,
    /// Categorized; shared with the conflict check of the next page.
    transactions: Arc<Vec<Transaction>>,
    quarantine: Vec<QuarantineRecord>,
}

impl PageIntake<'_> {
    /// Categorize `page`'s rows, note its accounts, dates, warnings and
    /// reported totals, check it against the page before (warnings), and
    /// keep only the account copies that changed.
    fn prepare(&mut self, mut page: NormalizedPage) -> PreparedPage {
        let out = &mut self.out;
        for tx in &mut page.transactions {
            self.categorizer.categorize(tx);
            // A page has few accounts and many rows: an account's id is
            // copied only the first time it is seen.
            let account = &tx.source_account_id;
            if !out.accounts.contains(account) {
                out.accounts.insert(account.clone());
            }
            latest(&mut out.latest_seen, account, tx.booking_date);
            if tx.status == Status::Posted {
                latest(&mut out.latest_posted, account, tx.booking_date);
            }
        }
        // Both copies are categorized by then: alike for alike content.
        out.warnings.extend(self.conflicts.check(&page.transactions));
        for a in &page.accounts {
            out.accounts.insert(a.source_account_id.clone());
            self.walk.accounts.entry(a.source_account_id.clone()).or_default().extend(a.currency);
            self.listed.insert(a.source_account_id.clone());
        }
        for tx in &page.transactions {
            match self.walk.accounts.get_mut(&tx.source_account_id) {
                Some(currencies) => {
                    currencies.insert(tx.amount.currency());
                }
                None => {
                    self.walk.accounts.insert(tx.source_account_id.clone(), [tx.amount.currency()].into());
                }
            }
        }
        self.walk.reported.append(&mut page.reported_totals);
        // A Truv page lists every account of the link: a copy this walk
        // already wrote, unchanged, would merge into its own row as a
        // no-op, so only new or changed copies go to the store (in page
        // order, each compared with the copy before it).
        let mut accounts: Vec<Account> = Vec::new();
        for a in &page.accounts {
            if self.written.get(&a.source_account_id) != Some(a) {
                self.written.insert(a.source_account_id.clone(), a.clone());
                accounts.push(a.clone());
            }
        }
        out.warnings.extend(page.warnings);
        // The next page is checked against this one.
        let transactions = Arc::new(page.transactions);
        self.conflicts.advance(Arc::clone(&transactions));
        PreparedPage { accounts, transactions, quarantine: page.quarantine }
    }
}

/// Walk one source over `window`, writing every page in page order while
/// the next ones are fetched (at most [`PAGES_AHEAD`] waiting); the pages
/// waiting when the writer is free are written together, in one store
/// transaction (at most [`WRITE_BATCH_PAGES`]).
///
/// # Errors
/// The first store error, else the first HTTP or page error; pages written
/// before it stay written (on a fetch error, every page read before it).
pub async fn ingest_window<S: TransactionStore>(
    store: &S,
    run: RunId,
    categorizer: &Categorizer,
    source: &impl PageSource,
    window: Window,
) -> Result<SourceOutcome> {
    let mut pages_in = PageIntake {
        categorizer,
        out: SourceOutcome {
            source: source.name().to_string(),
            from: window.from,
            to: window.to,
            ..SourceOutcome::default()
        },
        conflicts: PageConflicts::new(),
        walk: Walk { source: source.name().clone(), ..Walk::default() },
        listed: BTreeSet::new(),
        written: HashMap::new(),
    };
    // The next pages are fetched, normalized and prepared (categorized,
    // checked for conflicts) while the waiting ones are written: the walk
    // prepares each page and hands it to a bounded channel (at most
    // PAGES_AHEAD waiting, so memory stays bounded), and the writer takes
    // them in order. The two run as one task, so a page is prepared while
    // the writer waits for the database, not between its statements.
    // A page is written whole or not at all (in one store transaction with
    // the pages waiting beside it), and the caller moves watermarks only
    // after this returns, every page written. When writing fails the
    // channel closes and the walk stops.
    let (sender, receiver) = tokio::sync::mpsc::channel::<PreparedPage>(PAGES_AHEAD);
    let fetch = async {
        let (sender, intake) = (sender, &mut pages_in);
        source
            .walk(window, async |page| {
                let prepared = intake.prepare(page);
                sender.send(prepared).await.map_err(|_| anyhow::anyhow!("the page writer stopped"))
            })
            .await
    };
    let write = async {
        let mut receiver = receiver;
        let mut counts = PageCounts::default();
        while let Some(first) = receiver.recv().await {
            // The pages already waiting join this one: one store
            // transaction (one commit) for all of them.
            let mut prepared = vec![first];
            while prepared.len() < WRITE_BATCH_PAGES {
                match receiver.try_recv() {
                    Ok(page) => prepared.push(page),
                    Err(_) => break,
                }
            }
            let writes: Vec<PageWrite<'_>> = prepared
                .iter()
                .map(|p| PageWrite { accounts: &p.accounts, transactions: &p.transactions, quarantine: &p.quarantine })
                .collect();
            counts.add(store.write_pages(run, &writes).await?);
        }
        anyhow::Ok(counts)
    };
    let (fetched, written) = tokio::join!(fetch, write);
    // A write error first: it is why the walk stopped, if it did.
    let counts = written?;
    let stats = fetched?;
    pages_in.out.add(counts);
    let PageIntake { mut out, walk, listed, .. } = pages_in;
    // Accounts seen only on transactions (in no account list) still get a
    // row: bare, with their currency when it is a single one. The store
    // merges it with any fuller row (its empty fields never overwrite).
    let bare: Vec<Account> = walk
        .accounts
        .iter()
        .filter(|(id, _)| !listed.contains(*id))
        .map(|(id, currencies)| {
            let mut a = Account::bare(walk.source.clone(), id.clone());
            a.currency = (currencies.len() == 1).then(|| currencies.iter().next().copied()).flatten();
            a
        })
        .collect();
    if !bare.is_empty() {
        store.write_page(run, &bare, &[], &[]).await?;
    }
    let (targets, rejected) = resolve_targets(std::slice::from_ref(&walk));
    store.save_source_totals(run, &targets).await?;
    if !rejected.is_empty() {
        out.add(store.write_page(run, &[], &[], &rejected).await?);
    }
    out.pages = stats.pages;
    out.records = stats.records;
    out.walks = stats.walks;
    Ok(out)
}

/// What the store knows of `source`: watermarks, and per account its
/// oldest row still pending within `sync.pending_lookback_days` before the
/// account's watermark (today for an account without one).
///
/// # Errors
/// Store errors.
pub async fn source_state<S: RunLog + TransactionStore>(
    store: &S,
    config: &Config,
    source: &str,
    today: NaiveDate,
) -> Result<SourceState> {
    let lookback = chrono::Days::new(u64::from(config.sync.pending_lookback_days));
    let watermarks: BTreeMap<String, NaiveDate> =
        store.watermarks(source).await?.into_iter().map(|w| (w.source_account_id, w.booking_date)).collect();
    let threshold = |account: &str| watermarks.get(account).copied().unwrap_or(today).min(today) - lookback;
    let since = watermarks.values().copied().chain([today]).min().unwrap_or(today) - lookback;
    let mut oldest_pending = BTreeMap::new();
    for (account, date) in store.oldest_pending(source, since).await? {
        if date >= threshold(&account) {
            oldest_pending.entry(account).or_insert(date); // rows come oldest first
        }
    }
    Ok(SourceState { watermarks, oldest_pending })
}

/// The walks a sync of `source` makes now (see [`crate::windows`]); `full`
/// forces a whole-history walk, as does a due `full_sweep_days`.
///
/// # Errors
/// Store errors.
pub async fn plan_source<S: RunLog + TransactionStore>(
    store: &S,
    config: &Config,
    source: &LiveSource,
    full: bool,
    today: NaiveDate,
) -> Result<(SourceState, Vec<PlannedWalk>)> {
    let name = source.ctx.source.to_string();
    let state = source_state(store, config, &name, today).await?;
    let sweep_days = config.sources.iter().find(|s| s.name == name).map_or(0, |s| s.full_sweep_days());
    let due = sweep_days > 0
        && !state.watermarks.is_empty()
        && match store.last_full_sweep(&name).await? {
            None => true,
            Some(at) => chrono::DateTime::parse_from_rfc3339(&at)
                .map_or(true, |t| (chrono::Utc::now() - t.to_utc()).num_days() >= i64::from(sweep_days)),
        };
    if due && !full {
        tracing::info!(source = %name, "full sweep due (full_sweep_days = {sweep_days}): walking the whole history");
    }
    let walks = plan_walks(&state, config.sync.overlap_days, today, source.kind == SourceKind::Truv, full || due);
    Ok((state, walks))
}

/// One source's part of a sync: plan its walks, fetch and store them page
/// by page, give accounts first seen their whole history, then — only when
/// every walk succeeded — move its watermarks forward (never backwards):
/// per account, to its latest posted booking date (else its latest row,
/// else today), never past today.
///
/// # Errors
/// The first HTTP, page, completeness or store error; pages written before
/// it stay written, the watermarks stay where they were.
pub async fn sync_source<S: RunLog + TransactionStore>(
    store: &S,
    run: RunId,
    client: &HttpClient,
    categorizer: &Categorizer,
    config: &Config,
    source: &LiveSource,
    full: bool,
) -> Result<SourceOutcome> {
    let today = chrono::Utc::now().date_naive();
    let name = source.ctx.source.to_string();
    let (state, walks) = plan_source(store, config, source, full, today).await?;
    let per_account = source.kind == SourceKind::Truv;
    let mut known = state.known();
    known.extend(store.accounts().await?.into_iter().filter(|a| *a.source == *name).map(|a| a.source_account_id));
    let whole_history = walks.iter().any(|w| w.from.is_none() && w.accounts.is_none());
    let mut outcome =
        SourceOutcome { source: name.clone(), from: walks.first().and_then(|w| w.from), ..SourceOutcome::default() };
    // Configured accounts never fetched yet get their history at once.
    let mut plan = walks;
    if per_account && !whole_history {
        let configured: BTreeSet<String> = source.account_ids.iter().cloned().collect();
        plan.extend(catch_up(&known, &configured, true));
    }
    let mut caught_up = false;
    let mut i = 0;
    while i < plan.len() {
        let walk = plan[i].clone();
        i += 1;
        let live = match &walk.accounts {
            Some(ids) => LiveSource { account_ids: ids.clone(), ..source.clone() },
            None => source.clone(),
        };
        let feed = LiveFeed { source: &live, client };
        let o = ingest_window(store, run, categorizer, &feed, Window { from: walk.from, to: None }).await?;
        outcome.merge(o);
        if i == plan.len() && !caught_up && !whole_history {
            caught_up = true;
            if let Some(extra) = catch_up(&known, &outcome.accounts, per_account) {
                tracing::info!(source = %name, accounts = ?extra.accounts, "accounts seen for the first time: fetching their whole history");
                known.extend(outcome.accounts.iter().cloned());
                plan.push(extra);
            }
        }
    }
    if plan.iter().any(|w| w.from.is_none() && w.accounts.is_none()) {
        outcome.from = None;
        store.record_full_sweep(run, &name).await?;
    }
    let dates: Vec<(String, NaiveDate)> = outcome
        .accounts
        .iter()
        .map(|a| {
            let d = outcome.latest_posted.get(a).or_else(|| outcome.latest_seen.get(a)).copied().unwrap_or(today);
            (a.clone(), d.min(today))
        })
        .collect();
    store.advance_watermarks(run, &name, &dates).await?;
    Ok(outcome)
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
        Err(e) => (crate::Outcome::of(e).as_str().to_owned(), Some(format!("{e:#}"))),
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

/// Reconcile the stored source daily totals on or after `since` (all when
/// `None`) against the rows now stored, after dedupe (DESIGN §3): every
/// mismatch becomes a warning of its source's outcome.
///
/// # Errors
/// Store errors.
pub async fn reconcile_totals<S: TransactionStore>(
    store: &S,
    outcomes: &mut [SourceOutcome],
    since: Option<NaiveDate>,
) -> Result<()> {
    for m in store.reconcile_source_totals(since).await? {
        let line = format!("daily total mismatch: {m}");
        match outcomes.iter_mut().find(|o| *o.source == *m.target.source) {
            Some(o) => o.warnings.push(line),
            None => tracing::warn!("{line}"),
        }
    }
    Ok(())
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
/// candidates, not the whole history; a group with no pending row and no
/// link is not read (no decision is possible). Returns (superseded,
/// duplicates) newly marked.
///
/// # Errors
/// Store errors.
pub async fn dedupe<S: RunLog + TransactionStore>(
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
    // Pending → posted needs a pending row (not MEMO, not yet decided) and
    // cross-source pairing needs a link: an account with neither cannot
    // gain a decision, and its rows are not read at all.
    let mut pending: BTreeSet<(String, String)> = BTreeSet::new();
    for source in touched.iter().map(|(s, _)| s).collect::<BTreeSet<_>>() {
        for (account, _) in store.oldest_pending(source, since).await? {
            pending.insert((source.clone(), account));
        }
    }
    let linked = |a: &AccountRef| links.iter().any(|(x, y)| x == a || y == a);
    let (mut superseded, mut duplicates) = (0, 0);
    for group in account_groups(touched, &links) {
        if !group.iter().any(|a| pending.contains(a) || linked(a)) {
            continue;
        }
        let mut candidates = store.dedupe_candidates(&group, since).await?;
        let mut decisions = supersede_pending(&candidates, &cfg);
        // Superseded rows take no further part: cross-source pairs the rest.
        let gone: HashSet<&str> = decisions.iter().map(|l| l.transaction_id.as_str()).collect();
        candidates.retain(|c| !gone.contains(c.id.as_str()));
        drop(gone);
        decisions.extend(cross_source(&candidates, &links, &cfg));
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
