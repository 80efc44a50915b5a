//! Truv simulator: `GET /v1/links/{link_id}/transactions/` (seeds 001/002
//! and the facts in seeds/README.md).
//!
//! Auth: `X-Access-Client-Id` and `X-Access-Secret` must match, else 401
//! `{"error": {"code": "unauthorized", …}}`. Query: `account_ids`
//! (comma-separated), `transacted_at_from`/`transacted_at_to` (ISO 8601 date
//! or date-time, inclusive), `page` (1-based), `page_size` (1..=1000,
//! default 100). Transactions are listed in `transacted_at` order. Pages
//! carry `count`, DRF-style `next`/`previous` URLs,
//! the link's `accounts` and, when enabled, `daily_totals` computed from
//! the posted transactions of the whole result.
//!
//! One simulator serves one link ([`TruvSim::new`]) or several
//! ([`TruvSim::with_links`]: each link id its own data, the same
//! credentials, as one Truv platform serves its users' links); any other
//! link id is a 404.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::faults::{json_response, Faults};

/// Accounts and transactions served, as Truv JSON objects.
#[derive(Clone, Debug, Default)]
pub struct TruvData {
    /// Account objects.
    pub accounts: Vec<Value>,
    /// Transaction objects, in the order served.
    pub transactions: Vec<Value>,
}

impl TruvData {
    /// Collect accounts (last sighting per id) and transactions (first-seen
    /// order; per id the sighting with the newest `updated_at`, as the
    /// server's current state would be) from recorded page files.
    ///
    /// # Errors
    /// I/O or JSON errors naming the file.
    pub fn from_recorded(dir: &Path) -> Result<TruvData, String> {
        let files = bankpipe_sources::recorded::page_files(dir).map_err(|e| e.to_string())?;
        let mut accounts: BTreeMap<String, Value> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut txns: BTreeMap<String, Value> = BTreeMap::new();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let page: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
            for a in page["accounts"].as_array().into_iter().flatten() {
                accounts.insert(a["id"].as_str().unwrap_or_default().to_owned(), a.clone());
            }
            for t in page["transactions"].as_array().into_iter().flatten() {
                let id = t["id"].as_str().unwrap_or_default().to_owned();
                match txns.get(&id) {
                    None => {
                        order.push(id.clone());
                        txns.insert(id, t.clone());
                    }
                    Some(held) if instant(&t["updated_at"]) >= instant(&held["updated_at"]) => {
                        txns.insert(id, t.clone());
                    }
                    Some(_) => {}
                }
            }
        }
        let transactions = order.into_iter().filter_map(|id| txns.remove(&id)).collect();
        Ok(TruvData { accounts: accounts.into_values().collect(), transactions })
    }

    /// Data from the deterministic generator.
    pub fn generated(cfg: bankpipe_gen::GenConfig) -> TruvData {
        let mut data = TruvData::default();
        let mut seen = std::collections::HashSet::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for page in bankpipe_gen::TruvGenerator::new(cfg) {
            let page: Value = serde_json::from_str(&page).expect("generator writes JSON");
            if data.accounts.is_empty() {
                data.accounts = page["accounts"].as_array().cloned().unwrap_or_default();
            }
            for t in page["transactions"].as_array().into_iter().flatten() {
                // A later sighting (pending -> posted) replaces the earlier one in place.
                let id = t["id"].as_str().unwrap_or_default().to_owned();
                if seen.insert(id.clone()) {
                    index.insert(id, data.transactions.len());
                    data.transactions.push(t.clone());
                } else if let Some(i) = index.get(&id) {
                    data.transactions[*i] = t.clone();
                }
            }
        }
        data
    }
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct TruvConfig {
    /// The link served by [`TruvSim::new`]; the link whose data
    /// [`TruvSim::push_transactions`] and [`TruvSim::remove_transactions`]
    /// change.
    pub link_id: String,
    /// Expected `X-Access-Client-Id`.
    pub client_id: String,
    /// Expected `X-Access-Secret`.
    pub secret: String,
    /// Include `daily_totals` (the newer response shape).
    pub daily_totals: bool,
    /// Dates (`YYYY-MM-DD`) whose reported `daily_totals` entry is off by
    /// +1.00 (a source whose own figure disagrees with its rows: bankpipe
    /// must report it, never "fix" either side).
    pub skew_daily_totals: Vec<String>,
    /// Faults to inject.
    pub faults: Faults,
    /// With `faults.drift`: stop inserting records after this many page
    /// requests (a burst of activity during one walk); `None` = every request.
    pub drift_limit: Option<u64>,
}

