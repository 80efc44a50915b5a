//! Truv page generator.

use std::collections::VecDeque;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use super::merchants::{pick, total_weight, Merchant, MERCHANTS};
use super::{quoted, GenConfig};

const BASE: &str = "https://prod.truv.com/v1/links/5f1c0a9e0d6b4a8c9e7f2a1b3c4d5e6f/transactions/";

/// An account of the generated link.
struct Acct {
    id: String,
    currency: &'static str,
    minor_units: u32,
}

/// A held record waiting to be emitted as posted.
struct Hold {
    due: DateTime<Utc>,
    record: Rec,
}

#[derive(Clone)]
struct Rec {
    id: u64,
    account: usize,
    merchant: &'static Merchant,
    minor: i64,
    credit: bool,
    status: &'static str,
    kind: &'static str,
    transacted: DateTime<Utc>,
    posted: Option<DateTime<Utc>>,
    updated: DateTime<Utc>,
    description: &'static str,
    categories: [&'static str; 2],
    mcc: Option<u16>,
}

/// Yields Truv response pages (JSON text) one at a time; see the module docs
/// of [`super`] for what they contain. Memory is O(page size).
pub struct TruvGenerator {
    cfg: GenConfig,
    rng: fastrand::Rng,
    accounts: Vec<Acct>,
    emitted: u64,
    next_id: u64,
    clock: DateTime<Utc>,
    mean_gap_secs: i64,
    holds: VecDeque<Hold>,
    ready: VecDeque<Rec>,
    page: u64,
    total_pages: u64,
}

impl TruvGenerator {
    /// A generator for `cfg`.
    pub fn new(cfg: GenConfig) -> TruvGenerator {
        let currencies =
            [("USD", 2), ("USD", 2), ("USD", 2), ("EUR", 2), ("USD", 2), ("USD", 2), ("JPY", 0), ("GBP", 2)];
        let accounts = (0..cfg.accounts.max(1))
            .map(|i| {
                let (currency, minor_units) = currencies[i as usize % currencies.len()];
                Acct { id: format!("acct-{i:04}"), currency, minor_units }
            })
            .collect::<Vec<_>>();
        let mean_gap_secs = (86_400 / (5 * i64::from(cfg.accounts.max(1)))).max(1);
        let total_pages = cfg.transactions.div_ceil(u64::from(cfg.page_size.max(1))).max(1);
        TruvGenerator {
            rng: fastrand::Rng::with_seed(cfg.seed),
            clock: cfg.start.and_time(NaiveTime::from_hms_opt(6, 0, 0).expect("time")).and_utc(),
            cfg,
            accounts,
            emitted: 0,
            next_id: 1,
            mean_gap_secs,
            holds: VecDeque::new(),
            ready: VecDeque::new(),
            page: 0,
            total_pages,
        }
    }

    fn next_record(&mut self) -> Rec {
        if let Some(r) = self.ready.pop_front() {
            return r;
        }
        self.clock += Duration::seconds(self.rng.i64(0..=2 * self.mean_gap_secs));
        if self.holds.front().is_some_and(|h| h.due <= self.clock) {
            return self.holds.pop_front().expect("front").record;
        }
        let account = self.rng.usize(0..self.accounts.len());
        let roll = self.rng.u32(0..1000);
        let id = self.next_id;
        self.next_id += 1;
        let t = self.clock;
        if roll < 60 {
            // Payroll / income credit.
            let minor = self.rng.i64(150_000..=450_000);
            return Rec {
                id,
                account,
                merchant: &MERCHANTS[0],
                minor,
                credit: true,
                status: "POSTED",
                kind: "CREDIT",
                transacted: t,
                posted: Some(t),
                updated: t,
                description: "PAYROLL ACME CORP",
                categories: ["Income", "Paycheck"],
                mcc: None,
            };
        }
        let merchant = pick(self.rng.u32(0..total_weight()));
        let minor = self.rng.i64(merchant.min_minor..=merchant.max_minor);
        let mut rec = Rec {
            id,
            account,
            merchant,
            minor,
            credit: false,
            status: "POSTED",
            kind: "DEBIT",
            transacted: t,
            posted: Some(t + Duration::hours(self.rng.i64(0..=30))),
            updated: t + Duration::hours(31),
            description: merchant.name,
            categories: merchant.category,
            mcc: Some(merchant.mcc),
        };
        match roll {
            60..=89 => {
                // Card hold: pending now, posted 1-3 days later under the same id
                // (with up to 20% tip on tip-prone merchants).
                rec.status = if roll < 75 { "PENDING" } else { "AUTHORIZATION" };
                rec.posted = None;
                rec.updated = t;
                let mut posted = rec.clone();
                let due = t + Duration::hours(self.rng.i64(24..=72));
                posted.status = "POSTED";
                posted.posted = Some(due);
                posted.updated = due;
                if merchant.tips {
                    posted.minor += posted.minor * self.rng.i64(0..=20) / 100;
                }
                let at = self.holds.iter().position(|h| h.due > due).unwrap_or(self.holds.len());
                self.holds.insert(at, Hold { due, record: posted });
            }
            90..=99 => {
                // A true twin: same merchant, amount and day, another id.
                let mut twin = rec.clone();
                twin.id = self.next_id;
                self.next_id += 1;
                twin.transacted += Duration::minutes(3);
                self.ready.push_back(twin);
            }
            100..=109 => {
                rec.status = "MEMO";
                rec.kind = "MEMO";
                rec.description = "BALANCE INQUIRY";
                rec.minor = 0;
            }
            110..=129 => {
                rec.credit = true;
                rec.kind = "CREDIT";
                rec.description = "REFUND";
            }
            _ => {}
        }
        rec
    }

