//! Truv over HTTP: `GET {base}/v1/links/{link_id}/transactions/` with
//! `X-Access-Client-Id`/`X-Access-Secret`, `transacted_at_from/to`
//! (inclusive dates) and `page_size`; then follow `next` until it is null.

use bankpipe_http::Url;

use crate::live::{LiveError, LiveSource, Window};

/// The first page's URL.
///
/// # Errors
/// [`LiveError::Config`] when the link id is missing or the URL is unusable.
pub(crate) fn first_url(source: &LiveSource, window: Window) -> Result<Url, LiveError> {
    let problem = |p: String| LiveError::Config { source_name: source.ctx.source.to_string(), problem: p };
    let link = source.link_id.as_deref().ok_or_else(|| problem("link_id is required".into()))?;
    let mut url = source.endpoint.url(&format!("v1/links/{link}/transactions/")).map_err(|e| problem(e.to_string()))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(from) = window.from {
            q.append_pair("transacted_at_from", &from.to_string());
        }
        if let Some(to) = window.to {
            q.append_pair("transacted_at_to", &to.to_string());
        }
        if !source.account_ids.is_empty() {
            q.append_pair("account_ids", &source.account_ids.join(","));
        }
        q.append_pair("page_size", &source.page_size.to_string());
    }
    Ok(url)
}
