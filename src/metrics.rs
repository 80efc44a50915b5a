//! `--metrics-file`: the run's figures in the Prometheus text exposition
//! format (prometheus-client's OpenMetrics text encoder), written
//! atomically at the end of every sync for node_exporter's textfile
//! collector or any scraper reading files.

use std::path::Path;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// One source in a run.
#[derive(Clone, Debug, Default)]
pub struct SourceFigures {
    /// Source name.
    pub name: String,
    /// Records read.
    pub records: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// The source failed in this run.
    pub failed: bool,
}

/// One sink in a run.
#[derive(Clone, Debug, Default)]
pub struct SinkFigures {
    /// Sink name.
    pub name: String,
    /// Delivered in this run.
    pub delivered: u64,
    /// Recorded failed in this run.
    pub failed: u64,
    /// Queued or in flight now.
    pub waiting: i64,
    /// In flight now.
    pub in_flight: i64,
}

/// What one sync run reports.
#[derive(Clone, Debug, Default)]
pub struct RunFigures {
    /// Unix seconds at the end of the run.
    pub finished_unix: i64,
    /// The process exit code (0 ok, 3 completed with failures, …).
    pub exit_code: i64,
    /// Wall time, seconds.
    pub duration_seconds: f64,
    /// Per source.
    pub sources: Vec<SourceFigures>,
    /// Per sink.
    pub sinks: Vec<SinkFigures>,
    /// Per sink origin: (sink, requests remaining in the advertised window).
    pub rate_remaining: Vec<(String, i64)>,
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn family(registry: &mut Registry, name: &str, help: &str, label: &str, values: &[(String, i64)]) {
    let f: Family<Labels, Gauge> = Family::default();
    for (key, v) in values {
        f.get_or_create(&vec![(label.to_owned(), key.clone())]).set(*v);
    }
    registry.register(name, help, f);
}

/// The text of the metrics of `figures`.
pub fn render(figures: &RunFigures) -> Result<String> {
    let mut r = Registry::with_prefix("bankpipe");
    gauge(&mut r, "last_run_timestamp_seconds", "Unix time the last sync ended", figures.finished_unix);
    gauge(
        &mut r,
        "last_run_exit_code",
        "Exit code of the last sync (0 ok, 3 completed with failures, 75 retry later)",
        figures.exit_code,
    );
    gauge(&mut r, "last_run_success", "1 when the last sync exited 0", i64::from(figures.exit_code == 0));
    let duration: Gauge<f64, AtomicU64> = Gauge::default();
    duration.set(figures.duration_seconds);
    r.register("last_run_duration_seconds", "Wall time of the last sync", duration);
    let by_source = |f: fn(&SourceFigures) -> i64| -> Vec<(String, i64)> {
        figures.sources.iter().map(|s| (s.name.clone(), f(s))).collect()
    };
    let records = by_source(|s| s.records as i64);
    family(&mut r, "source_records", "Records read from the source in the last sync", "source", &records);
    let quarantined = by_source(|s| s.quarantined as i64);
    family(&mut r, "source_quarantined", "Records quarantined in the last sync", "source", &quarantined);
    let up = by_source(|s| i64::from(!s.failed));
    family(&mut r, "source_up", "1 when the source was fetched completely in the last sync", "source", &up);
    let by_sink = |f: fn(&SinkFigures) -> i64| -> Vec<(String, i64)> {
        figures.sinks.iter().map(|s| (s.name.clone(), f(s))).collect()
    };
    family(
        &mut r,
        "sink_delivered",
        "Transactions delivered in the last sync",
        "sink",
        &by_sink(|s| s.delivered as i64),
    );
    family(&mut r, "sink_failed", "Deliveries recorded failed in the last sync", "sink", &by_sink(|s| s.failed as i64));
    family(&mut r, "sink_backlog", "Deliveries waiting (queued or in flight)", "sink", &by_sink(|s| s.waiting));
    family(&mut r, "sink_in_flight", "Deliveries sent and awaiting reconciliation", "sink", &by_sink(|s| s.in_flight));
    family(
        &mut r,
        "sink_rate_budget_remaining",
        "Requests left in the sink's advertised rate window",
        "sink",
        &figures.rate_remaining,
    );
    let mut text = String::new();
    encode(&mut text, &r).context("encoding metrics")?;
    Ok(text)
}

/// Write `figures` to `path` atomically (a temporary file beside it, then a rename).
///
/// # Errors
/// The file cannot be written (the message names it).
pub fn write(path: &Path, figures: &RunFigures) -> Result<()> {
    let text = render(figures)?;
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
