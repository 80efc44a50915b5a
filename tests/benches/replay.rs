//! Replay against its floor (issue #12 item 5), measured in one run:
//!
//! - **bankpipe**: `bankpipe replay --truv DIR --out OUT` (the release
//!   binary: the sync pipeline over recordings into the in-memory store,
//!   dedupe, reconciliation, the canonical files);
//! - **floor**: a minimal program doing the same essential work on the same
//!   pages with none of the pipeline — borrowed `serde_json` parse of each
//!   page, normalization (sign from `type`, status, booking date from
//!   `posted_at`/`transacted_at` in UTC, exact minor units, the canonical
//!   id), identity dedupe (newest `updated_at` wins), the (booking date, id)
//!   order, the 32-column `transactions.csv`, `transactions.jsonl` and
//!   `daily_totals.csv` reconciled against the pages' `daily_totals`, the two
//!   transaction files written on 2 threads. It does not categorize, pair
//!   pending → posted or write accounts/quarantine: it is a lower bound.
//!
//! Each is run REPLAY_BENCH_RUNS times (default 7) on REPLAY_BENCH_N
//! (default 200,000) generated Truv records; the minimum wall times and
//! their ratio are printed. Target: bankpipe within 1.25× of the floor.
//!
//! `cargo bench --bench replay`

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bankpipe_gen::{write_pages, GenConfig, TruvGenerator};
use bankpipe_model::CanonicalId;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    transactions: Vec<Txn<'a>>,
    #[serde(default, borrow)]
    daily_totals: Option<Vec<Reported<'a>>>,
}

#[derive(Deserialize)]
struct Txn<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    updated_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account_id: Cow<'a, str>,
    #[serde(borrow)]
    external_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    amount: Cow<'a, str>,
    #[serde(borrow)]
    currency_code: Cow<'a, str>,
    #[serde(borrow)]
    categories: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    description: Cow<'a, str>,
    #[serde(borrow)]
    merchant_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    posted_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    transacted_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    memo: Option<Cow<'a, str>>,
    merchant_category_code: Option<u16>,
}

#[derive(Deserialize)]
struct Reported<'a> {
    #[serde(borrow)]
    date: Cow<'a, str>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    net_total: Cow<'a, str>,
    transaction_count: u64,
}

/// One normalized row, borrowing the page text.
struct Row<'a> {
    id: CanonicalId,
    t: Txn<'a>,
    minor: i64,
    digits: u32,
    booking_date: NaiveDate,
    posted: bool,
    memo: bool,
    transacted_at: Option<DateTime<Utc>>,
    posted_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

fn digits(code: &str) -> u32 {
    match code {
        "JPY" | "KRW" => 0,
        "KWD" | "BHD" => 3,
        _ => 2,
    }
}

fn instant(v: &Option<Cow<'_, str>>) -> Option<DateTime<Utc>> {
    v.as_deref().map(|t| DateTime::parse_from_rfc3339(t).expect("instant").to_utc())
}

fn normalize(t: Txn<'_>) -> Row<'_> {
    let digits = digits(&t.currency_code);
    let amount: Decimal = t.amount.parse().expect("amount");
    let scaled = amount.abs() * Decimal::from(10i64.pow(digits));
    assert!(scaled.fract().is_zero(), "no digit lost");
    let magnitude = i64::try_from(scaled).expect("fits minor units");
    let (minor, memo_type) = match &*t.kind {
        "DEBIT" => (-magnitude, false),
        "CREDIT" => (magnitude, false),
        _ => (magnitude, true),
    };
    let posted = t.status == "POSTED";
    let memo = memo_type || t.status == "MEMO";
    let (transacted_at, posted_at, updated_at) =
        (instant(&t.transacted_at), instant(&t.posted_at), instant(&t.updated_at));
    let booking_date = posted_at.or(transacted_at).expect("a booking instant").date_naive();
    Row {
        id: CanonicalId::for_transaction("truv", &t.account_id, &t.id),
        t,
        minor,
        digits,
        booking_date,
        posted: posted || memo,
        memo,
        transacted_at,
        posted_at,
        updated_at,
    }
}

fn decimal(minor: i64, digits: u32) -> Decimal {
    Decimal::new(minor, digits)
}

fn rfc3339(t: &Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)).unwrap_or_default()
}

