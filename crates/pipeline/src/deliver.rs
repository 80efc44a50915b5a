//! Delivering the outbox to one configured sink.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use bankpipe_config::{SinkConfig, SinkKindConfig};
use bankpipe_enrich::Categorizer;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sinks::mibudge::MibudgeSink;
use bankpipe_sinks::trupocket::TrupocketSink;
use bankpipe_sinks::{deliver, DeliveryReport};
use bankpipe_store::Store;

/// Run one delivery pass for `sink`, its HTTP waits capped at the sink's
/// `max_wait_secs` (default 60 s). With a PostgreSQL store the sink's
/// requests are reserved from the rate budget shared by every worker on the
/// database ([`crate::rate`]); with SQLite the client's own gate paces them,
/// seeded from the budget the last run saw and saved back for the next.
///
/// # Errors
/// The sink's stopping error (rate budget exhausted → exit 75, auth, …).
/// `zone` is the booking zone (`sync.timezone`).
pub async fn deliver_sink<S: Store>(
    store: &S,
    categorizer: &Categorizer,
    sink: &SinkConfig,
    zone: chrono_tz::Tz,
) -> Result<DeliveryReport> {
    let policy = Policy { max_wait: Duration::from_secs(sink.max_wait_secs.unwrap_or(60)), ..Policy::default() };
    let client = HttpClient::new(policy)?;
    let maps = &categorizer.sink_maps;
    let origin = sink_origin(sink)?;
    // PostgreSQL: other workers may be delivering to this origin right now;
    // every request is reserved from the budget they all share, and every
    // response recorded in it (DESIGN §7). Nothing to seed or save.
    if let Some(shared) = crate::rate::shared_budget(store) {
        return deliver_with(store, maps, sink, &client.with_shared_budget(shared), zone).await;
    }
    // SQLite (one worker): start from the budget an earlier run saw for
    // this origin, and save it afterwards (a run must not spend what the
    // last one did).
    let key = origin.to_string();
    // Only a hint: used while its window lasts and it still has requests
    // left; an exhausted one is not trusted (the server may have restarted
    // with a new limit) — the first answer's headers (or 429) say.
    let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if let Some((limit, remaining, reset)) =
        store.rate_budget(&key).await?.filter(|(_, rem, reset)| *reset > now && *rem > 0)
    {
        client.gate(&origin).seed(&bankpipe_http::BudgetView {
            limit: limit.map(|l| l.max(0) as u64),
            remaining: Some(remaining.max(0) as u64),
            reset: Some(UNIX_EPOCH + Duration::from_secs(reset.max(0) as u64)),
        });
    }
    let result = deliver_with(store, maps, sink, &client, zone).await;
    let view = client.gate(&origin).view();
    if let (Some(remaining), Some(reset)) = (view.remaining, view.reset) {
        let reset = reset.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        store.save_rate_budget(&key, view.limit.map(|l| l as i64), remaining as i64, reset).await?;
    }
    result
}

async fn deliver_with<S: Store>(
    store: &S,
    maps: &bankpipe_enrich::categorize::sink_maps::SinkCategoryMaps,
    sink: &SinkConfig,
    client: &HttpClient,
    zone: chrono_tz::Tz,
) -> Result<DeliveryReport> {
    let report = match sink.kind {
        SinkKindConfig::Trupocket => {
            let accounts = store.accounts().await?;
            let mut s = TrupocketSink::new(sink, maps, store, accounts)?;
            deliver(store, &mut s, client, sink.deliver_pending).await?
        }
        SinkKindConfig::Mibudge => {
            let mut s = MibudgeSink::new(sink, maps, zone)?;
            deliver(store, &mut s, client, sink.deliver_pending).await?
        }
        SinkKindConfig::File => return Ok(DeliveryReport { sink: sink.name.clone(), ..DeliveryReport::default() }),
    };
    Ok(report)
}

/// The origin (scheme, host, port) of a sink's API: the key of its stored
/// rate budget.
///
/// # Errors
/// An unusable `base_url` (config validation normally catches it first).
pub fn sink_origin(sink: &SinkConfig) -> Result<bankpipe_http::Origin> {
    Ok(bankpipe_http::Endpoint::new(&sink.base_url, bankpipe_http::Credentials::None)?.origin().clone())
}
