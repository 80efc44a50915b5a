//! Replay is a sync over recordings (issue #12): the pages a simulator
//! serves are recorded with `bankpipe record`; `bankpipe sync` of the same
//! simulator followed by `bankpipe export`, and `bankpipe replay --source
//! NAME=DIR` of the recording, give byte-identical canonical files — the
//! configured names (hence ids), a rule scoped to one source, pending →
//! posted under another id, and the source's daily totals all included
//! (quarantine records differ only in where they were read: URL or file).

mod support;

use std::path::Path;

use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::{json, Value};
use support::{args, bankpipe_async, root, SIM_ENV};

const CANONICAL: &[&str] = &["transactions.csv", "transactions.jsonl", "accounts.csv", "daily_totals.csv"];

/// Quarantine records name where they were read: the page URL and the JSON
/// pointer within that page for the sync, the page file for the replay.
/// Everything else must be equal.
fn quarantine_without_origin(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("file");
            o.remove("pointer");
            v
        })
        .collect()
}

fn truv_tx(id: &str, status: &str, date: &str, amount: &str, merchant: &str) -> Value {
    let posted = if status == "POSTED" { json!(format!("{date}T12:00:00Z")) } else { Value::Null };
    json!({"id": id, "account_id": "chk-x", "amount": amount, "currency_code": "USD", "type": "DEBIT", "status": status,
           "posted_at": posted, "transacted_at": format!("{date}T11:00:00Z"), "updated_at": format!("{date}T13:00:00Z"),
           "description": merchant.to_uppercase(), "merchant_name": merchant, "merchant_category_code": 5812, "categories": []})
}

fn ok(o: &std::process::Output, what: &str) {
    assert!(o.status.success(), "{what} failed: {}", String::from_utf8_lossy(&o.stderr));
}

async fn replay_equals_sync_then_export(database: Option<(&str, &str)>) {
    let mut data = TruvData::from_recorded(&root().join("fixtures/truv/multipage")).unwrap();
    // Pending, then posted with a tip under another id: superseded (DESIGN §4.6).
    data.transactions.push(truv_tx("p-1", "PENDING", "2024-03-05", "42.10", "Trattoria Roma"));
    data.transactions.push(truv_tx("q-1", "POSTED", "2024-03-06", "48.10", "Trattoria Roma"));
    let truv = TruvSim::new(
        TruvConfig { daily_totals: true, skew_daily_totals: vec!["2024-03-02".into()], ..TruvConfig::default() },
        data,
    );
    let firefly = FireflySim::new(
        FireflyConfig::default(),
        FireflyData::from_recorded(&root().join("fixtures/firefly/groups")).unwrap(),
    );
    let ts = SimServer::start(truv.router(), 0).await.unwrap();
    let fs = SimServer::start(firefly.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = match database {
        None => format!("[store]\ndatabase_url = \"sqlite://{}\"\n", dir.path().join("state.db").display()),
        Some((url, schema)) => format!("[store]\ndatabase_url = \"{url}\"\nschema = \"{schema}\"\n"),
    };
    let config = dir.path().join("bankpipe.toml");
    std::fs::write(
        &config,
        format!(
            "{store}[[sources]]\nname = \"truv-main\"\nkind = \"truv\"\nbase_url = \"{}\"\nlink_id = \"{}\"\n\
             client_id_env = \"T_ID\"\nsecret_env = \"T_SECRET\"\n\n\
             [[sources]]\nname = \"ledger\"\nkind = \"firefly\"\nbase_url = \"{}\"\ntoken_env = \"F_TOKEN\"\n\n\
             [[rules]]\nname = \"truv-coffee\"\nsource = \"truv-main\"\nmatch_merchant = \"^blue bottle\"\n\
             category = \"Food & Dining/Coffee Shops\"\n",
            ts.base_url(),
            TruvConfig::default().link_id,
            fs.base_url()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();

    // Record what the simulators serve, as a user records production pages.
    let recorded = dir.path().join("recorded");
    for (name, page_size) in [("truv-main", "4"), ("ledger", "3")] {
        let out = path(&recorded.join(name));
        let o = bankpipe_async(
            args(&["record", "--config", c, "--source", name, "--out", &out, "--page-size", page_size]),
            SIM_ENV.to_vec(),
        )
        .await;
        ok(&o, "record");
    }

    // The production path: sync, then export.
    ok(&bankpipe_async(args(&["sync", "--config", c]), SIM_ENV.to_vec()).await, "sync");
    let exported = dir.path().join("exported");
    ok(&bankpipe_async(args(&["export", "--config", c, "--out", &path(&exported)]), vec![]).await, "export");

    // The replay of the recording, bound to the configured sources.
    let replayed = dir.path().join("replayed");
    let o = bankpipe_async(
        args(&[
            "replay",
            "--config",
            c,
            "--source",
            &format!("truv-main={}", path(&recorded.join("truv-main"))),
            "--source",
            &format!("ledger={}", path(&recorded.join("ledger"))),
            "--out",
            &path(&replayed),
        ]),
        vec![],
    )
    .await;
    ok(&o, "replay");

    for name in CANONICAL {
        let a = std::fs::read_to_string(exported.join(name)).unwrap();
        let b = std::fs::read_to_string(replayed.join(name)).unwrap();
        assert!(a == b, "{name} differs between sync+export and replay:\n--- export\n{a}\n--- replay\n{b}");
    }

    let quarantined = quarantine_without_origin(&exported.join("quarantine.jsonl"));
    assert_eq!(quarantined, quarantine_without_origin(&replayed.join("quarantine.jsonl")));
    assert_eq!(quarantined.len(), 1, "the fixture's one over-precise Firefly amount");

    // And it is not equal by being empty: the configured names, the scoped
    // rule, the supersede and the skewed source total are all in it.
    let rows = support::read_csv(&replayed.join("transactions.csv"));
    assert!(rows.iter().all(|r| r["source"] == "truv-main" || r["source"] == "ledger"));
    let coffee = rows.iter().find(|r| r["source_transaction_id"] == "t-001").unwrap();
    assert_eq!(coffee["category_source"], "rule");
    let p = rows.iter().find(|r| r["source_transaction_id"] == "p-1").unwrap();
    let q = rows.iter().find(|r| r["source_transaction_id"] == "q-1").unwrap();
    assert_eq!(p["superseded_by"], q["id"]);
    let daily = support::read_csv(&replayed.join("daily_totals.csv"));
    assert_eq!(daily.iter().filter(|d| d["status"] == "mismatch").count(), 1, "{daily:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_equals_sync_then_export_sqlite() {
    replay_equals_sync_then_export(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_equals_sync_then_export_postgres() {
    let Some((url, schema)) = support::postgres("replay_equals_sync_then_export_postgres", "equiv") else { return };
    replay_equals_sync_then_export(Some((&url, &schema))).await;
}