impl Default for TruvConfig {
    fn default() -> Self {
        TruvConfig {
            link_id: "24d7e80942ce4ad58a93f70ce4115f5c".into(),
            client_id: "sim-client".into(),
            secret: "sim-secret".into(),
            daily_totals: false,
            skew_daily_totals: Vec::new(),
            faults: Faults::none(),
            drift_limit: None,
        }
    }
}

/// The simulator's state.
pub struct TruvSim {
    config: TruvConfig,
    /// Per link id, its data.
    links: BTreeMap<String, Mutex<Indexed>>,
    requests: AtomicU64,
    drift_serial: AtomicU64,
}

/// The data with an index of transactions by `transacted_at`, so that a
/// page request costs O(log n + page) instead of a scan of all history.
struct Indexed {
    data: TruvData,
    /// `(transacted_at, position)` sorted; rebuilt when the data changes.
    by_time: Vec<(DateTime<Utc>, usize)>,
    dirty: bool,
}

impl Indexed {
    fn index(&mut self) -> &[(DateTime<Utc>, usize)] {
        if self.dirty {
            self.by_time = self
                .data
                .transactions
                .iter()
                .enumerate()
                .map(|(i, t)| (instant(&t["transacted_at"]).unwrap_or(DateTime::<Utc>::MIN_UTC), i))
                .collect();
            self.by_time.sort();
            self.dirty = false;
        }
        &self.by_time
    }
}

impl TruvSim {
    /// A simulator serving `data` as the link `config.link_id`.
    pub fn new(config: TruvConfig, data: TruvData) -> Arc<TruvSim> {
        let link = config.link_id.clone();
        TruvSim::with_links(config, [(link, data)])
    }

    /// A simulator serving several links, each link id with its own data
    /// (a later entry with the same id replaces an earlier one). Faults and
    /// credentials are shared. `config.link_id` is served only if listed.
    pub fn with_links(config: TruvConfig, links: impl IntoIterator<Item = (String, TruvData)>) -> Arc<TruvSim> {
        let links = links
            .into_iter()
            .map(|(id, data)| (id, Mutex::new(Indexed { data, by_time: Vec::new(), dirty: true })))
            .collect();
        Arc::new(TruvSim { config, links, requests: AtomicU64::new(0), drift_serial: AtomicU64::new(0) })
    }

    /// The data of `config.link_id`.
    ///
    /// # Panics
    /// That link is not served (a test set the simulator up wrong).
    fn main_link(&self) -> std::sync::MutexGuard<'_, Indexed> {
        self.links.get(&self.config.link_id).expect("config.link_id is served").lock().expect("data lock")
    }

    /// Requests received so far (authorized or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// New activity between syncs on the link `config.link_id`: each
    /// transaction replaces the one with its id (a server holds one current
    /// state per transaction: a pending row that posts under its own id
    /// changes in place), else is appended.
    pub fn push_transactions(&self, more: impl IntoIterator<Item = Value>) {
        let mut data = self.main_link();
        for t in more {
            let existing = data.data.transactions.iter().position(|x| x["id"] == t["id"]);
            match existing {
                Some(i) => data.data.transactions[i] = t,
                None => data.data.transactions.push(t),
            }
        }
        data.dirty = true;
    }

    /// Remove the transactions with these ids from the link
    /// `config.link_id` (a bank dropping a hold).
    pub fn remove_transactions(&self, ids: &[&str]) {
        let mut data = self.main_link();
        data.data.transactions.retain(|t| !ids.iter().any(|id| t["id"] == *id));
        data.dirty = true;
    }

    /// The axum router.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route("/v1/links/{link_id}/transactions/", get(handle)).with_state(Arc::clone(self))
    }
}

