//! Firefly III simulator: `GET /api/v1/transactions` (seed 004 and the
//! facts in seeds/README.md).
//!
//! Auth: `Authorization: Bearer <PAT>`, else 401 `{"message":
//! "Unauthenticated.", "exception": "AuthenticationException"}`. Query:
//! `start`/`end` (YYYY-MM-DD, inclusive, on the split date as written),
//! `type`, `limit` (default 50), `page`. Pages hold whole groups, at most
//! `limit` splits each; `meta.pagination.total`/`count` count splits;
//! `links.next`/`prev` are omitted when absent.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::faults::{json_response, Faults};

/// Transaction groups served, as Firefly JSON objects.
#[derive(Clone, Debug, Default)]
pub struct FireflyData {
    /// Groups (`{"type": "transactions", "id", "attributes": {…}}`).
    pub groups: Vec<Value>,
}

impl FireflyData {
    /// Collect groups (last sighting per id, first-seen order) from recorded pages.
    ///
    /// # Errors
    /// I/O or JSON errors naming the file.
    pub fn from_recorded(dir: &Path) -> Result<FireflyData, String> {
        let files = bankpipe_sources::recorded::page_files(dir).map_err(|e| e.to_string())?;
        let mut order = Vec::new();
        let mut groups: BTreeMap<String, Value> = BTreeMap::new();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let page: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
            for g in page["data"].as_array().into_iter().flatten() {
                let id = g["id"].to_string();
                if groups.insert(id.clone(), g.clone()).is_none() {
                    order.push(id);
                }
            }
        }
        Ok(FireflyData { groups: order.into_iter().filter_map(|id| groups.remove(&id)).collect() })
    }

    /// Data from the deterministic generator.
    pub fn generated(cfg: bankpipe_gen::GenConfig) -> FireflyData {
        let mut data = FireflyData::default();
        for page in bankpipe_gen::FireflyGenerator::new(cfg) {
            let page: Value = serde_json::from_str(&page).expect("generator writes JSON");
            data.groups.extend(page["data"].as_array().cloned().unwrap_or_default());
        }
        data
    }
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct FireflyConfig {
    /// Expected personal access token.
    pub token: String,
    /// Faults to inject.
    pub faults: Faults,
    /// With `faults.drift`: stop inserting groups after this many page
    /// requests (a burst of activity during one walk); `None` = every request.
    pub drift_limit: Option<u64>,
}

impl Default for FireflyConfig {
    fn default() -> Self {
        FireflyConfig { token: "sim-firefly-token".into(), faults: Faults::none(), drift_limit: None }
    }
}

/// The simulator's state.
pub struct FireflySim {
    config: FireflyConfig,
    data: Mutex<FireflyData>,
    requests: AtomicU64,
    drift_serial: AtomicU64,
}

impl FireflySim {
    /// A simulator over `data`.
    pub fn new(config: FireflyConfig, data: FireflyData) -> Arc<FireflySim> {
        Arc::new(FireflySim {
            config,
            data: Mutex::new(data),
            requests: AtomicU64::new(0),
            drift_serial: AtomicU64::new(0),
        })
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The axum router.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route("/api/v1/transactions", get(handle)).with_state(Arc::clone(self))
    }
}

fn split_date(g: &Value) -> String {
    g["attributes"]["transactions"][0]["date"].as_str().unwrap_or("").chars().take(10).collect()
}

fn split_count(g: &Value) -> usize {
    g["attributes"]["transactions"].as_array().map_or(0, Vec::len)
}