    fn write_record(&self, out: &mut String, r: &Rec) {
        let acct = &self.accounts[r.account];
        let amount = format_minor(if r.credit { r.minor } else { -r.minor }, acct.minor_units);
        // Both documented sign forms: unsigned debits on odd ids.
        let amount = if !r.credit && r.id % 2 == 1 { amount.trim_start_matches('-').to_owned() } else { amount };
        let space_form = r.id % 10 == 3;
        let ts = |t: DateTime<Utc>| {
            if space_form {
                t.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            }
        };
        let mcc = r.mcc.map_or("null".to_owned(), |m| m.to_string());
        let posted = r.posted.map_or("null".to_owned(), |p| format!("\"{}\"", ts(p)));
        let merchant = if r.kind == "DEBIT" { quoted(r.merchant.name) } else { "null".into() };
        let _ = write!(
            out,
            r#"{{"id":"tx-{id:010}","created_at":"{created}","updated_at":"{updated}","account_id":"{acct}","external_id":"ext-{id}","amount":"{amount}","currency_code":"{cur}","check_number":null,"categories":["{c0}","{c1}"],"description":{desc},"merchant_name":{merchant},"status":"{status}","type":"{kind}","posted_at":{posted},"transacted_at":"{transacted}","memo":null,"merchant_category_code":{mcc},"location":{{"latitude":40.730610,"longitude":-73.935242}}}}"#,
            id = r.id,
            created = ts(r.transacted),
            updated = ts(r.updated),
            acct = acct.id,
            cur = acct.currency,
            c0 = r.categories[0],
            c1 = r.categories[1],
            desc = quoted(r.description),
            status = r.status,
            kind = r.kind,
            transacted = ts(r.transacted),
        );
    }
}

/// Decimal text of `minor` minor units at `units` digits (`-475`, 2 → `-4.75`).
pub(super) fn format_minor(minor: i64, units: u32) -> String {
    if units == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(units);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:0width$}", abs / scale as u64, abs % scale as u64, width = units as usize)
}

fn page_url(page: u64, size: u32) -> String {
    if page == 1 {
        format!("\"{BASE}?page_size={size}\"")
    } else {
        format!("\"{BASE}?page={page}&page_size={size}\"")
    }
}

impl Iterator for TruvGenerator {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.page >= self.total_pages {
            return None;
        }
        self.page += 1;
        let size = self.cfg.page_size.max(1);
        let n = (self.cfg.transactions - self.emitted).min(u64::from(size));
        let mut out = String::with_capacity(700 * n as usize + 4096);
        let next = if self.page < self.total_pages { page_url(self.page + 1, size) } else { "null".into() };
        let prev = if self.page > 1 { page_url(self.page - 1, size) } else { "null".into() };
        let _ = write!(out, r#"{{"count":{},"next":{next},"previous":{prev},"accounts":["#, self.cfg.transactions);
        for (i, a) in self.accounts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                r#"{{"id":"{id}","created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-01T00:00:00Z","type":"CHECKING","subtype":null,"mask":"{mask:04}","nickname":"Account {i}","balances":{{"currency_code":"{cur}","balance":"{bal}","available_balance":null,"credit_limit":null}}}}"#,
                id = a.id,
                mask = 1000 + i,
                cur = a.currency,
                bal = format_minor(250_000, a.minor_units),
            );
        }
        out.push_str(r#"],"transactions":["#);
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            let r = self.next_record();
            self.write_record(&mut out, &r);
        }
        self.emitted += n;
        out.push_str("]}\n");
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_minor_units() {
        assert_eq!(format_minor(-475, 2), "-4.75");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-500, 0), "-500");
        assert_eq!(format_minor(1250, 3), "1.250");
    }
}
