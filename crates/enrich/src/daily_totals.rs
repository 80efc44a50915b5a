//! Daily totals per (source, source account, booking date, currency) and
//! their reconciliation against source-reported totals (DESIGN §3).
//!
//! Only counted rows enter the totals (posted, not MEMO, not a duplicate, not
//! superseded — [`Transaction::counts`]). A Truv `daily_totals[]` entry with
//! an `account_id` is reconciled against that account's row; one without is
//! reconciled against the day summed across the walk's accounts of that
//! currency (a row with `source_account_id = "*"`; when the walk has a single
//! account of that currency, that account's own row). Mismatches are
//! reported in the row's status — the computed figures are never replaced.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bankpipe_model::{
    Currency, DailyTotal, Money, QuarantineRecord, ReportedDailyTotal, SourceDailyTotal, Transaction,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// The account id used for a reconciliation across several accounts.
pub const ALL_ACCOUNTS: &str = "*";

#[derive(Clone, Copy, Default)]
struct Acc {
    net: Decimal,
    inflow: Decimal,
    outflow: Decimal,
    count: u64,
}

impl Acc {
    fn add(&mut self, other: &Acc) {
        self.net += other.net;
        self.inflow += other.inflow;
        self.outflow += other.outflow;
        self.count += other.count;
    }
}

/// One walk (a recorded directory or a live pagination run) of one source:
/// its accounts with their currencies and the totals it reported.
#[derive(Clone, Debug, Default)]
pub struct Walk {
    /// Source name.
    pub source: Arc<str>,
    /// Account ids seen in the walk (account list and transactions), with the
    /// currency when known.
    pub accounts: BTreeMap<String, BTreeSet<Currency>>,
    /// Source-reported daily totals of the walk.
    pub reported: Vec<ReportedDailyTotal>,
}

type DayKey = (NaiveDate, Currency);

/// (source, account or `*`, date, currency).
type RowKey = (Arc<str>, String, NaiveDate, Currency);

/// Accumulates counted transactions into daily totals, then reconciles.
#[derive(Default)]
pub struct DailyTotalsBuilder {
    by_account: HashMap<Arc<str>, HashMap<String, BTreeMap<DayKey, Acc>>>,
}

impl DailyTotalsBuilder {
    /// An empty builder.
    pub fn new() -> DailyTotalsBuilder {
        DailyTotalsBuilder::default()
    }

    /// Add one transaction if it counts. Sums are exact `Decimal` additions.
    pub fn add(&mut self, tx: &Transaction) {
        if !tx.counts() {
            return;
        }
        let accounts = match self.by_account.get_mut(&tx.source) {
            Some(a) => a,
            None => self.by_account.entry(tx.source.clone()).or_default(),
        };
        let days = match accounts.get_mut(tx.source_account_id.as_str()) {
            Some(d) => d,
            None => accounts.entry(tx.source_account_id.clone()).or_default(),
        };
        let acc = days.entry((tx.booking_date, tx.amount.currency())).or_default();
        let amount = tx.amount.amount();
        acc.net += amount;
        if tx.amount.is_negative() {
            acc.outflow += amount;
        } else {
            acc.inflow += amount;
        }
        acc.count += 1;
    }

