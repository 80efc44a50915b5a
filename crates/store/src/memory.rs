//! [`MemoryStore`]: the run log and the canonical dataset held in memory,
//! for jobs whose state does not outlive the process — `bankpipe replay`
//! (DESIGN §8: a sync over recordings into an ephemeral store).
//!
//! It keeps the SQL stores' semantics exactly, because a replay and a sync
//! followed by `bankpipe export` must give the same files byte for byte
//! (`tests/replay_equivalence.rs`): a transaction is held as a database
//! would give it back — amount rebuilt from its ISO 4217 minor units,
//! instants truncated to microseconds (RFC 3339 text in the SQL stores),
//! source words as the known static words — and a re-read is unchanged when
//! the columns the SQL stores' fingerprint covers are equal; every rule
//! of the SQL in `backend.rs` (the `updated_at` guard, account merging,
//! quarantine repeats, dedupe links, un-superseding, the (booking date, id)
//! order) is restated here, and `crates/store/tests/store.rs` runs the same
//! test bodies on this store as on SQLite and PostgreSQL.
//!
//! Memory grows with the rows held (about 0.6 KB per transaction). Not a
//! [`crate::DeliveryLedger`]: nothing is delivered from a replay.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bankpipe_model::transaction::source_word;
use bankpipe_model::{Account, CanonicalId, Currency, Money, QuarantineRecord, ReconcileTarget, Status, Transaction};
use chrono::{DateTime, NaiveDate, Timelike, Utc};

use crate::rows::instant;
use crate::types::*;
use crate::StoreError;

/// The run log and canonical dataset of one process, in memory; see the
/// module documentation. Every method takes one lock for its duration, so
/// each is atomic as a database transaction would be.
pub struct MemoryStore {
    /// Name used in errors (like a database's redacted URL).
    name: String,
    inner: Mutex<Inner>,
}

/// A stored transaction, as a database gives it back, and what the SQL
/// tables hold beside it.
struct Stored {
    tx: Transaction,
    /// `amount_minor`: the amount in ISO 4217 minor units.
    minor: i64,
    /// `seen_pending`: the row was ever written as pending.
    seen_pending: bool,
}

impl Stored {
    /// `tx` as the SQL stores give it back (see the module documentation).
    ///
    /// # Errors
    /// [`StoreError::Money`] when the amount exceeds `i64` minor units (as
    /// the SQL stores refuse it).
    fn of(mut tx: Transaction) -> Result<Box<Stored>, StoreError> {
        let minor = tx
            .amount
            .to_minor_units()
            .map_err(|e| StoreError::Money { id: tx.id.to_string(), cause: e.to_string() })?;
        tx.amount = Money::from_minor_units(minor, tx.amount.currency());
        for t in [&mut tx.transacted_at, &mut tx.posted_at, &mut tx.updated_at] {
            *t = t.map(micros);
        }
        tx.source_status = source_word(tx.source_status);
        tx.source_type = source_word(tx.source_type);
        let seen_pending = tx.status == Status::Pending;
        Ok(Box::new(Stored { tx, minor, seen_pending }))
    }
}

/// Whether two stored rows of one id have the same content columns (what
/// the SQL stores' fingerprint covers): every field but the identity and
/// the dedupe decisions. The destructuring names every field, so a field
/// added to [`Transaction`] must be placed here.
fn same_content(a: &Transaction, b: &Transaction) -> bool {
    let Transaction {
        id: _,
        source: _,
        source_account_id: _,
        source_transaction_id: _,
        duplicate_of: _,
        superseded_by: _,
        external_id,
        group_id,
        status,
        source_status,
        source_type,
        memo_only,
        amount,
        transacted_at,
        posted_at,
        booking_date,
        updated_at,
        description,
        merchant_name,
        mcc,
        source_categories,
        memo,
        check_number,
        kind,
        category,
        category_source,
        source_fields,
    } = b;
    a.status == *status
        && a.booking_date == *booking_date
        && a.amount == *amount
        && a.amount.currency() == amount.currency()
        && a.description == *description
        && a.merchant_name == *merchant_name
        && a.mcc == *mcc
        && a.category == *category
        && a.category_source == *category_source
        && a.kind == *kind
        && a.memo_only == *memo_only
        && a.transacted_at == *transacted_at
        && a.posted_at == *posted_at
        && a.updated_at == *updated_at
        && a.source_status == *source_status
        && a.source_type == *source_type
        && a.external_id == *external_id
        && a.group_id == *group_id
        && a.source_categories == *source_categories
        && a.memo == *memo
        && a.check_number == *check_number
        && a.source_fields == *source_fields
}