async fn handle(
    State(sim): State<Arc<FireflySim>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response<Body> {
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let faults = &sim.config.faults;
    faults.delay().await;
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth.strip_prefix("Bearer ") != Some(sim.config.token.as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            r#"{"message":"Unauthenticated.","exception":"AuthenticationException"}"#,
        );
    }
    if let Some(e) = faults.server_error() {
        return e;
    }
    let mut errors = serde_json::Map::new();
    let mut number = |k: &str, default: usize| match q.get(k) {
        None => default,
        Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).unwrap_or_else(|| {
            errors.insert(k.to_owned(), json!([format!("The {k} must be at least 1.")]));
            default
        }),
    };
    let limit = number("limit", 50);
    let page = number("page", 1);
    for k in ["start", "end"] {
        if let Some(v) = q.get(k) {
            if chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err() {
                errors.insert(k.to_owned(), json!([format!("The {k} is not a valid date.")]));
            }
        }
    }
    if !errors.is_empty() {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "The given data was invalid.", "errors": errors}).to_string(),
        );
    }
    let kind = q.get("type").map(|t| t.replace('-', " "));
    let mut data = sim.data.lock().expect("data lock");
    if faults.drift && sim.config.drift_limit.is_none_or(|l| sim.drift_serial.load(Ordering::Relaxed) < l) {
        // New activity arrives between page requests: a group at the start
        // of the listing shifts every later page by one.
        let n = sim.drift_serial.fetch_add(1, Ordering::Relaxed);
        if let Some(mut fresh) = data.groups.first().cloned() {
            fresh["id"] = Value::String(format!("drift-{n}"));
            if let Some(splits) = fresh["attributes"]["transactions"].as_array_mut() {
                for (i, s) in splits.iter_mut().enumerate() {
                    s["transaction_journal_id"] = Value::String(format!("drift-{n}-{i}"));
                }
            }
            data.groups.insert(0, fresh);
        }
    }
    let selected: Vec<&Value> = data
        .groups
        .iter()
        .filter(|g| {
            let d = split_date(g);
            q.get("start").is_none_or(|s| d.as_str() >= s.as_str())
                && q.get("end").is_none_or(|e| d.as_str() <= e.as_str())
        })
        .filter(|g| {
            kind.as_deref().is_none_or(|k| {
                k == "all"
                    || g["attributes"]["transactions"][0]["type"].as_str().is_some_and(|t| t.replace('-', " ") == k)
            })
        })
        .collect();
    // Pages: whole groups, at most `limit` splits each (a larger group gets a page of its own).
    let mut starts = vec![0usize];
    let mut on_page = 0;
    for (i, g) in selected.iter().enumerate() {
        let n = split_count(g);
        if on_page > 0 && on_page + n > limit {
            starts.push(i);
            on_page = 0;
        }
        on_page += n;
    }
    let total_pages = starts.len();
    let total: usize = selected.iter().map(|g| split_count(g)).sum();
    if page > total_pages {
        return json_response(
            StatusCode::NOT_FOUND,
            r#"{"message":"Resource not found","exception":"NotFoundHttpException"}"#,
        );
    }
    let (a, b) = (starts[page - 1], starts.get(page).copied().unwrap_or(selected.len()));
    let items = &selected[a..b];
    let count: usize = items.iter().map(|g| split_count(g)).sum();
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("");
    let link = |p: usize| {
        let mut params: Vec<String> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| format!("{k}={}", crate::truv::urlencode(v)))
            .collect();
        params.push(format!("page={p}"));
        Value::String(format!("http://{host}/api/v1/transactions?{}", params.join("&")))
    };
    let mut links = json!({"self": link(page), "first": link(1), "last": link(total_pages)});
    if page > 1 {
        links["prev"] = link(page - 1);
    }
    if page < total_pages {
        links["next"] = link(page + 1);
    }
    let body = json!({
        "data": items,
        "meta": {"pagination": {"total": total, "count": count, "per_page": limit, "current_page": page, "total_pages": total_pages}},
        "links": links,
    })
    .to_string();
    if Faults::roll(faults.malformed_page_rate) {
        return json_response(StatusCode::OK, body[..body.len() / 2].to_owned());
    }
    faults.maybe_drop(json_response(StatusCode::OK, body))
}
