//! Live sources: walk an API's pagination over HTTP, one page at a time,
//! through the same normalizers the recorded replay uses.
//!
//! Memory does not grow with history: a walk holds the current page and
//! the identities of the previous one (for drift detection), plus the list
//! of URLs visited (for loop detection, a few bytes per page).

use std::collections::{HashMap, HashSet};

use bankpipe_config::{SourceConfig, SourceKindConfig};
use bankpipe_http::{Credentials, Endpoint, HttpClient, HttpError, SecretString, Url};
use bankpipe_model::{CanonicalId, Transaction};
use chrono::NaiveDate;

use crate::context::NormalizeContext;
use crate::error::PageError;
use crate::page::{NormalizedPage, SourceKind};
use crate::{firefly, truv};

/// A configured live source.
#[derive(Clone, Debug)]
pub struct LiveSource {
    /// Source name and booking zone.
    pub ctx: NormalizeContext,
    /// Which API.
    pub kind: SourceKind,
    /// Base URL and credentials.
    pub endpoint: Endpoint,
    /// Truv link id.
    pub link_id: Option<String>,
    /// Truv `account_ids` filter (empty = all accounts of the link).
    pub account_ids: Vec<String>,
    /// Records per page requested (Truv `page_size`, Firefly `limit`).
    pub page_size: u32,
}

/// A date range to fetch (inclusive; `None` = unbounded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// First booking date.
    pub from: Option<NaiveDate>,
    /// Last booking date.
    pub to: Option<NaiveDate>,
}

/// One fetched page: its URL, raw body (for `record`) and normalized content.
pub struct FetchedPage {
    /// The URL fetched.
    pub url: Url,
    /// The response body as received.
    pub body: bytes::Bytes,
    /// The normalized page.
    pub page: NormalizedPage,
}

/// Why a live walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The HTTP layer failed (rate budget, auth, transport, cross-origin link…).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A page could not be used (malformed, broken or looping chain).
    #[error(transparent)]
    Page(#[from] PageError),
    /// The configuration cannot build this source.
    #[error("source {source_name:?}: {problem}")]
    Config { source_name: String, problem: String },
    /// The walk read fewer distinct records than the source says its
    /// result holds (Truv `count`, Firefly `meta.pagination.total`), on
    /// every one of [`MAX_WALKS`] walks: a record moved between page
    /// requests and was never read.
    #[error(
        "source {source_name:?}: incomplete walk of {window}: read {read} distinct records of the {expected} the source \
         reports, on each of {walks} walks ({url}); records moved between page requests — nothing was lost from the \
         store, but the watermarks of this source stay where they were; try again later"
    )]
    Incomplete { source_name: String, window: String, read: u64, expected: u64, walks: u32, url: String },
    /// A walk exceeded [`MAX_PAGES`] pages.
    #[error("source {source_name:?}: more than {max} pages in one walk ({url}); giving up on it")]
    TooManyPages { source_name: String, max: u64, url: String },
}

/// Walks of one window before a shortfall against the source's own count
/// is an error (the first, and two more).
pub const MAX_WALKS: u32 = 3;

/// Pages one walk may have (at `page_size` 500, 50 million records).
pub const MAX_PAGES: u64 = 100_000;

/// Totals of one walk (all its passes, when a shortfall made it walk again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Pages fetched.
    pub pages: u64,
    /// Transaction records read.
    pub records_read: u64,
    /// Records seen again on the next page (page drift).
    pub drifted: u64,
    /// Passes over the window (1, or more after a shortfall).
    pub walks: u32,
    /// Distinct records read, by the source's own id.
    pub distinct: u64,
    /// Records the source reported for the window (last page's `count` or
    /// `total`), when it reports one.
    pub expected: Option<u64>,
}

/// The normalize context of a configured source: its name (the namespace
/// of its canonical ids) and the booking time zone. A live fetch and a
/// replay of the same source's recorded pages share it, so they produce the
/// same ids.
pub fn normalize_context(config: &SourceConfig, timezone: chrono_tz::Tz) -> NormalizeContext {
    let mut ctx = NormalizeContext::new(&config.name);
    ctx.timezone = timezone;
    ctx
}