/// An instant as stored: RFC 3339 text with 6 fraction digits (truncated).
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.nanosecond();
    t.with_nanosecond(nanos - nanos % 1000).unwrap_or(t)
}

/// An `accounts` row: money as minor units of the row's currency.
#[derive(Clone, Default)]
struct AccountRow {
    account_type: Option<String>,
    subtype: Option<String>,
    name: Option<String>,
    mask: Option<String>,
    currency: Option<Currency>,
    balance_minor: Option<i64>,
    available_minor: Option<i64>,
    credit_limit_minor: Option<i64>,
    opening_minor: Option<i64>,
    opening_date: Option<NaiveDate>,
    updated_at: Option<String>,
}

/// A `source_daily_totals` row.
struct StoredTotal {
    target: ReconcileTarget,
    /// Last reconciliation: computed net, count, `match`/`mismatch`.
    reconciled: Option<(Money, u64, &'static str)>,
}

/// A quarantine record's identity across runs: source, field, value,
/// reason and source record id.
type QuarantineKey = (String, String, String, String, Option<String>);

#[derive(Default)]
struct Inner {
    runs: Vec<RunRow>,
    /// Boxed: the table's growth moves pointers, not ~0.5 KB rows, and
    /// holds no slack of whole rows (the peak memory of a replay).
    rows: HashMap<CanonicalId, Box<Stored>>,
    /// (source, source account) → ids, for dedupe candidates.
    by_account: HashMap<(String, String), Vec<CanonicalId>>,
    /// `dedupe_links`: (transaction id, kind) → (target id, reason).
    links: BTreeMap<(String, &'static str), (String, String)>,
    /// Per kept row: how many `duplicate` and `superseded` links name it.
    targeted: HashMap<String, [u32; 2]>,
    accounts: BTreeMap<(String, String), AccountRow>,
    quarantine: Vec<QuarantineRecord>,
    /// The runs that stored each quarantine record.
    quarantined_by: HashMap<QuarantineKey, BTreeSet<RunId>>,
    /// (source, account, date, currency code) → the source's figure.
    totals: BTreeMap<(String, String, NaiveDate, String), StoredTotal>,
    watermarks: BTreeMap<(String, String), Watermark>,
    sweeps: HashMap<String, String>,
    windows: BTreeSet<(String, NaiveDate, NaiveDate)>,
}

impl MemoryStore {
    /// An empty store; `name` appears in its errors (e.g. `replay`).
    pub fn new(name: &str) -> MemoryStore {
        MemoryStore { name: format!("memory:{name}"), inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied
        // method behind it that a caller would then rely on: the process
        // is going down with it (replay has no other thread in the store).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn link_slot(kind: LinkKind) -> usize {
    match kind {
        LinkKind::Duplicate => 0,
        LinkKind::Superseded => 1,
    }
}

impl Inner {
    fn add_link(&mut self, tx: &str, kind: LinkKind, target: &str, reason: &str) {
        let key = (tx.to_owned(), kind.as_str());
        if self.links.contains_key(&key) {
            return; // ON CONFLICT (transaction_id, kind) DO NOTHING
        }
        self.links.insert(key, (target.to_owned(), reason.to_owned()));
        self.targeted.entry(target.to_owned()).or_default()[link_slot(kind)] += 1;
    }

    fn remove_link(&mut self, tx: &str, kind: LinkKind) {
        if let Some((target, _)) = self.links.remove(&(tx.to_owned(), kind.as_str())) {
            if let Some(n) = self.targeted.get_mut(&target) {
                n[link_slot(kind)] = n[link_slot(kind)].saturating_sub(1);
            }
        }
    }

    fn targeted(&self, id: &str, kind: LinkKind) -> bool {
        self.targeted.get(id).is_some_and(|n| n[link_slot(kind)] > 0)
    }

    /// Counted rows (posted, not MEMO, not superseded or a duplicate) booked
    /// on or after `since`: (source, account, date, currency) → (minor sum, count).
    fn counted_sums(&self, since: Option<NaiveDate>) -> HashMap<(&str, &str, NaiveDate, Currency), (i64, i64)> {
        let mut sums: HashMap<(&str, &str, NaiveDate, Currency), (i64, i64)> = HashMap::new();
        for s in self.rows.values() {
            let t = &s.tx;
            if t.status != Status::Posted || t.memo_only || t.duplicate_of.is_some() || t.superseded_by.is_some() {
                continue;
            }
            if since.is_some_and(|d| t.booking_date < d) {
                continue;
            }
            let e = sums.entry((&t.source, &t.source_account_id, t.booking_date, t.amount.currency())).or_default();
            // A 64-bit sum as in SQL; saturating only feeds the overflow
            // check of the caller, which fails loudly.
            e.0 = e.0.saturating_add(s.minor);
            e.1 += 1;
        }
        sums
    }
}

impl AccountRow {
    fn of(a: &Account) -> AccountRow {
        // As bound by the SQL stores: an amount beyond i64 minor units is
        // not stored (None), the currency and the dates are.
        let minor = |m: &Option<Money>| m.as_ref().and_then(|m| m.to_minor_units().ok());
        AccountRow {
            account_type: a.account_type.clone(),
            subtype: a.subtype.clone(),
            name: a.name.clone(),
            mask: a.mask.clone(),
            currency: a.currency,
            balance_minor: minor(&a.balance),
            available_minor: minor(&a.available_balance),
            credit_limit_minor: minor(&a.credit_limit),
            opening_minor: minor(&a.opening_balance),
            opening_date: a.opening_balance_date,
            updated_at: a.updated_at.map(instant),
        }
    }

    /// `ACCOUNT_UPSERT`: an older `updated_at` changes nothing; otherwise a
    /// field the new copy leaves empty keeps its stored value.
    fn merge(&mut self, new: AccountRow) {
        if let (Some(old), Some(new)) = (&self.updated_at, &new.updated_at) {
            if new < old {
                return;
            }
        }
        fn keep<T>(old: &mut Option<T>, new: Option<T>) {
            if new.is_some() {
                *old = new;
            }
        }
        keep(&mut self.account_type, new.account_type);
        keep(&mut self.subtype, new.subtype);
        keep(&mut self.name, new.name);
        keep(&mut self.mask, new.mask);
        keep(&mut self.currency, new.currency);
        keep(&mut self.balance_minor, new.balance_minor);
        keep(&mut self.available_minor, new.available_minor);
        keep(&mut self.credit_limit_minor, new.credit_limit_minor);
        keep(&mut self.opening_minor, new.opening_minor);
        keep(&mut self.opening_date, new.opening_date);
        keep(&mut self.updated_at, new.updated_at);
    }

    fn to_account(&self, database: &str, source: &str, id: &str) -> Result<Account, StoreError> {
        let mut a = Account::bare(std::sync::Arc::from(source), id.to_owned());
        let money = |m: Option<i64>| match (m, self.currency) {
            (Some(m), Some(c)) => Some(Money::from_minor_units(m, c)),
            _ => None,
        };
        a.account_type = self.account_type.clone();
        a.subtype = self.subtype.clone();
        a.name = self.name.clone();
        a.mask = self.mask.clone();
        a.currency = self.currency;
        a.balance = money(self.balance_minor);
        a.available_balance = money(self.available_minor);
        a.credit_limit = money(self.credit_limit_minor);
        a.opening_balance = money(self.opening_minor);
        a.opening_balance_date = self.opening_date;
        a.updated_at = self
            .updated_at
            .as_deref()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                    StoreError::Corrupt {
                        database: database.to_owned(),
                        id: id.to_owned(),
                        field: "updated_at",
                        value: t.to_owned(),
                    }
                })
            })
            .transpose()?;
        Ok(a)
    }
}