fn truv_error(status: StatusCode, code: &str, message: &str, extra: Option<Value>) -> Response<Body> {
    let mut e = json!({"error": {"code": code, "message": message}});
    if let Some(x) = extra {
        e["error"]["extra"] = x;
    }
    json_response(status, e.to_string())
}

fn bound(text: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let t = if end_of_day { d.and_hms_opt(23, 59, 59) } else { d.and_hms_opt(0, 0, 0) };
        return t.map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

fn instant(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn handle(
    State(sim): State<Arc<TruvSim>>,
    UrlPath(link_id): UrlPath<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response<Body> {
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let faults = &sim.config.faults;
    faults.delay().await;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if header("x-access-client-id") != sim.config.client_id || header("x-access-secret") != sim.config.secret {
        return truv_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid client id or access secret", None);
    }
    let Some(link) = sim.links.get(&link_id) else {
        return truv_error(StatusCode::NOT_FOUND, "not_found", "Link not found", None);
    };
    if let Some(e) = faults.server_error() {
        return e;
    }
    let mut invalid = Vec::new();
    let number = |k: &str, default: usize, max: usize, invalid: &mut Vec<Value>| match q.get(k) {
        None => default,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                invalid.push(json!({"field": k, "message": format!("must be an integer 1..={max}")}));
                default
            }
        },
    };
    let page = number("page", 1, usize::MAX, &mut invalid);
    let page_size = number("page_size", 100, 1000, &mut invalid);
    let mut range = |k: &str, end: bool| {
        q.get(k).and_then(|v| {
            let b = bound(v, end);
            if b.is_none() {
                invalid.push(json!({"field": k, "message": "must be an ISO 8601 date or date-time"}));
            }
            b
        })
    };
    let from = range("transacted_at_from", false);
    let to = range("transacted_at_to", true);
    if !invalid.is_empty() {
        return truv_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid query parameters",
            Some(json!({"invalid-params": invalid})),
        );
    }
    let account_ids: Option<Vec<&str>> = q.get("account_ids").map(|s| s.split(',').map(str::trim).collect());

    let body = {
        let mut guard = link.lock().expect("data lock");
        let index = guard.index();
        // Served in time order; positions within the window by binary search.
        let lo = from.map_or(0, |f| index.partition_point(|(t, _)| *t < f));
        let hi = to.map_or(index.len(), |e| index.partition_point(|(t, _)| *t <= e));
        let positions: Vec<usize> = index[lo..hi.max(lo)].iter().map(|(_, i)| *i).collect();
        let data = &guard.data;
        let selected: Vec<&Value> = positions
            .into_iter()
            .map(|i| &data.transactions[i])
            .filter(|t| account_ids.as_ref().is_none_or(|ids| ids.contains(&t["account_id"].as_str().unwrap_or(""))))
            .collect();
        let total = selected.len();
        let pages = total.div_ceil(page_size).max(1);
        if page > pages {
            return truv_error(StatusCode::NOT_FOUND, "not_found", "Invalid page.", None);
        }
        let host = header("host").to_owned();
        let link = |p: usize| {
            let mut params: Vec<(String, String)> =
                q.iter().filter(|(k, _)| k.as_str() != "page").map(|(k, v)| (k.clone(), v.clone())).collect();
            if p > 1 {
                params.push(("page".into(), p.to_string()));
            }
            params.sort();
            let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
            Value::String(format!("http://{host}/v1/links/{link_id}/transactions/?{}", query.join("&")))
        };
        let accounts: Vec<&Value> = data
            .accounts
            .iter()
            .filter(|a| account_ids.as_ref().is_none_or(|ids| ids.contains(&a["id"].as_str().unwrap_or(""))))
            .collect();
        let items: Vec<&Value> = selected.iter().skip((page - 1) * page_size).take(page_size).copied().collect();
        let body = PageBody {
            accounts,
            count: total,
            daily_totals: sim.config.daily_totals.then(|| daily_totals(&selected, &sim.config.skew_daily_totals)),
            next: if page < pages { link(page + 1) } else { Value::Null },
            previous: if page > 1 { link(page - 1) } else { Value::Null },
            transactions: items,
        };
        serde_json::to_string(&body).expect("JSON values serialize")
    };
    if faults.drift && sim.config.drift_limit.is_none_or(|l| sim.drift_serial.load(Ordering::Relaxed) < l) {
        let n = sim.drift_serial.fetch_add(1, Ordering::Relaxed);
        let mut data = link.lock().expect("data lock");
        let earliest = data.index().first().map(|(_, i)| *i);
        if let Some(i) = earliest {
            // A new record at the very start of the listing shifts every page by one.
            let mut fresh = data.data.transactions[i].clone();
            fresh["id"] = Value::String(format!("drift-{n}"));
            fresh["description"] = Value::String("NEW ACTIVITY DURING THE WALK".into());
            data.data.transactions.push(fresh);
            data.dirty = true;
        }
    }
    if Faults::roll(faults.malformed_page_rate) {
        return json_response(StatusCode::OK, body[..body.len() / 2].to_owned());
    }
    faults.maybe_drop(json_response(StatusCode::OK, body))
}