/// The JSONL row: the CSV's 32 columns with typed values.
#[derive(Serialize)]
struct JsonRow<'a> {
    id: String,
    source: &'a str,
    source_account_id: &'a str,
    source_transaction_id: &'a str,
    status: &'a str,
    booking_date: String,
    amount: String,
    currency: &'a str,
    description: &'a str,
    merchant_name: Option<&'a str>,
    mcc: Option<String>,
    category: Option<&'a str>,
    category_source: &'a str,
    kind: &'a str,
    counts: bool,
    duplicate_of: Option<&'a str>,
    superseded_by: Option<&'a str>,
    transacted_at: Option<String>,
    posted_at: Option<String>,
    updated_at: Option<String>,
    source_status: &'a str,
    source_type: &'a str,
    external_id: Option<&'a str>,
    group_id: Option<&'a str>,
    source_categories: Vec<&'a str>,
    memo: Option<&'a str>,
    check_number: Option<&'a str>,
    foreign_amount: Option<&'a str>,
    foreign_currency: Option<&'a str>,
    tags: Vec<&'a str>,
    notes: Option<&'a str>,
    budget_name: Option<&'a str>,
}

fn write_csv(rows: &[Row<'_>], path: &Path) {
    let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap()));
    w.write_record(["id"; 32]).unwrap();
    for r in rows {
        let t = &r.t;
        let record: [Cow<'_, str>; 32] = [
            r.id.to_string().into(),
            "truv".into(),
            t.account_id.as_ref().into(),
            t.id.as_ref().into(),
            (if r.posted { "posted" } else { "pending" }).into(),
            r.booking_date.to_string().into(),
            decimal(r.minor, r.digits).to_string().into(),
            t.currency_code.as_ref().into(),
            t.description.as_ref().into(),
            t.merchant_name.as_deref().unwrap_or("").into(),
            t.merchant_category_code.map(|m| format!("{m:04}")).unwrap_or_default().into(),
            "".into(),
            "default".into(),
            (if r.minor < 0 { "expense" } else { "income" }).into(),
            (if r.posted && !r.memo { "1" } else { "0" }).into(),
            "".into(),
            "".into(),
            rfc3339(&r.transacted_at).into(),
            rfc3339(&r.posted_at).into(),
            rfc3339(&r.updated_at).into(),
            t.status.as_ref().into(),
            t.kind.as_ref().into(),
            t.external_id.as_deref().unwrap_or("").into(),
            "".into(),
            t.categories.join(" | ").into(),
            t.memo.as_deref().unwrap_or("").into(),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
        ];
        w.write_record(record.iter().map(|f| f.as_bytes())).unwrap();
    }
    w.flush().unwrap();
}

fn write_jsonl(rows: &[Row<'_>], path: &Path) {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    for r in rows {
        let t = &r.t;
        let row = JsonRow {
            id: r.id.to_string(),
            source: "truv",
            source_account_id: &t.account_id,
            source_transaction_id: &t.id,
            status: if r.posted { "posted" } else { "pending" },
            booking_date: r.booking_date.to_string(),
            amount: decimal(r.minor, r.digits).to_string(),
            currency: &t.currency_code,
            description: &t.description,
            merchant_name: t.merchant_name.as_deref(),
            mcc: t.merchant_category_code.map(|m| format!("{m:04}")),
            category: None,
            category_source: "default",
            kind: if r.minor < 0 { "expense" } else { "income" },
            counts: r.posted && !r.memo,
            duplicate_of: None,
            superseded_by: None,
            transacted_at: r.transacted_at.map(|t| t.to_rfc3339()),
            posted_at: r.posted_at.map(|t| t.to_rfc3339()),
            updated_at: r.updated_at.map(|t| t.to_rfc3339()),
            source_status: &t.status,
            source_type: &t.kind,
            external_id: t.external_id.as_deref(),
            group_id: None,
            source_categories: t.categories.iter().map(|c| c.as_ref()).collect(),
            memo: t.memo.as_deref(),
            check_number: None,
            foreign_amount: None,
            foreign_currency: None,
            tags: Vec::new(),
            notes: None,
            budget_name: None,
        };
        serde_json::to_writer(&mut w, &row).unwrap();
        w.write_all(b"\n").unwrap();
    }
    w.flush().unwrap();
}