impl LiveSource {
    /// Build from a `[[sources]]` entry; credentials are read from the
    /// environment variables it names (their values are never printed).
    ///
    /// # Errors
    /// [`LiveError::Config`] naming the source and the missing key or variable.
    pub fn from_config(config: &SourceConfig, timezone: chrono_tz::Tz) -> Result<LiveSource, LiveError> {
        let problem = |p: String| LiveError::Config { source_name: config.name.clone(), problem: p };
        let secret = |key: &str, var: &Option<String>| -> Result<SecretString, LiveError> {
            let var = var.as_deref().ok_or_else(|| problem(format!("{key} is required")))?;
            std::env::var(var)
                .map(SecretString::from)
                .map_err(|_| problem(format!("environment variable {var} (named by {key}) is not set")))
        };
        let (kind, credentials, link_id) = match config.kind {
            SourceKindConfig::Truv => {
                let link =
                    config.link_id.clone().ok_or_else(|| problem("link_id is required for kind = \"truv\"".into()))?;
                let headers = vec![
                    (bankpipe_http_header("x-access-client-id"), secret("client_id_env", &config.client_id_env)?),
                    (bankpipe_http_header("x-access-secret"), secret("secret_env", &config.secret_env)?),
                ];
                (SourceKind::Truv, Credentials::Headers(headers), Some(link))
            }
            SourceKindConfig::Firefly => {
                (SourceKind::Firefly, Credentials::Bearer(secret("token_env", &config.token_env)?), None)
            }
        };
        let endpoint = Endpoint::new(&config.base_url, credentials).map_err(|e| problem(format!("base_url: {e}")))?;
        let ctx = normalize_context(config, timezone);
        Ok(LiveSource { ctx, kind, endpoint, link_id, account_ids: config.account_ids.clone(), page_size: 500 })
    }

    /// Walk every page of `window`, handing each to `on_page` (async, e.g.
    /// to write it to the store) before the next page is fetched; then
    /// prove completeness: the distinct records read (by the source's own
    /// id, across passes) must reach the count the source reports for the
    /// window (Truv `count`, Firefly `meta.pagination.total`). On a
    /// shortfall the window is walked again, up to [`MAX_WALKS`] passes.
    ///
    /// Memory: the ids of the records read (about 40 bytes each), one
    /// page, and the URLs visited.
    ///
    /// # Errors
    /// The first HTTP, page or chain error (a `next` link to another origin
    /// is refused by the HTTP layer), [`LiveError::Incomplete`] after
    /// [`MAX_WALKS`] short passes, [`LiveError::TooManyPages`], or the first
    /// error of `on_page`.
    pub async fn walk<E, F>(&self, client: &HttpClient, window: Window, mut on_page: F) -> Result<LiveStats, E>
    where
        E: From<LiveError>,
        F: AsyncFnMut(FetchedPage) -> Result<(), E>,
    {
        let mut stats = LiveStats::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut anonymous_max = 0u64;
        let mut first_url = None;
        loop {
            stats.walks += 1;
            let (url, expected, anonymous) =
                self.walk_once(client, window, &mut stats, &mut seen, &mut on_page).await?;
            first_url.get_or_insert(url);
            anonymous_max = anonymous_max.max(anonymous);
            stats.distinct = seen.len() as u64 + anonymous_max;
            stats.expected = expected;
            let short = expected.is_some_and(|n| stats.distinct < n);
            if !short {
                return Ok(stats);
            }
            if stats.walks >= MAX_WALKS {
                return Err(LiveError::Incomplete {
                    source_name: self.ctx.source.to_string(),
                    window: describe(window),
                    read: stats.distinct,
                    expected: expected.unwrap_or_default(),
                    walks: stats.walks,
                    url: first_url.map(|u| u.to_string()).unwrap_or_default(),
                }
                .into());
            }
            tracing::warn!(
                source = %self.ctx.source,
                read = stats.distinct,
                expected = expected.unwrap_or_default(),
                "fewer distinct records than the source reports; walking the window again"
            );
        }
    }