impl crate::RunLog for MemoryStore {
    async fn begin_run(&self, kind: RunKind) -> Result<RunId, StoreError> {
        let mut inner = self.lock();
        // No other process shares this store: a run still running was cut short.
        for r in inner.runs.iter_mut().filter(|r| r.outcome == "running") {
            r.outcome = "interrupted".to_owned();
        }
        let id = inner.runs.len() as RunId + 1;
        inner.runs.push(RunRow {
            id,
            kind: kind.as_str().to_owned(),
            started_at: instant(Utc::now()),
            finished_at: None,
            outcome: "running".to_owned(),
            counts: [0; 6],
            message: None,
        });
        Ok(id)
    }

    async fn finish_run(&self, run: RunId, s: &RunSummary) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(r) = inner.runs.iter_mut().find(|r| r.id == run) {
            r.finished_at = Some(instant(Utc::now()));
            r.outcome = s.outcome.clone();
            let c = &s.counts;
            r.counts = [s.pages, s.records, c.inserted, c.updated, c.unchanged, c.quarantined]
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            r.message = s.message.clone();
        }
        Ok(())
    }

    async fn watermarks(&self, source: &str) -> Result<Vec<Watermark>, StoreError> {
        Ok(self.lock().watermarks.values().filter(|w| w.source == source).cloned().collect())
    }

    async fn advance_watermarks(
        &self,
        _run: RunId,
        source: &str,
        dates: &[(String, NaiveDate)],
    ) -> Result<(), StoreError> {
        let now = instant(Utc::now());
        let mut inner = self.lock();
        for (account, date) in dates {
            let w = inner.watermarks.entry((source.to_owned(), account.clone())).or_insert_with(|| Watermark {
                source: source.to_owned(),
                source_account_id: account.clone(),
                booking_date: *date,
                updated_at: now.clone(),
            });
            if *date > w.booking_date {
                w.booking_date = *date;
                w.updated_at = now.clone();
            }
        }
        Ok(())
    }

    async fn oldest_pending(&self, source: &str, since: NaiveDate) -> Result<Vec<(String, NaiveDate)>, StoreError> {
        let inner = self.lock();
        let mut found: BTreeSet<(&str, NaiveDate)> = BTreeSet::new();
        for s in inner.rows.values() {
            let t = &s.tx;
            if t.status == Status::Pending
                && t.superseded_by.is_none()
                && t.duplicate_of.is_none()
                && !t.memo_only
                && *t.source == *source
                && t.booking_date >= since
            {
                found.insert((&t.source_account_id, t.booking_date));
            }
        }
        Ok(found.into_iter().map(|(account, date)| (account.to_owned(), date)).collect())
    }

    async fn last_full_sweep(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().sweeps.get(source).cloned())
    }

    async fn record_full_sweep(&self, _run: RunId, source: &str) -> Result<(), StoreError> {
        self.lock().sweeps.insert(source.to_owned(), instant(Utc::now()));
        Ok(())
    }

    async fn backfill_window_done(&self, source: &str, from: NaiveDate, to: NaiveDate) -> Result<bool, StoreError> {
        Ok(self.lock().windows.contains(&(source.to_owned(), from, to)))
    }

    async fn complete_backfill_window(
        &self,
        _run: RunId,
        source: &str,
        from: NaiveDate,
        to: NaiveDate,
        _transactions: u64,
    ) -> Result<(), StoreError> {
        self.lock().windows.insert((source.to_owned(), from, to));
        Ok(())
    }

    async fn status(&self, last_runs: u32) -> Result<StatusReport, StoreError> {
        let inner = self.lock();
        let mut report = StatusReport {
            runs: inner.runs.iter().rev().take(last_runs as usize).cloned().collect(),
            watermarks: inner.watermarks.values().cloned().collect(),
            quarantined: inner.quarantine.len() as i64,
            transactions: inner.rows.len() as i64,
            ..StatusReport::default()
        };
        let mut mismatches = Vec::new();
        for t in inner.totals.values() {
            match t.reconciled {
                None => report.source_totals.unreconciled += 1,
                Some((_, _, "match")) => report.source_totals.matching += 1,
                Some((computed_net, computed_count, _)) => {
                    report.source_totals.mismatching += 1;
                    mismatches.push(TotalMismatch { target: t.target.clone(), computed_net, computed_count });
                }
            }
        }
        // ORDER BY booking_date, source, account, currency
        fn key(m: &TotalMismatch) -> (NaiveDate, &str, &str, &str) {
            (m.target.date, &m.target.source, &m.target.account, m.target.currency.code())
        }
        mismatches.sort_by(|a, b| key(a).cmp(&key(b)));
        report.source_totals.mismatches = mismatches;
        Ok(report)
    }
}

