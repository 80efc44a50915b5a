//! Delivering the outbox to one configured sink.

use std::time::Duration;

use anyhow::Result;
use bankpipe_config::{SinkConfig, SinkKindConfig};
use bankpipe_enrich::Categorizer;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sinks::mibudge::MibudgeSink;
use bankpipe_sinks::trupocket::TrupocketSink;
use bankpipe_sinks::{deliver, DeliveryReport};
use bankpipe_store::Store;

/// Run one delivery pass for `sink`, its HTTP waits capped at the sink's
/// `max_wait_secs` (default 60 s).
///
/// # Errors
/// The sink's stopping error (rate budget exhausted → exit 75, auth, …).
pub async fn deliver_sink<S: Store>(store: &S, categorizer: &Categorizer, sink: &SinkConfig) -> Result<DeliveryReport> {
    let policy = Policy { max_wait: Duration::from_secs(sink.max_wait_secs.unwrap_or(60)), ..Policy::default() };
    let client = HttpClient::new(policy)?;
    let maps = &categorizer.sink_maps;
    let report = match sink.kind {
        SinkKindConfig::Trupocket => {
            let accounts = store.accounts().await?;
            let mut s = TrupocketSink::new(sink, maps, store, accounts)?;
            deliver(store, &mut s, &client, sink.deliver_pending).await?
        }
        SinkKindConfig::Mibudge => {
            let mut s = MibudgeSink::new(sink, maps)?;
            deliver(store, &mut s, &client, sink.deliver_pending).await?
        }
        SinkKindConfig::File => return Ok(DeliveryReport { sink: sink.name.clone(), ..DeliveryReport::default() }),
    };
    Ok(report)
}
