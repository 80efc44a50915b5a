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
//!
//! Every money addition is checked; nothing here panics on any input. Source
//! amounts are bounded at parse time ([`bankpipe_model::MAX_ABS_MINOR_UNITS`]),
//! so a day's sum cannot overflow in practice; should one anyway (rows that
//! bypassed the normalizers, e.g. built in code or read from an old store),
//! that day is marked overflowed: it gets no [`DailyTotal`] row and is
//! reported instead as a quarantine record naming the source, account, date,
//! currency and count (field `net_total`, `record_id`
//! `daily_total_overflow:<date>:<account>:<currency>`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bankpipe_model::{
    Currency, DailyTotal, Money, QuarantineRecord, ReconcileTarget, ReportedDailyTotal, SourceDailyTotal, Transaction,
};
use chrono::NaiveDate;

/// The account id used for a reconciliation across several accounts.
pub const ALL_ACCOUNTS: &str = "*";

/// The running sums of one day. Once any sum overflows, `overflow` is set
/// and the sums stop (the count goes on, for the report).
#[derive(Clone, Copy)]
struct Acc {
    net: Money,
    inflow: Money,
    outflow: Money,
    count: u64,
    overflow: bool,
}

impl Acc {
    fn new(currency: Currency) -> Acc {
        let zero = Money::zero(currency);
        Acc { net: zero, inflow: zero, outflow: zero, count: 0, overflow: false }
    }

    /// Add one counted amount (checked; an overflow marks the day).
    fn add_amount(&mut self, amount: &Money) {
        self.count = self.count.saturating_add(1);
        if self.overflow {
            return;
        }
        let side = if amount.is_negative() { self.outflow } else { self.inflow };
        match (self.net.checked_add(amount), side.checked_add(amount)) {
            (Ok(net), Ok(side)) => {
                self.net = net;
                if amount.is_negative() {
                    self.outflow = side;
                } else {
                    self.inflow = side;
                }
            }
            _ => self.overflow = true,
        }
    }

    /// Add another day's sums (a response-wide row over several accounts).
    fn add(&mut self, other: &Acc) {
        self.count = self.count.saturating_add(other.count);
        if self.overflow || other.overflow {
            self.overflow = true;
            return;
        }
        match (
            self.net.checked_add(&other.net),
            self.inflow.checked_add(&other.inflow),
            self.outflow.checked_add(&other.outflow),
        ) {
            (Ok(net), Ok(inflow), Ok(outflow)) => {
                self.net = net;
                self.inflow = inflow;
                self.outflow = outflow;
            }
            _ => self.overflow = true,
        }
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

    /// Add one transaction if it counts. Sums are exact, checked additions:
    /// never a panic; a day whose sum overflows is reported by
    /// [`DailyTotalsBuilder::finish`] instead of totalled.
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
        let currency = tx.amount.currency();
        days.entry((tx.booking_date, currency)).or_insert_with(|| Acc::new(currency)).add_amount(&tx.amount);
    }

    /// Produce every daily total, reconciled against the walks' reported
    /// totals, sorted by (source, account, date, currency). Reported entries
    /// that cannot be reconciled (unknown currency, ambiguous scope, digits
    /// beyond the currency's minor units, a conflicting repeat) are returned
    /// as quarantine records, and so is every day whose sum overflowed (no
    /// row for it; see the module docs), in (source, account, date,
    /// currency) order after the reported entries.
    pub fn finish(self, walks: &[Walk]) -> (Vec<DailyTotal>, Vec<QuarantineRecord>) {
        let (targets, mut quarantine) = resolve_targets(walks);
        let (totals, overflowed) = self.finish_with(targets);
        quarantine.extend(overflowed);
        (totals, quarantine)
    }