impl crate::TransactionStore for MemoryStore {
    async fn write_page(
        &self,
        run: RunId,
        accounts: &[Account],
        transactions: &[Transaction],
        quarantine: &[QuarantineRecord],
    ) -> Result<PageCounts, StoreError> {
        // Within a page the newest sighting of an id wins (later on ties),
        // as in the SQL stores (instants compare as stored: to the microsecond).
        let mut rows: Vec<Option<Box<Stored>>> = Vec::with_capacity(transactions.len());
        for tx in transactions {
            rows.push(Some(Stored::of(tx.clone())?));
        }
        let keys: Vec<_> = rows.iter().flatten().map(|s| (s.tx.id, s.tx.updated_at)).collect();
        let winners: Vec<Box<Stored>> =
            newest_per_id(&keys).into_iter().filter_map(|i| rows.get_mut(i).and_then(Option::take)).collect();
        let mut counts = PageCounts { unchanged: (transactions.len() - winners.len()) as u64, ..PageCounts::default() };
        let mut inner = self.lock();
        let mut posted: Vec<CanonicalId> = Vec::new();
        for mut new in winners {
            let id = new.tx.id;
            match inner.rows.get_mut(&id) {
                None => {
                    counts.inserted += 1;
                    // An insert never carries dedupe decisions.
                    new.tx.duplicate_of = None;
                    new.tx.superseded_by = None;
                    let key = (new.tx.source.to_string(), new.tx.source_account_id.clone());
                    inner.by_account.entry(key).or_default().push(id);
                    inner.rows.insert(id, new);
                }
                Some(old) if same_content(&old.tx, &new.tx) => counts.unchanged += 1,
                Some(old)
                    if old.tx.updated_at.is_some()
                        && new.tx.updated_at.is_some()
                        && new.tx.updated_at < old.tx.updated_at =>
                {
                    counts.unchanged += 1
                }
                Some(old) => {
                    counts.updated += 1;
                    // TX_UPDATE: the content columns; never the dedupe
                    // decisions (the identity and the account are the id's).
                    new.tx.duplicate_of = old.tx.duplicate_of;
                    new.tx.superseded_by = old.tx.superseded_by;
                    new.seen_pending |= old.seen_pending;
                    // DESIGN §4.6: a superseded pending row that posts under
                    // its own id was its own settlement.
                    if new.tx.superseded_by.is_some() && new.tx.status == Status::Posted {
                        posted.push(id);
                    }
                    *old = new;
                }
            }
        }
        for id in posted {
            inner.remove_link(&id.to_string(), LinkKind::Superseded);
            if let Some(s) = inner.rows.get_mut(&id) {
                s.tx.superseded_by = None;
                counts.unsuperseded += 1;
            }
        }
        for a in accounts {
            let new = AccountRow::of(a);
            match inner.accounts.get_mut(&(a.source.to_string(), a.source_account_id.clone())) {
                Some(old) => old.merge(new),
                None => {
                    inner.accounts.insert((a.source.to_string(), a.source_account_id.clone()), new);
                }
            }
        }
        // A record quarantined by an earlier run is not stored again;
        // repeats within this run are.
        let mut fresh = Vec::with_capacity(quarantine.len());
        for r in quarantine {
            let key = (r.source.clone(), r.field.clone(), r.value.clone(), r.reason.clone(), r.record_id.clone());
            if !inner.quarantined_by.get(&key).is_some_and(|runs| runs.iter().any(|&other| other != run)) {
                fresh.push((key, r));
            }
        }
        for (key, r) in fresh {
            inner.quarantined_by.entry(key).or_default().insert(run);
            inner.quarantine.push(r.clone());
        }
        counts.quarantined = quarantine.len() as u64;
        Ok(counts)
    }

