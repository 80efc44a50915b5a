//! `bankpipe check`: the doctor (issue #11). Validates the configuration
//! and the environment variables it names, reaches every source and sink
//! once with the credentials, verifies what the configuration names exists
//! on the sinks (household, mapped accounts, budgets), lists source accounts
//! without a mapping with a ready-to-paste `[sinks.accounts]` snippet, and
//! shows each sink's last rate budget. Writes nothing — except, with a
//! PostgreSQL store, the counts of the shared rate budget its sink requests
//! are reserved from, as every worker's are; creates no database.

use std::collections::BTreeSet;

use anyhow::Result;
use bankpipe_config::SinkKind;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_sinks::mibudge::MibudgeSink;
use bankpipe_sinks::trupocket::TrupocketSink;
use bankpipe_sinks::{mapped_account, Finding, Sink, SinkError};
use bankpipe_sources::live::{LiveSource, Window};
use bankpipe_store::{with_store, Store};

use crate::cli::CheckArgs;
use crate::setup;
use bankpipe_pipeline::CompletedWithFailures;

pub fn run(args: &CheckArgs) -> Result<()> {
    let path = &args.config.config;
    let config = setup::load_config(Some(path))?;
    let categorizer = setup::categorizer(&config, Some(path))?;
    let zone = setup::timezone(&config)?;
    println!("config {}: valid", path.display());
    let problems = setup::runtime()?.block_on(async {
        let (store, scratch) = setup::existing_or_scratch_store(&config).await?;
        let problems = with_store!(&store, s => doctor(s, &config, &categorizer, zone).await)?;
        drop(store);
        drop(scratch);
        anyhow::Ok(problems)
    })?;
    if problems == 0 {
        println!("all good");
        Ok(())
    } else {
        Err(CompletedWithFailures(format!("{problems} problem(s) found; see above")).into())
    }
}

fn print(scope: &str, f: &Finding) {
    println!("  {} {scope}: {}", if f.problem { "PROBLEM" } else { "ok     " }, f.text);
}

async fn doctor<S: Store>(
    store: &S,
    config: &bankpipe_config::Config,
    categorizer: &bankpipe_enrich::Categorizer,
    zone: chrono_tz::Tz,
) -> Result<usize> {
    let mut problems = 0;
    let mut report = |scope: &str, f: Finding| {
        problems += usize::from(f.problem);
        print(scope, &f);
    };
    let policy = Policy { max_wait: std::time::Duration::from_secs(10), ..Policy::default() };
    let client = HttpClient::new(policy.clone())?;
    // Sinks: with PostgreSQL, through the budget the workers share, so a
    // check never spends what a running sync counts on.
    let shared_client = match bankpipe_pipeline::rate::shared_budget(store) {
        Some(budget) => Some(HttpClient::new(policy)?.with_shared_budget(budget)),
        None => None,
    };
    let sink_client = shared_client.as_ref().unwrap_or(&client);
    // Source accounts known: stored, and listed by the sources now.
    let mut accounts: BTreeSet<(String, String)> =
        store.accounts().await?.into_iter().map(|a| (a.source.to_string(), a.source_account_id)).collect();
    println!("sources:");
    for source in &config.sources {
        let live = match LiveSource::from_config(source, zone) {
            Ok(live) => live,
            Err(e) => {
                report(&source.name, Finding::problem(e.to_string()));
                continue;
            }
        };
        // One cheap request: today's window, one record per page.
        let today = chrono::Utc::now().date_naive();
        let probe = LiveSource { page_size: 1, ..live };
        let mut seen = BTreeSet::new();
        let walked = probe
            .walk::<anyhow::Error, _>(&client, Window { from: Some(today), to: Some(today) }, async |p| {
                seen.extend(p.page.accounts.iter().map(|a| a.source_account_id.clone()));
                Ok(())
            })
            .await;
        match walked {
            Ok(_) => report(&source.name, Finding::ok(format!("reached {} with the credentials", source.base_url))),
            Err(e) => report(&source.name, Finding::problem(format!("{e:#}"))),
        }
        accounts.extend(seen.into_iter().map(|a| (source.name.clone(), a)));
    }
    println!("sinks:");
    for sink in config.sinks.iter().filter(|s| !s.is_file()) {
        // The credentials, as `sync` reads them before a run.
        let mut sink = sink.clone();
        let resolved = sink.resolve_secrets();
        let sink = &sink;
        let findings: Result<Vec<Finding>, SinkError> = match &sink.kind {
            _ if resolved.is_err() => Ok(resolved.err().into_iter().map(|e| Finding::problem(e.to_string())).collect()),
            SinkKind::Trupocket(tp) => match TrupocketSink::new(sink, tp, &categorizer.sink_maps, store, vec![]) {
                Ok(mut s) => s.check(sink_client).await,
                Err(e) => Err(e),
            },
            SinkKind::Mibudge(mb) => match MibudgeSink::new(sink, mb, &categorizer.sink_maps, zone) {
                Ok(mut s) => s.check(sink_client).await,
                Err(e) => Err(e),
            },
            SinkKind::File => Ok(vec![]),
        };
        match findings {
            Ok(list) => list.into_iter().for_each(|f| report(&sink.name, f)),
            Err(e) => report(&sink.name, Finding::problem(format!("{e:#}"))),
        }
        let unmapped: Vec<&(String, String)> =
            accounts.iter().filter(|(src, acc)| mapped_account(&sink.accounts, src, acc).is_none()).collect();
        if !unmapped.is_empty() {
            report(
                &sink.name,
                Finding::ok(format!(
                    "{} source account(s) without a mapping stay queued; to deliver them, add under this sink:\n\
                     [sinks.accounts]\n{}",
                    unmapped.len(),
                    unmapped
                        .iter()
                        .map(|(s, a)| format!("\"{s}:{a}\" = \"<{} account id>\"", sink.name))
                        .collect::<Vec<_>>()
                        .join("\n")
                )),
            );
        }
        let origin = bankpipe_pipeline::deliver::sink_origin(sink)?.to_string();
        if let Some((limit, remaining, reset)) = store.rate_budget(&origin).await? {
            let until =
                chrono::DateTime::from_timestamp(reset, 0).map_or_else(|| reset.to_string(), |t| t.to_rfc3339());
            let limit = limit.map_or_else(|| "?".to_owned(), |l| l.to_string());
            report(
                &sink.name,
                Finding::ok(format!("last rate budget seen: {remaining} of {limit} left until {until}")),
            );
        }
    }
    Ok(problems)
}