    /// One pass over the window's pages. Returns the first URL, the count
    /// the last page reported and the number of records without an id.
    async fn walk_once<E, F>(
        &self,
        client: &HttpClient,
        window: Window,
        stats: &mut LiveStats,
        seen: &mut HashSet<String>,
        on_page: &mut F,
    ) -> Result<(Url, Option<u64>, u64), E>
    where
        E: From<LiveError>,
        F: AsyncFnMut(FetchedPage) -> Result<(), E>,
    {
        let first = match self.kind {
            SourceKind::Truv => truv::live::first_url(self, window)?,
            SourceKind::Firefly => firefly::live::first_url(self, window, 1)?,
        };
        let mut url = first.clone();
        let mut visited: HashSet<String> = HashSet::new();
        let mut drift = DriftDetector::default();
        let mut truv_chain = truv::TruvChain::new();
        let mut firefly_chain = firefly::FireflyChain::new();
        let (mut expected, mut anonymous) = (None, 0u64);
        loop {
            if !visited.insert(url.to_string()) {
                return Err(LiveError::from(PageError::Chain {
                    file: url.to_string(),
                    problem: "loop: this page was already fetched in this walk".into(),
                })
                .into());
            }
            if visited.len() as u64 > MAX_PAGES {
                let source_name = self.ctx.source.to_string();
                return Err(LiveError::TooManyPages { source_name, max: MAX_PAGES, url: url.to_string() }.into());
            }
            let response = client.get(&self.endpoint, &url).await.map_err(LiveError::from)?;
            let label = url.to_string();
            // Parsing and normalizing a page is the walk's CPU work (about a
            // millisecond per 1,000 records): done on a blocking thread so
            // that the caller's other futures — the store writer polled
            // beside this walk — are not held up meanwhile.
            let parsed = {
                let (ctx, kind, body, label) = (self.ctx.clone(), self.kind, response.body.clone(), label.clone());
                match tokio::task::spawn_blocking(move || parse_page(&ctx, kind, &label, &body)).await {
                    Ok(parsed) => parsed,
                    // A panic stays a panic, as if parsed here.
                    Err(e) => match e.try_into_panic() {
                        Ok(panic) => std::panic::resume_unwind(panic),
                        Err(e) => {
                            let problem = format!("parsing was cancelled: {e}");
                            Err(PageError::Chain { file: url.to_string(), problem })
                        }
                    },
                }
            };
            let ParsedPage { page, cursor, ids, anonymous: unnamed } = parsed.map_err(LiveError::from)?;
            let next = match cursor {
                Cursor::Truv(cursor) => {
                    truv_chain.accept(&label, &cursor).map_err(LiveError::from)?;
                    expected = cursor.count.or(expected);
                    let next = cursor.next.as_deref().map(|n| self.resolve(&url, n)).transpose()?;
                    (page, next)
                }
                Cursor::Firefly(cursor) => {
                    firefly_chain.accept(&label, &cursor).map_err(LiveError::from)?;
                    expected = cursor.total.or(expected);
                    let next = (cursor.current_page < cursor.total_pages)
                        .then(|| firefly::live::first_url(self, window, cursor.current_page + 1))
                        .transpose()?;
                    (page, next)
                }
            };
            seen.extend(ids);
            anonymous += unnamed;
            let (mut page, next) = next;
            let drifted = drift.check(&page.transactions, stats.pages + 1);
            stats.drifted += drifted.len() as u64;
            page.warnings.extend(drifted);
            stats.pages += 1;
            stats.records_read += page.records_read;
            on_page(FetchedPage { url: url.clone(), body: response.body, page }).await?;
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        match self.kind {
            SourceKind::Truv => truv_chain.finish().map_err(LiveError::from)?,
            SourceKind::Firefly => firefly_chain.finish().map_err(LiveError::from)?,
        };
        Ok((first, expected, anonymous))
    }

    /// A `next` link as a URL (relative links resolve against the page URL;
    /// the HTTP layer refuses it if it leaves the configured origin).
    fn resolve(&self, page: &Url, next: &str) -> Result<Url, LiveError> {
        page.join(next).map_err(|e| LiveError::Http(HttpError::Url(format!("next = {next:?}: {e}"))))
    }
}

fn bankpipe_http_header(name: &'static str) -> bankpipe_http::credentials::HeaderName {
    bankpipe_http::credentials::HeaderName::from_static(name)
}

/// Detects page drift: a record of the previous page that reappears on the
/// next one (data changed between page requests and shifted the listing).
/// Reported as a warning; identity dedupe keeps it once. Holds one page of ids.
#[derive(Default)]
struct DriftDetector {
    previous: HashMap<CanonicalId, u64>,
}

impl DriftDetector {
    fn check(&mut self, page: &[Transaction], number: u64) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut current = HashMap::with_capacity(page.len());
        for tx in page {
            let fingerprint = fingerprint(tx);
            if let Some(before) = self.previous.get(&tx.id) {
                let how = if *before == fingerprint { "unchanged" } else { "with different content" };
                warnings.push(format!(
                    "page drift: {} {} reappeared on page {number} ({how}); kept once",
                    tx.source_account_id, tx.source_transaction_id
                ));
            }
            current.insert(tx.id, fingerprint);
        }
        self.previous = current;
        warnings
    }
}