    /// [`DailyTotalsBuilder::finish`] against targets already resolved
    /// (e.g. read back from the store, where ingest put them): every daily
    /// total, reconciled, sorted by (source, account, date, currency), and
    /// the overflowed days as quarantine records.
    pub fn finish_with(self, targets: Vec<ReconcileTarget>) -> (Vec<DailyTotal>, Vec<QuarantineRecord>) {
        let mut quarantine = Vec::new();
        let targets: BTreeMap<RowKey, (SourceDailyTotal, Vec<String>)> =
            targets.into_iter().map(|t| ((t.source, t.account, t.date, t.currency), (t.reported, t.scope))).collect();

        // Response-wide ("*") rows sum their scope's accounts; compute them
        // before the per-account map is drained.
        let mut totals: Vec<DailyTotal> = Vec::new();
        let mut overflowed: Vec<(RowKey, QuarantineRecord)> = Vec::new();
        let mut per_account: HashMap<RowKey, SourceDailyTotal> = HashMap::new();
        for ((source, label, date, currency), (reported, scope)) in targets {
            if label != ALL_ACCOUNTS {
                per_account.insert((source, label, date, currency), reported);
                continue;
            }
            let mut acc = Acc::new(currency);
            let accounts = self.by_account.get(&source);
            for account in &scope {
                if let Some(a) = accounts.and_then(|m| m.get(account)).and_then(|d| d.get(&(date, currency))) {
                    acc.add(a);
                }
            }
            emit(&mut totals, &mut overflowed, (source, label, date, currency), &acc, Some(reported));
        }
        for (source, accounts) in self.by_account {
            for (account, days) in accounts {
                for ((date, currency), acc) in days {
                    let key = (source.clone(), account.clone(), date, currency);
                    let reported = per_account.remove(&key);
                    emit(&mut totals, &mut overflowed, key, &acc, reported);
                }
            }
        }
        // Reported days with no counted transaction: computed zero.
        for (key, reported) in per_account {
            let currency = key.3;
            emit(&mut totals, &mut overflowed, key, &Acc::new(currency), Some(reported));
        }
        overflowed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        quarantine.extend(overflowed.into_iter().map(|(_, q)| q));
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

/// Resolve every reported entry of `walks` to a [`ReconcileTarget`] (pure).
/// Entries that cannot be reconciled (unknown currency, ambiguous scope,
/// digits beyond the currency's minor units, a conflicting repeat within the
/// walks — the first is kept) are returned as quarantine records. Targets
/// come out sorted by (source, account, date, currency), one per key.
pub fn resolve_targets(walks: &[Walk]) -> (Vec<ReconcileTarget>, Vec<QuarantineRecord>) {
    let mut quarantine = Vec::new();
    let mut targets: BTreeMap<RowKey, ReconcileTarget> = BTreeMap::new();
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
            let key = (walk.source.clone(), label.clone(), entry.date, currency);
            match targets.get(&key) {
                Some(existing) if existing.reported != reported => quarantine.push(reject(format!(
                    "conflicts with the daily total already reported for this day at {}; the first is kept",
                    existing.origin
                ))),
                Some(_) => {}
                None => {
                    let origin = format!("{}#{}", entry.file, entry.pointer);
                    let target = ReconcileTarget {
                        source: walk.source.clone(),
                        account: label,
                        date: entry.date,
                        currency,
                        reported,
                        scope,
                        origin,
                    };
                    targets.insert(key, target);
                }
            }
        }
    }
    (targets.into_values().collect(), quarantine)
}