    async fn write_pages(&self, run: RunId, pages: &[PageWrite<'_>]) -> Result<PageCounts, StoreError> {
        // All or none: the only refusal (an amount beyond i64 minor units)
        // is found before anything is written.
        for tx in pages.iter().flat_map(|p| p.transactions) {
            tx.amount
                .to_minor_units()
                .map_err(|e| StoreError::Money { id: tx.id.to_string(), cause: e.to_string() })?;
        }
        let mut counts = PageCounts::default();
        for p in pages {
            counts.add(self.write_page(run, p.accounts, p.transactions, p.quarantine).await?);
        }
        Ok(counts)
    }

    async fn dedupe_candidates(
        &self,
        accounts: &[(String, String)],
        since: NaiveDate,
    ) -> Result<Vec<Candidate>, StoreError> {
        let inner = self.lock();
        let mut out = Vec::new();
        for key in accounts {
            let mut rows: Vec<(NaiveDate, CanonicalId, &Stored)> = inner
                .by_account
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|id| inner.rows.get(id).map(|s| &**s))
                .filter(|s| s.tx.booking_date >= since && s.tx.superseded_by.is_none() && s.tx.duplicate_of.is_none())
                .map(|s| (s.tx.booking_date, s.tx.id, s))
                .collect();
            rows.sort_unstable_by_key(|&(date, id, _)| (date, id));
            for (_, _, s) in rows {
                let t = &s.tx;
                let id = t.id.to_string();
                out.push(Candidate {
                    booking_date: t.booking_date,
                    kept_for_duplicate: inner.targeted(&id, LinkKind::Duplicate),
                    supersedes: inner.targeted(&id, LinkKind::Superseded),
                    id,
                    source: t.source.to_string(),
                    source_account_id: t.source_account_id.clone(),
                    posted: t.status == Status::Posted,
                    amount_minor: s.minor,
                    currency: t.amount.currency().code().to_owned(),
                    description: t.description.clone(),
                    merchant_name: t.merchant_name.clone(),
                    mcc: t.mcc.map(|m| m.get()),
                    memo_only: t.memo_only,
                    seen_pending: s.seen_pending,
                });
            }
        }
        Ok(out)
    }