fn fingerprint(tx: &Transaction) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (tx.amount.to_minor_units().ok(), tx.status.as_str(), tx.booking_date, tx.updated_at, &tx.description).hash(&mut h);
    h.finish()
}

fn describe(window: Window) -> String {
    let side = |d: Option<NaiveDate>, open: &str| d.map_or_else(|| open.to_owned(), |d| d.to_string());
    format!("{}..{}", side(window.from, "the beginning"), side(window.to, "now"))
}

/// A fetched page, parsed: normalized, its cursor, and the source's own
/// record ids (with the number of records that have none).
struct ParsedPage {
    page: NormalizedPage,
    cursor: Cursor,
    ids: Vec<String>,
    anonymous: u64,
}

/// A page's pagination cursor, per API.
enum Cursor {
    Truv(truv::TruvCursor),
    Firefly(firefly::FireflyCursor),
}

/// Normalize the page `body` fetched from `label` and list its record ids.
fn parse_page(ctx: &NormalizeContext, kind: SourceKind, label: &str, body: &[u8]) -> Result<ParsedPage, PageError> {
    let (page, cursor) = match kind {
        SourceKind::Truv => truv::normalize_page(ctx, label, body).map(|(p, c)| (p, Cursor::Truv(c)))?,
        SourceKind::Firefly => firefly::normalize_page(ctx, label, body).map(|(p, c)| (p, Cursor::Firefly(c)))?,
    };
    let mut ids = Vec::new();
    let anonymous = record_ids(kind, body, &mut ids);
    Ok(ParsedPage { page, cursor, ids, anonymous })
}

/// Push the source's own ids of the records of a raw page onto `seen` (Truv
/// `transactions[].id`, Firefly `data[].attributes.transactions[].transaction_journal_id`);
/// returns how many records had no readable id. A page that does not parse
/// here has already failed normalization.
fn record_ids(kind: SourceKind, body: &[u8], seen: &mut Vec<String>) -> u64 {
    use std::borrow::Cow;

    use serde::de::IgnoredAny;
    use serde::Deserialize;
    /// An id as written: text or a number.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum AnyId<'a> {
        Text(#[serde(borrow)] Cow<'a, str>),
        Number(serde_json::Number),
        Other(IgnoredAny),
    }
    impl AnyId<'_> {
        fn text(self) -> Option<String> {
            match self {
                AnyId::Text(t) if !t.trim().is_empty() => Some(t.into_owned()),
                AnyId::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }
    }
    #[derive(Deserialize)]
    struct TruvRecord<'a> {
        #[serde(borrow)]
        id: Option<AnyId<'a>>,
    }
    #[derive(Deserialize)]
    struct Journal<'a> {
        #[serde(borrow)]
        transaction_journal_id: Option<AnyId<'a>>,
    }
    #[derive(Deserialize)]
    struct Attributes<'a> {
        #[serde(borrow, default)]
        transactions: Vec<Element<Journal<'a>>>,
    }
    #[derive(Deserialize)]
    struct Group<'a> {
        #[serde(borrow)]
        attributes: Option<Attributes<'a>>,
    }
    /// A list element: the expected object, or anything else (counted anonymous).
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Element<T> {
        Known(T),
        Other(IgnoredAny),
    }
    #[derive(Deserialize)]
    struct TruvPage<'a> {
        #[serde(borrow, default)]
        transactions: Vec<Element<TruvRecord<'a>>>,
    }
    #[derive(Deserialize)]
    struct FireflyPage<'a> {
        #[serde(borrow, default)]
        data: Vec<Element<Group<'a>>>,
    }
    let mut anonymous = 0;
    let mut add = |id: Option<AnyId<'_>>| match id.and_then(AnyId::text) {
        Some(i) => seen.push(i),
        None => anonymous += 1,
    };
    match kind {
        SourceKind::Truv => {
            if let Ok(p) = serde_json::from_slice::<TruvPage<'_>>(body) {
                for t in p.transactions {
                    match t {
                        Element::Known(r) => add(r.id),
                        Element::Other(_) => add(None),
                    }
                }
            }
        }
        SourceKind::Firefly => {
            if let Ok(p) = serde_json::from_slice::<FireflyPage<'_>>(body) {
                for g in p.data {
                    match g {
                        Element::Known(Group { attributes: Some(a) }) if !a.transactions.is_empty() => {
                            for j in a.transactions {
                                match j {
                                    Element::Known(j) => add(j.transaction_journal_id),
                                    Element::Other(_) => add(None),
                                }
                            }
                        }
                        _ => add(None),
                    }
                }
            }
        }
    }
    anonymous
}
