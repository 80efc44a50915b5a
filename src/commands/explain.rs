//! `bankpipe explain <id>`: why a stored transaction was kept, merged,
//! superseded or categorized as it is; or why a record was quarantined.

use anyhow::Result;
use bankpipe_model::Transaction;
use bankpipe_store::{with_store, LinkKind, Store};

use crate::cli::ExplainArgs;
use crate::setup;

pub fn run(args: &ExplainArgs) -> Result<()> {
    let path = &args.config.config;
    let config = setup::load_config(Some(path))?;
    let categorizer = setup::categorizer(&config, Some(path))?;
    let out = setup::runtime()?.block_on(async {
        let store = setup::open_existing_store(&config).await?;
        let sinks: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
        with_store!(&store, s => explain(s, &categorizer, &sinks, &args.id).await)
    })?;
    print!("{out}");
    Ok(())
}

async fn explain<S: Store>(
    store: &S,
    categorizer: &bankpipe_enrich::Categorizer,
    sinks: &[String],
    id: &str,
) -> Result<String> {
    let mut matches: Vec<Transaction> = Vec::new();
    if let Some(tx) = store.transaction(id).await? {
        matches.push(tx);
    } else {
        store
            .for_each_transaction(|tx| {
                if tx.source_transaction_id == id {
                    matches.push(tx);
                }
                Ok(())
            })
            .await?;
    }
    let mut out = String::new();
    if matches.is_empty() {
        let quarantined: Vec<_> = store
            .quarantine()
            .await?
            .into_iter()
            .filter(|q| q.record_id.as_deref() == Some(id) || q.value.contains(id) || q.pointer.contains(id))
            .collect();
        if quarantined.is_empty() {
            anyhow::bail!(
                "no stored transaction has id or source transaction id {id:?}, and no quarantined record mentions it"
            );
        }
        for q in quarantined {
            out += &format!(
                "quarantined: {} {}#{}: field {:?} = {:?}: {}\n",
                q.source, q.file, q.pointer, q.field, q.value, q.reason
            );
        }
        return Ok(out);
    }
    for tx in matches {
        out += &format!(
            "{} {}:{}:{}\n  {} {} {} on {} — {:?}\n",
            tx.id,
            tx.source,
            tx.source_account_id,
            tx.source_transaction_id,
            tx.status.as_str(),
            tx.amount,
            tx.amount.currency().code(),
            tx.booking_date,
            tx.description
        );
        let links = store.links_of(&tx.id.to_string()).await?;
        let own: Vec<_> = links.iter().filter(|l| l.transaction_id == tx.id.to_string()).collect();
        let kept_for: Vec<_> = links.iter().filter(|l| l.target_id == tx.id.to_string()).collect();
        if own.is_empty() {
            out += &format!(
                "  kept: {}\n",
                if tx.counts() {
                    "counts in daily totals and is deliverable"
                } else if tx.memo_only {
                    "a MEMO line, stored but never money"
                } else {
                    "pending, not yet posted"
                }
            );
        }
        for l in own {
            let verb = match l.kind {
                LinkKind::Superseded => "superseded by",
                LinkKind::Duplicate => "duplicate of",
            };
            out += &format!("  {verb} {}: {}\n", l.target_id, l.reason);
        }
        for l in kept_for {
            let what = match l.kind {
                LinkKind::Superseded => "its pending row",
                LinkKind::Duplicate => "the duplicate",
            };
            out += &format!("  kept over {what} {}: {}\n", l.transaction_id, l.reason);
        }
        for sink in sinks {
            let line = match store.delivery(sink, &tx.id.to_string()).await? {
                None => "not queued".to_owned(),
                Some(d) => format!(
                    "{}{}{}{}",
                    d.state.as_str(),
                    d.remote_id.map(|r| format!(", sink row {r}")).unwrap_or_default(),
                    d.marker.map(|m| format!(", marker #{m}")).unwrap_or_default(),
                    d.reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
            };
            out += &format!("  delivery to {sink}: {line}\n");
        }
        let mut again = tx.clone();
        let decision = categorizer.categorize(&mut again);
        out += &format!(
            "  category {} ({}): {}\n",
            tx.category.as_deref().unwrap_or("-"),
            tx.category_source.as_str(),
            categorizer.explain(&again, &decision)
        );
        if again.category != tx.category {
            out += &format!(
                "  note: with the current rules it would now be {}; it changes on the next sync that re-reads it\n",
                again.category.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(out)
}
