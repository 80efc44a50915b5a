//! Firefly III over HTTP: `GET {base}/api/v1/transactions` with a Bearer
//! PAT, `start`/`end` (inclusive dates), `type=all`, `limit` and `page`,
//! until `current_page == total_pages`.

use bankpipe_http::Url;

use crate::live::{LiveError, LiveSource, Window};

/// The URL of page `page` (1-based).
///
/// # Errors
/// [`LiveError::Config`] when the URL is unusable.
pub(crate) fn first_url(source: &LiveSource, window: Window, page: u64) -> Result<Url, LiveError> {
    let mut url = source
        .endpoint
        .url("api/v1/transactions")
        .map_err(|e| LiveError::Config { source_name: source.ctx.source.to_string(), problem: e.to_string() })?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(from) = window.from {
            q.append_pair("start", &from.to_string());
        }
        if let Some(to) = window.to {
            q.append_pair("end", &to.to_string());
        }
        q.append_pair("type", "all");
        q.append_pair("limit", &source.page_size.to_string());
        q.append_pair("page", &page.to_string());
    }
    Ok(url)
}
