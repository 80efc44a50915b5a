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
}

/// Totals of one walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Pages fetched.
    pub pages: u64,
    /// Transaction records read.
    pub records_read: u64,
    /// Records seen again on the next page (page drift).
    pub drifted: u64,
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
        let mut ctx = NormalizeContext::new(&config.name);
        ctx.timezone = timezone;
        Ok(LiveSource { ctx, kind, endpoint, link_id, account_ids: config.account_ids.clone(), page_size: 500 })
    }

    /// Walk every page of `window`, handing each to `on_page` (async, e.g.
    /// to write it to the store) before the next page is fetched.
    ///
    /// # Errors
    /// The first HTTP, page or chain error (a `next` link to another origin
    /// is refused by the HTTP layer), or the first error of `on_page`.
    pub async fn walk<E, F>(&self, client: &HttpClient, window: Window, mut on_page: F) -> Result<LiveStats, E>
    where
        E: From<LiveError>,
        F: AsyncFnMut(FetchedPage) -> Result<(), E>,
    {
        let mut url = match self.kind {
            SourceKind::Truv => truv::live::first_url(self, window)?,
            SourceKind::Firefly => firefly::live::first_url(self, window, 1)?,
        };
        let mut stats = LiveStats::default();
        let mut visited: HashSet<String> = HashSet::new();
        let mut drift = DriftDetector::default();
        let mut truv_chain = truv::TruvChain::new();
        let mut firefly_chain = firefly::FireflyChain::new();
        loop {
            if !visited.insert(url.to_string()) {
                return Err(LiveError::from(PageError::Chain {
                    file: url.to_string(),
                    problem: "loop: this page was already fetched in this walk".into(),
                })
                .into());
            }
            let response = client.get(&self.endpoint, &url).await.map_err(LiveError::from)?;
            let label = url.to_string();
            let next = match self.kind {
                SourceKind::Truv => {
                    let (page, cursor) =
                        truv::normalize_page(&self.ctx, &label, &response.body).map_err(LiveError::from)?;
                    truv_chain.accept(&label, &cursor).map_err(LiveError::from)?;
                    let next = cursor.next.as_deref().map(|n| self.resolve(&url, n)).transpose()?;
                    (page, next)
                }
                SourceKind::Firefly => {
                    let (page, cursor) =
                        firefly::normalize_page(&self.ctx, &label, &response.body).map_err(LiveError::from)?;
                    firefly_chain.accept(&label, &cursor).map_err(LiveError::from)?;
                    let next = (cursor.current_page < cursor.total_pages)
                        .then(|| firefly::live::first_url(self, window, cursor.current_page + 1))
                        .transpose()?;
                    (page, next)
                }
            };
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
        Ok(stats)
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