    /// Produce every daily total, reconciled against the walks' reported
    /// totals, sorted by (source, account, date, currency). Reported entries
    /// that cannot be reconciled (unknown currency, ambiguous scope, digits
    /// beyond the currency's minor units, a conflicting repeat) are returned
    /// as quarantine records.
    pub fn finish(self, walks: &[Walk]) -> (Vec<DailyTotal>, Vec<QuarantineRecord>) {
        let mut quarantine = Vec::new();
        // Targets: (source, account or "*", date, currency) -> (reported, scope accounts, origin)
        type Target = (SourceDailyTotal, Vec<String>, String);
        let mut targets: BTreeMap<RowKey, Target> = BTreeMap::new();
        for walk in walks {
            for entry in &walk.reported {
                let reject = |reason: String| QuarantineRecord {
                    source: entry.source.to_string(),
                    file: entry.file.clone(),
                    pointer: entry.pointer.clone(),
                    field: String::new(),
                    value: format!("{} {} ({} transactions)", entry.date, entry.net_total, entry.transaction_count),
                    reason,
                    record_id: Some(match &entry.account_id {
                        Some(a) => format!("daily_total:{}:{a}", entry.date),
                        None => format!("daily_total:{}", entry.date),
                    }),
                };
                let (currency, scope) = match resolve_scope(walk, entry) {
                    Ok(x) => x,
                    Err(reason) => {
                        quarantine.push(reject(reason));
                        continue;
                    }
                };
                let net_total = match Money::new(entry.net_total, currency) {
                    Ok(m) => m,
                    Err(e) => {
                        quarantine.push(QuarantineRecord { field: "net_total".into(), ..reject(e.to_string()) });
                        continue;
                    }
                };
                let reported = SourceDailyTotal { net_total, transaction_count: entry.transaction_count };
                let label = if scope.len() == 1 { scope[0].clone() } else { ALL_ACCOUNTS.to_owned() };
                let origin = format!("{}#{}", entry.file, entry.pointer);
                let key = (walk.source.clone(), label, entry.date, currency);
                match targets.get(&key) {
                    Some((existing, _, first)) if *existing != reported => quarantine.push(reject(format!(
                        "conflicts with the daily total already reported for this day at {first}; the first is kept"
                    ))),
                    Some(_) => {}
                    None => {
                        targets.insert(key, (reported, scope, origin));
                    }
                }
            }
        }

        // Response-wide ("*") rows sum their scope's accounts; compute them
        // before the per-account map is drained.
        let mut totals: Vec<DailyTotal> = Vec::new();
        let mut per_account: HashMap<RowKey, SourceDailyTotal> = HashMap::new();
        for ((source, label, date, currency), (reported, scope, _)) in targets {
            if label != ALL_ACCOUNTS {
                per_account.insert((source, label, date, currency), reported);
                continue;
            }
            let mut acc = Acc::default();
            let accounts = self.by_account.get(&source);
            for account in &scope {
                if let Some(a) = accounts.and_then(|m| m.get(account)).and_then(|d| d.get(&(date, currency))) {
                    acc.add(a);
                }
            }
            totals.push(row(source, label, date, currency, &acc, Some(reported)));
        }
        for (source, accounts) in self.by_account {
            for (account, days) in accounts {
                for ((date, currency), acc) in days {
                    let key = (source.clone(), account.clone(), date, currency);
                    let reported = per_account.remove(&key);
                    totals.push(row(key.0, key.1, date, currency, &acc, reported));
                }
            }
        }
        // Reported days with no counted transaction: computed zero.
        for ((source, account, date, currency), reported) in per_account {
            totals.push(row(source, account, date, currency, &Acc::default(), Some(reported)));
        }
        totals.sort_unstable_by(|a, b| {
            (&a.source, &a.source_account_id, a.date, a.currency).cmp(&(
                &b.source,
                &b.source_account_id,
                b.date,
                b.currency,
            ))
        });
        (totals, quarantine)
    }
}

fn row(
    source: Arc<str>,
    account: String,
    date: NaiveDate,
    currency: Currency,
    acc: &Acc,
    reported: Option<SourceDailyTotal>,
) -> DailyTotal {
    // Sums of amounts exact at the minor units are exact at the minor units.
    let money = |d: Decimal| Money::new(d, currency).expect("sums of exact amounts stay exact");
    DailyTotal {
        source,
        source_account_id: account,
        date,
        currency,
        net_total: money(acc.net),
        transaction_count: acc.count,
        inflow: money(acc.inflow),
        outflow: money(acc.outflow),
        source_total: reported,
    }
}

/// Which currency and accounts a reported entry speaks for.
fn resolve_scope(walk: &Walk, entry: &ReportedDailyTotal) -> Result<(Currency, Vec<String>), String> {
    let single = |set: &BTreeSet<Currency>| (set.len() == 1).then(|| *set.iter().next().expect("one"));
    if let Some(account) = &entry.account_id {
        let known = walk.accounts.get(account);
        let currency = entry
            .currency
            .or_else(|| known.and_then(single))
            .ok_or_else(|| format!("cannot tell the currency of account {account}'s daily total"))?;
        return Ok((currency, vec![account.clone()]));
    }
    let all: BTreeSet<Currency> = walk.accounts.values().flatten().copied().collect();
    let currency = match entry.currency {
        Some(c) => c,
        None => single(&all).ok_or_else(|| {
            let codes: Vec<&str> = all.iter().map(|c| c.code()).collect();
            format!(
                "entry has neither account_id nor currency_code and the response's accounts use {} currencies ({}): it cannot be reconciled",
                codes.len(),
                codes.join(", ")
            )
        })?,
    };
    let scope: Vec<String> =
        walk.accounts.iter().filter(|(_, cs)| cs.contains(&currency)).map(|(a, _)| a.clone()).collect();
    if scope.is_empty() {
        return Err(format!("no account of the response is in {currency}"));
    }
    Ok((currency, scope))
}