    async fn apply_dedupe(&self, _run: RunId, links: &[DedupeLink]) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut applied = 0;
        for l in links {
            // No row has an id that is not canonical (SQL: no row matches).
            let Some(id) = CanonicalId::parse(&l.transaction_id) else { continue };
            let Some(target) = CanonicalId::parse(&l.target_id) else {
                return Err(StoreError::Callback(format!(
                    "dedupe link {} -> {:?}: the kept row's id is not a canonical id",
                    l.transaction_id, l.target_id
                )));
            };
            let Some(s) = inner.rows.get_mut(&id) else { continue };
            if s.tx.superseded_by.is_some() || s.tx.duplicate_of.is_some() {
                continue;
            }
            match l.kind {
                LinkKind::Superseded => s.tx.superseded_by = Some(target),
                LinkKind::Duplicate => s.tx.duplicate_of = Some(target),
            }
            inner.add_link(&l.transaction_id, l.kind, &l.target_id, &l.reason);
            applied += 1;
        }
        Ok(applied)
    }

    async fn transaction(&self, id: &str) -> Result<Option<Transaction>, StoreError> {
        Ok(CanonicalId::parse(id).and_then(|id| self.lock().rows.get(&id).map(|s| s.tx.clone())))
    }

    /// A scan of every row: replay never asks (the SQL stores serve delivery).
    async fn counterpart(&self, tx: &Transaction) -> Result<Option<Transaction>, StoreError> {
        let inner = self.lock();
        let others: Vec<&Transaction> = inner
            .rows
            .values()
            .map(|s| &s.tx)
            .filter(|t| {
                t.source == tx.source
                    && t.source_transaction_id == tx.source_transaction_id
                    && t.source_account_id != tx.source_account_id
            })
            .take(2)
            .collect();
        Ok(match others.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        })
    }

    async fn links_of(&self, id: &str) -> Result<Vec<DedupeLink>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .links
            .iter()
            .filter(|((tx, _), (target, _))| tx == id || target == id)
            .map(|((tx, kind), (target, reason))| DedupeLink {
                transaction_id: tx.clone(),
                kind: LinkKind::parse(kind),
                target_id: target.clone(),
                reason: reason.clone(),
            })
            .collect())
    }

    async fn for_each_transaction<F>(&self, mut f: F) -> Result<u64, StoreError>
    where
        F: FnMut(Transaction) -> Result<(), StoreError> + Send,
    {
        let inner = self.lock();
        // The ids' text is fixed-width hex: the same order as SQL's text
        // order. The keys sit beside the pointers, so sorting does not
        // chase a pointer per comparison.
        let mut order: Vec<(NaiveDate, CanonicalId, &Transaction)> =
            inner.rows.values().map(|s| (s.tx.booking_date, s.tx.id, &s.tx)).collect();
        order.sort_unstable_by_key(|&(date, id, _)| (date, id));
        let mut n = 0;
        for (_, _, t) in order {
            n += 1;
            f(t.clone())?;
        }
        Ok(n)
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let inner = self.lock();
        inner.accounts.iter().map(|((source, id), a)| a.to_account(&self.name, source, id)).collect()
    }

    async fn quarantine(&self) -> Result<Vec<QuarantineRecord>, StoreError> {
        Ok(self.lock().quarantine.clone())
    }

    async fn save_source_totals(&self, _run: RunId, targets: &[ReconcileTarget]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for t in targets {
            let key = (t.source.to_string(), t.account.clone(), t.date, t.currency.code().to_owned());
            inner.totals.insert(key, StoredTotal { target: t.clone(), reconciled: None });
        }
        Ok(())
    }

    async fn source_totals(&self, since: Option<NaiveDate>) -> Result<Vec<ReconcileTarget>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .totals
            .values()
            .filter(|t| since.is_none_or(|d| t.target.date >= d))
            .map(|t| t.target.clone())
            .collect())
    }

    async fn reconcile_source_totals(&self, since: Option<NaiveDate>) -> Result<Vec<TotalMismatch>, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.totals.is_empty() {
            return Ok(Vec::new());
        }
        let sums = inner.counted_sums(since);
        let mut results = Vec::new();
        let mut mismatches = Vec::new();
        for (key, t) in &inner.totals {
            let t = &t.target;
            if since.is_some_and(|d| t.date < d) {
                continue;
            }
            let (computed_net, computed_count, matches) =
                crate::types::reconcile(t, |account| sums.get(&(&*t.source, account, t.date, t.currency)).copied())?;
            results.push((key.clone(), (computed_net, computed_count, if matches { "match" } else { "mismatch" })));
            if !matches {
                mismatches.push(TotalMismatch { target: t.clone(), computed_net, computed_count });
            }
        }
        drop(sums);
        for (key, result) in results {
            if let Some(t) = inner.totals.get_mut(&key) {
                t.reconciled = Some(result);
            }
        }
        Ok(mismatches)
    }

    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Nothing to defer: no index is kept apart from the rows.
    async fn defer_indexes(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn build_deferred_indexes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
