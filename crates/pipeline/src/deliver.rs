//! Delivering the outbox to one configured sink: a whole pass
//! ([`deliver_sink`]: queue, then deliver) or, through a worker's
//! [`SinkSession`], one delivery unit of a round after another (what is
//! queued, for a store bound to the unit's lease and accounts).

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use bankpipe_config::{SinkConfig, SinkKind};
use bankpipe_enrich::Categorizer;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sinks::mibudge::MibudgeSink;
use bankpipe_sinks::trupocket::TrupocketSink;
use bankpipe_sinks::{deliver_queued, DeliveryReport, Sink};
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
    let mut session = SinkSession::open(store, categorizer, sink, zone).await?;
    session.run(store, true).await
}

/// One worker's connection to one sink: its HTTP client (and so its rate
/// gate), the sink prepared once (Trupocket's category list, mibudge's
/// login and currency list) for every delivery unit the worker runs.
pub struct SinkSession<'a, S: Store> {
    config: &'a SinkConfig,
    client: HttpClient,
    origin: bankpipe_http::Origin,
    sink: Option<AnySink<'a, S>>,
    prepared: bool,
    /// The budget is the workers' shared one (PostgreSQL): nothing to save.
    shared: bool,
}

enum AnySink<'a, S: Store> {
    Trupocket(Box<TrupocketSink<'a, S>>),
    Mibudge(Box<MibudgeSink<'a>>),
}

impl<'a, S: Store> SinkSession<'a, S> {
    /// Build the sink and its client (waits capped at the sink's
    /// `max_wait_secs`, default 60 s), starting from the rate budget an
    /// earlier run saw for its origin. `store` is the unbound store (the
    /// Trupocket sink records the accounts it creates there).
    ///
    /// # Errors
    /// A sink config that cannot be used (a missing variable); store errors.
    pub async fn open(
        store: &'a S,
        categorizer: &'a Categorizer,
        config: &'a SinkConfig,
        zone: chrono_tz::Tz,
    ) -> Result<SinkSession<'a, S>> {
        let policy = Policy { max_wait: Duration::from_secs(config.max_wait_secs.unwrap_or(60)), ..Policy::default() };
        let mut client = HttpClient::new(policy)?;
        let maps = &categorizer.sink_maps;
        let origin = sink_origin(config)?;
        // PostgreSQL: other workers may be delivering to this origin right
        // now; every request is reserved from the budget they all share,
        // and every response recorded in it (DESIGN §7). Nothing to seed
        // or save.
        let shared = crate::rate::shared_budget(store);
        if let Some(budget) = shared.clone() {
            client = client.with_shared_budget(budget);
        }
        // SQLite (one worker): start from the budget an earlier run saw for
        // this origin, and save it afterwards (a run must not spend what the
        // last one did). Only a hint: used while its window lasts and it
        // still has requests left; an exhausted one is not trusted (the
        // server may have restarted with a new limit) — the first answer's
        // headers (or 429) say.
        let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let remembered = if shared.is_some() { None } else { store.rate_budget(&origin.to_string()).await? };
        if let Some((limit, remaining, reset)) = remembered.filter(|(_, rem, reset)| *reset > now && *rem > 0) {
            client.gate(&origin).seed(&bankpipe_http::BudgetView {
                limit: limit.map(|l| l.max(0) as u64),
                remaining: Some(remaining.max(0) as u64),
                reset: Some(UNIX_EPOCH + Duration::from_secs(reset.max(0) as u64)),
            });
        }
        let sink = match &config.kind {
            SinkKind::Trupocket(tp) => {
                let accounts = store.accounts().await?;
                Some(AnySink::Trupocket(Box::new(TrupocketSink::new(config, tp, maps, store, accounts)?)))
            }
            SinkKind::Mibudge(mb) => Some(AnySink::Mibudge(Box::new(MibudgeSink::new(config, mb, maps, zone)?))),
            SinkKind::File => None,
        };
        Ok(SinkSession { config, client, origin, sink, prepared: false, shared: shared.is_some() })
    }

    /// One delivery pass through `store` — the unbound store for a whole
    /// pass, or one bound to a delivery unit's lease and accounts — queueing
    /// first when `queue` (a round queues in its own unit). The budget seen
    /// is saved afterwards.
    ///
    /// # Errors
    /// The sink's stopping error (rate budget exhausted → exit 75, auth,
    /// a lost lease inside a store error, …).
    pub async fn run<B: Store>(&mut self, store: &B, queue: bool) -> Result<DeliveryReport> {
        let pending = self.config.deliver_pending;
        let result = match &mut self.sink {
            None => return Ok(DeliveryReport { sink: self.config.name.clone(), ..DeliveryReport::default() }),
            Some(AnySink::Trupocket(s)) => {
                pass(store, &mut **s, &self.client, &mut self.prepared, queue, pending).await
            }
            Some(AnySink::Mibudge(s)) => pass(store, &mut **s, &self.client, &mut self.prepared, queue, pending).await,
        };
        let view = self.client.gate(&self.origin).view();
        if let (false, Some(remaining), Some(reset)) = (self.shared, view.remaining, view.reset) {
            let reset = reset.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            store
                .save_rate_budget(&self.origin.to_string(), view.limit.map(|l| l as i64), remaining as i64, reset)
                .await?;
        }
        Ok(result?)
    }
}

/// Queue (when asked), prepare the sink once, deliver what is queued.
async fn pass<B: Store, K: Sink>(
    store: &B,
    sink: &mut K,
    client: &HttpClient,
    prepared: &mut bool,
    queue: bool,
    pending: bool,
) -> Result<DeliveryReport, bankpipe_sinks::SinkError> {
    let queued = if queue {
        let name = sink.name().to_owned();
        store
            .enqueue_deliveries(&name, pending, sink.corrects())
            .await
            .map_err(|source| bankpipe_sinks::SinkError::Store { sink: name, source })?
    } else {
        0
    };
    if !*prepared {
        sink.prepare(client).await?;
        *prepared = true;
    }
    let mut report = deliver_queued(store, sink, client).await?;
    report.queued = queued;
    Ok(report)
}

/// Queue `sink`'s deliveries (the outbox's step 1): every deliverable row
/// not queued yet, and corrections where the sink can make them (the sink
/// kind's [`bankpipe_sinks::Sink::corrects`]). Returns the rows queued.
///
/// # Errors
/// Store errors; a sink config that cannot be used.
pub async fn queue_sink<S: Store>(
    store: &S,
    categorizer: &Categorizer,
    sink: &SinkConfig,
    zone: chrono_tz::Tz,
) -> Result<u64> {
    let maps = &categorizer.sink_maps;
    let corrects = match &sink.kind {
        SinkKind::Trupocket(tp) => TrupocketSink::new(sink, tp, maps, store, Vec::new())?.corrects(),
        SinkKind::Mibudge(mb) => MibudgeSink::new(sink, mb, maps, zone)?.corrects(),
        SinkKind::File => return Ok(0),
    };
    Ok(store.enqueue_deliveries(&sink.name, sink.deliver_pending, corrects).await?)
}

/// The origin (scheme, host, port) of a sink's API: the key of its stored
/// rate budget.
///
/// # Errors
/// An unusable `base_url` (config validation normally catches it first).
pub fn sink_origin(sink: &SinkConfig) -> Result<bankpipe_http::Origin> {
    Ok(bankpipe_http::Endpoint::new(&sink.base_url, bankpipe_http::Credentials::None)?.origin().clone())
}
