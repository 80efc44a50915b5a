//! Firefly III page generator.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use super::merchants::{pick, total_weight};
use super::truv::format_minor;
use super::{quoted, GenConfig};

const BASE: &str = "https://firefly.example.com/api/v1/transactions";

/// Yields Firefly III `/api/v1/transactions` pages (JSON text). Pages hold at
/// most `page_size` splits and never cut a group; `meta.pagination.count`
/// and `total` count splits, as the real API does.
pub struct FireflyGenerator {
    cfg: GenConfig,
    rng: fastrand::Rng,
    /// Split count of every group, planned up front (1 byte per group).
    sizes: Vec<u8>,
    /// Index of the first group of each page.
    page_starts: Vec<usize>,
    page: usize,
    group: usize,
    journal: u64,
    clock: DateTime<Utc>,
}

impl FireflyGenerator {
    /// A generator for `cfg`.
    pub fn new(cfg: GenConfig) -> FireflyGenerator {
        let mut plan = fastrand::Rng::with_seed(cfg.seed ^ 0x5eed);
        let mut sizes = Vec::new();
        let mut left = cfg.transactions;
        while left > 0 {
            let s = match plan.u32(0..100) {
                0..=7 => 2,
                8..=9 => 3,
                _ => 1,
            }
            .min(left as u32) as u8;
            sizes.push(s);
            left -= u64::from(s);
        }
        let limit = cfg.page_size.max(3);
        let mut page_starts = vec![0];
        let mut on_page = 0;
        for (i, s) in sizes.iter().enumerate() {
            if on_page + u32::from(*s) > limit {
                page_starts.push(i);
                on_page = 0;
            }
            on_page += u32::from(*s);
        }
        FireflyGenerator {
            rng: fastrand::Rng::with_seed(cfg.seed),
            clock: cfg.start.and_time(NaiveTime::from_hms_opt(8, 0, 0).expect("time")).and_utc(),
            cfg,
            sizes,
            page_starts,
            page: 0,
            group: 0,
            journal: 1,
        }
    }

    fn write_group(&mut self, out: &mut String, size: u8) {
        let gid = self.group + 1;
        self.clock += Duration::minutes(self.rng.i64(1..=240));
        let date = self.clock.format("%Y-%m-%dT%H:%M:%S+01:00").to_string();
        let _ = write!(
            out,
            r#"{{"type":"transactions","id":"{gid}","attributes":{{"created_at":"{date}","updated_at":"{date}","user":"1","group_title":null,"transactions":["#
        );
        let accounts = self.cfg.accounts.max(2);
        let transfer = size == 1 && self.rng.u32(0..100) < 5;
        let deposit = !transfer && size == 1 && self.rng.u32(0..100) < 8;
        let own = self.rng.u32(1..=accounts);
        for j in 0..size {
            if j > 0 {
                out.push(',');
            }
            let m = pick(self.rng.u32(0..total_weight()));
            let minor = self.rng.i64(m.min_minor..=m.max_minor);
            let amount = format!("{}0000000000", format_minor(minor, 2));
            let (kind, src, dst, desc, cat) = if transfer {
                let other = own % accounts + 1;
                (
                    "transfer",
                    asset("source", own),
                    asset("destination", other),
                    "Savings transfer".to_owned(),
                    "null".to_owned(),
                )
            } else if deposit {
                (
                    "deposit",
                    r#""source_id":"9000","source_name":"Employer","source_type":"Revenue account""#.to_owned(),
                    asset("destination", own),
                    "Salary".to_owned(),
                    quoted("Salary"),
                )
            } else {
                (
                    "withdrawal",
                    asset("source", own),
                    format!(
                        r#""destination_id":"{}","destination_name":{},"destination_type":"Expense account""#,
                        5000 + u32::from(m.mcc),
                        quoted(m.name)
                    ),
                    m.name.to_owned(),
                    quoted(m.category[1]),
                )
            };
            let _ = write!(
                out,
                r#"{{"user":"1","transaction_journal_id":"{jid}","type":"{kind}","date":"{date}","order":{j},"currency_id":"1","currency_code":"USD","currency_symbol":"$","currency_decimal_places":2,"foreign_amount":null,"foreign_currency_code":null,"amount":"{amount}","description":{desc},{src},{dst},"budget_name":null,"category_name":{cat},"tags":[],"notes":null,"external_id":null}}"#,
                jid = self.journal,
                desc = quoted(&desc),
            );
            self.journal += 1;
        }
        out.push_str("]}}");
    }
}

fn asset(role: &str, id: u32) -> String {
    format!(r#""{role}_id":"{id}","{role}_name":"Asset {id}","{role}_type":"Asset account""#)
}

impl Iterator for FireflyGenerator {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.page >= self.page_starts.len() || self.sizes.is_empty() {
            return None;
        }
        let start = self.page_starts[self.page];
        let end = self.page_starts.get(self.page + 1).copied().unwrap_or(self.sizes.len());
        self.page += 1;
        let count: u64 = self.sizes[start..end].iter().map(|s| u64::from(*s)).sum();
        let mut out = String::with_capacity(800 * count as usize + 1024);
        out.push_str(r#"{"data":["#);
        for g in start..end {
            if g > start {
                out.push(',');
            }
            self.group = g;
            let size = self.sizes[g];
            self.write_group(&mut out, size);
        }
        let total_pages = self.page_starts.len();
        let next =
            if self.page < total_pages { format!(r#","next":"{BASE}?page={}""#, self.page + 1) } else { String::new() };
        let _ = write!(
            out,
            r#"],"meta":{{"pagination":{{"total":{total},"count":{count},"per_page":{per},"current_page":{page},"total_pages":{total_pages}}}}},"links":{{"self":"{BASE}?page={page}"{next}}}}}"#,
            total = self.cfg.transactions,
            per = self.cfg.page_size,
            page = self.page,
        );
        out.push('\n');
        Some(out)
    }
}