/// The floor: every page of `dir` in, the three files in `out`.
fn floor(dir: &Path, out: &Path) -> usize {
    std::fs::create_dir_all(out).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let texts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let mut rows: Vec<Row<'_>> = Vec::new();
    let mut reported: Vec<Reported<'_>> = Vec::new();
    // Identity dedupe: the newest updated_at of each canonical id.
    let mut at: HashMap<CanonicalId, usize> = HashMap::new();
    for text in &texts {
        let page: Page<'_> = serde_json::from_str(text).unwrap();
        reported.extend(page.daily_totals.into_iter().flatten());
        for t in page.transactions {
            let row = normalize(t);
            match at.get(&row.id) {
                Some(&i) if rows[i].updated_at > row.updated_at => {}
                Some(&i) => rows[i] = row,
                None => {
                    at.insert(row.id, rows.len());
                    rows.push(row);
                }
            }
        }
    }
    rows.sort_unstable_by_key(|a| (a.booking_date, a.id));
    let mut totals: BTreeMap<(&str, NaiveDate, &str), (i64, u64)> = BTreeMap::new();
    std::thread::scope(|s| {
        let jsonl = s.spawn(|| write_jsonl(&rows, &out.join("transactions.jsonl")));
        let csv = s.spawn(|| write_csv(&rows, &out.join("transactions.csv")));
        for r in rows.iter().filter(|r| r.posted && !r.memo) {
            let e = totals.entry((&r.t.account_id, r.booking_date, &r.t.currency_code)).or_default();
            e.0 = e.0.checked_add(r.minor).expect("no overflow");
            e.1 += 1;
        }
        jsonl.join().unwrap();
        csv.join().unwrap();
    });
    let reported: HashMap<(&str, &str), (&str, u64)> = reported
        .iter()
        .filter_map(|r| Some(((r.account_id.as_deref()?, &*r.date), (&*r.net_total, r.transaction_count))))
        .collect();
    let mut w = csv::Writer::from_path(out.join("daily_totals.csv")).unwrap();
    for ((account, date, currency), (minor, count)) in &totals {
        let net = decimal(*minor, digits(currency)).to_string();
        let date = date.to_string();
        let (status, source_net, source_count) = match reported.get(&(*account, date.as_str())) {
            Some((n, c)) if *n == net && *c == *count => ("match", n.to_string(), c.to_string()),
            Some((n, c)) => ("mismatch", n.to_string(), c.to_string()),
            None => ("computed", String::new(), String::new()),
        };
        w.write_record([*account, &date, *currency, &net, &count.to_string(), &source_net, &source_count, status])
            .unwrap();
    }
    w.flush().unwrap();
    rows.len()
}

fn env_n(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Wall time of one call of `f`, in seconds.
fn timed(f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_n("REPLAY_BENCH_N", 200_000);
    let runs = env_n("REPLAY_BENCH_RUNS", 7).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let pages = tmp.path().join("pages");
    let cfg = GenConfig { transactions: n, ..GenConfig::default() };
    let files = write_pages(&pages, TruvGenerator::new(cfg)).unwrap();
    let bytes: u64 = std::fs::read_dir(&pages).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    println!("replay bench: {n} Truv records, {files} pages, {:.1} MB", bytes as f64 / 1e6);

    let exe = env!("CARGO_BIN_EXE_bankpipe");
    let out = tmp.path().join("bankpipe");
    let floor_out = tmp.path().join("floor");
    // The two alternate, so that a noisy neighbour on the machine weighs on
    // both alike; the minimum of each is kept.
    let (mut bankpipe, mut floor_s, mut floor_rows) = (f64::INFINITY, f64::INFINITY, 0);
    for _ in 0..runs {
        bankpipe = bankpipe.min(timed(|| {
            let o = Command::new(exe)
                .args(["replay", "--truv", pages.to_str().unwrap(), "--out", out.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }));
        floor_s = floor_s.min(timed(|| floor_rows = floor(&pages, &floor_out)));
    }
    let written = std::fs::read_to_string(out.join("transactions.csv")).unwrap().lines().count() - 1;
    assert_eq!(floor_rows, written, "the floor and bankpipe write the same number of transactions");
    println!("bankpipe replay: {bankpipe:.3} s (min of {runs}), {written} transactions");
    println!("floor:           {floor_s:.3} s (min of {runs})");
    println!("ratio:           {:.2}x (target <= 1.25x)", bankpipe / floor_s);
}