/// Push the day's row, or — when its sums overflowed — its report.
fn emit(
    totals: &mut Vec<DailyTotal>,
    overflowed: &mut Vec<(RowKey, QuarantineRecord)>,
    key: RowKey,
    acc: &Acc,
    reported: Option<SourceDailyTotal>,
) {
    let (source, account, date, currency) = key.clone();
    if acc.overflow {
        let told = reported
            .map(|r| format!("; the source reported {} over {} transactions", r.net_total, r.transaction_count))
            .unwrap_or_default();
        let record = QuarantineRecord {
            source: source.to_string(),
            file: "(daily totals)".into(),
            pointer: String::new(),
            field: "net_total".into(),
            value: format!("account {account}, {date}, {currency}: {} counted transactions", acc.count),
            reason: format!(
                "daily total overflow: the exact sum of the day's counted amounts exceeds the supported decimal range; \
                 no total is reported for this day{told}"
            ),
            record_id: Some(format!("daily_total_overflow:{date}:{account}:{currency}")),
        };
        overflowed.push((key, record));
        return;
    }
    totals.push(DailyTotal {
        source,
        source_account_id: account,
        date,
        currency,
        net_total: acc.net,
        transaction_count: acc.count,
        inflow: acc.inflow,
        outflow: acc.outflow,
        source_total: reported,
    });
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

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    fn tx(source: &str, account: &str, id: &str, amount: Money, day: u32) -> Transaction {
        let mut t =
            Transaction::bare_posted(source, account, id, amount, NaiveDate::from_ymd_opt(2024, 3, day).unwrap());
        t.source_type = "DEBIT";
        t
    }

    fn money(amount: Decimal, code: &str) -> Money {
        Money::new(amount, Currency::from_code(code).unwrap()).unwrap()
    }

    #[test]
    fn sums_inflow_and_outflow_exactly() {
        let mut b = DailyTotalsBuilder::new();
        b.add(&tx("truv", "a", "1", money(Decimal::new(-475, 2), "USD"), 1));
        b.add(&tx("truv", "a", "2", money(Decimal::new(1000, 2), "USD"), 1));
        b.add(&tx("truv", "a", "3", money(Decimal::new(-25, 2), "USD"), 1));
        let (totals, quarantine) = b.finish(&[]);
        assert!(quarantine.is_empty());
        let t = &totals[0];
        assert_eq!(
            (t.net_total.to_string(), t.inflow.to_string(), t.outflow.to_string()),
            ("5.00".into(), "10.00".into(), "-5.00".into())
        );
        assert_eq!(t.transaction_count, 3);
    }

    /// Two accepted amounts whose sum leaves the decimal range used to panic
    /// (exit 101) in `add`; now that day is reported and the others proceed.
    #[test]
    fn an_overflowing_day_is_reported_not_a_panic() {
        for (source, code) in [("truv", "JPY"), ("truv", "USD"), ("firefly", "USD"), ("firefly", "KWD")] {
            let currency = Currency::from_code(code).unwrap();
            let max =
                Money::new(Decimal::from_i128_with_scale((1 << 96) - 1, currency.minor_units()), currency).unwrap();
            let mut b = DailyTotalsBuilder::new();
            b.add(&tx(source, "acc", "big-1", max, 1));
            b.add(&tx(source, "acc", "big-2", max, 1));
            b.add(&tx(source, "acc", "big-3", max.negated(), 1));
            b.add(&tx(source, "acc", "small", money(Decimal::new(-100, 0), code), 2));
            // Outflows overflow on their own side too.
            b.add(&tx(source, "acc", "neg-1", max.negated(), 3));
            b.add(&tx(source, "acc", "neg-2", max.negated(), 3));
            let (totals, quarantine) = b.finish(&[]);
            assert_eq!(totals.len(), 1, "{source} {code}: only the sane day has a row");
            assert_eq!(totals[0].date.to_string(), "2024-03-02");
            assert_eq!(quarantine.len(), 2, "{quarantine:#?}");
            let q = &quarantine[0];
            assert_eq!(q.source, source);
            assert_eq!(q.field, "net_total");
            assert_eq!(q.record_id.as_deref(), Some(format!("daily_total_overflow:2024-03-01:acc:{code}").as_str()));
            assert!(
                q.value.contains("acc") && q.value.contains("2024-03-01") && q.value.contains("3 counted"),
                "{}",
                q.value
            );
            assert!(q.reason.starts_with("daily total overflow"), "{}", q.reason);
            assert_eq!(
                quarantine[1].record_id.as_deref(),
                Some(format!("daily_total_overflow:2024-03-03:acc:{code}").as_str())
            );
        }
    }

    #[test]
    fn a_response_wide_row_that_overflows_is_reported_with_the_source_figure() {
        let usd = Currency::USD;
        let max = Money::new(Decimal::from_i128_with_scale((1 << 96) - 1, 2), usd).unwrap();
        let mut b = DailyTotalsBuilder::new();
        b.add(&tx("truv", "a", "1", max, 1));
        b.add(&tx("truv", "b", "2", max, 1));
        let walk = Walk {
            source: Arc::from("truv"),
            accounts: [("a".to_owned(), [usd].into()), ("b".to_owned(), [usd].into())].into(),
            reported: vec![ReportedDailyTotal {
                source: Arc::from("truv"),
                account_id: None,
                currency: None,
                date: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
                net_total: Decimal::new(100, 2),
                transaction_count: 2,
                file: "p.json".into(),
                pointer: "/daily_totals/0".into(),
            }],
        };
        let (totals, quarantine) = b.finish(&[walk]);
        // Each account's own day fits; their sum across accounts does not.
        assert_eq!(totals.len(), 2);
        assert!(totals.iter().all(|t| t.source_account_id != ALL_ACCOUNTS));
        assert_eq!(quarantine.len(), 1, "{quarantine:#?}");
        assert_eq!(quarantine[0].record_id.as_deref(), Some("daily_total_overflow:2024-03-01:*:USD"));
        assert!(
            quarantine[0].reason.contains("the source reported 1.00 over 2 transactions"),
            "{}",
            quarantine[0].reason
        );
    }
}