/// A transactions page, serialized from the stored records without copying
/// them. Fields in alphabetical order: the bytes are those of the `json!`
/// object it replaced (serde_json's map sorts its keys).
#[derive(serde::Serialize)]
struct PageBody<'a> {
    accounts: Vec<&'a Value>,
    count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    daily_totals: Option<Value>,
    next: Value,
    previous: Value,
    transactions: Vec<&'a Value>,
}

/// Per-day totals over posted, non-MEMO transactions (sign from `type`), by
/// `posted_at` date in UTC; the documented entry has no account id.
fn daily_totals(selected: &[&Value], skew: &[String]) -> Value {
    let mut days: BTreeMap<String, (Decimal, u64)> = BTreeMap::new();
    for t in selected {
        if t["status"] != "POSTED" || t["type"] == "MEMO" {
            continue;
        }
        let (Some(posted), Some(amount)) = (instant(&t["posted_at"]), t["amount"].as_str()) else { continue };
        let Ok(value) = amount.parse::<Decimal>() else { continue };
        let signed = if t["type"] == "DEBIT" { -value.abs() } else { value.abs() };
        let e = days.entry(posted.date_naive().to_string()).or_default();
        e.0 += signed;
        e.1 += 1;
    }
    Value::Array(
        days.into_iter()
            .map(|(date, (net, count))| {
                let net = if skew.contains(&date) { net + Decimal::ONE } else { net };
                json!({"date": date, "net_total": net.to_string(), "transaction_count": count})
            })
            .collect(),
    )
}

pub(crate) fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page body is byte for byte the `json!` object it replaced.
    #[test]
    fn page_body_serializes_as_the_json_object() {
        let account = json!({"id": "a-1", "balances": {"currency_code": "USD", "balance": "1.00"}});
        let tx = json!({"id": "t-1", "amount": "4.75", "account_id": "a-1", "categories": ["x", "y"]});
        for daily in [None, Some(json!([{"date": "2024-03-01", "net_total": "-4.75", "transaction_count": 1}]))] {
            let body = PageBody {
                accounts: vec![&account],
                count: 1,
                daily_totals: daily.clone(),
                next: Value::Null,
                previous: Value::String("http://h/v1/links/l/transactions/?page_size=100".into()),
                transactions: vec![&tx],
            };
            let mut expected = json!({
                "count": 1,
                "next": Value::Null,
                "previous": "http://h/v1/links/l/transactions/?page_size=100",
                "accounts": [&account],
                "transactions": [&tx],
            });
            if let Some(d) = daily {
                expected["daily_totals"] = d;
            }
            assert_eq!(serde_json::to_string(&body).unwrap(), expected.to_string());
        }
    }
}
