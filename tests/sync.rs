//! `bankpipe sync` and `backfill` end to end against the simulators.

mod support;

use std::path::Path;

use bankpipe_sim::faults::Faults;
use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::{json, Value};
use support::{args, bankpipe_async, json_out, read_csv, root, write_config, SIM_ENV};

fn source<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["sources"].as_array().unwrap().iter().find(|s| s["source"] == name).unwrap()
}

async fn sync(config: &Path) -> std::process::Output {
    bankpipe_async(args(&["sync", "--config", config.to_str().unwrap(), "--json"]), SIM_ENV.to_vec()).await
}

async fn export(config: &Path, out: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let o =
        bankpipe_async(args(&["export", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()]), vec![])
            .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    read_csv(&out.join("transactions.csv"))
}

async fn fixture_sims() -> (std::sync::Arc<TruvSim>, SimServer, std::sync::Arc<FireflySim>, SimServer) {
    let truv =
        TruvSim::new(TruvConfig::default(), TruvData::from_recorded(&root().join("fixtures/truv/multipage")).unwrap());
    let firefly = FireflySim::new(
        FireflyConfig::default(),
        FireflyData::from_recorded(&root().join("fixtures/firefly/groups")).unwrap(),
    );
    let ts = SimServer::start(truv.router(), 0).await.unwrap();
    let fs = SimServer::start(firefly.router(), 0).await.unwrap();
    (truv, ts, firefly, fs)
}

async fn second_sync_changes_nothing(database: Option<(&str, &str)>) {
    let (truv, ts, firefly, fs) = fixture_sims().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&ts.base_url()), Some(&fs.base_url()), database, "");
    let first = json_out(&sync(&config).await);
    assert_eq!(first["outcome"], "ok");
    assert_eq!(
        (source(&first, "truv")["inserted"].as_u64(), source(&first, "firefly")["inserted"].as_u64()),
        (Some(9), Some(7))
    );
    let requests = (truv.requests(), firefly.requests());
    let second = json_out(&sync(&config).await);
    for name in ["truv", "firefly"] {
        let s = source(&second, name);
        assert_eq!((s["inserted"].as_u64(), s["updated"].as_u64()), (Some(0), Some(0)), "{name}: {s}");
        assert!(s["from"].is_string(), "the second run starts at the watermark minus the overlap");
    }
    assert_eq!(
        (truv.requests() - requests.0, firefly.requests() - requests.1),
        (1, 1),
        "one page each for the overlap window"
    );
    // Twins survive every run.
    let rows = export(&config, &dir.path().join("out")).await;
    assert_eq!(rows.iter().filter(|r| r["description"] == "BLUE BOTTLE #12").count(), 2);
    assert_eq!(rows.len(), 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sync_changes_nothing_sqlite() {
    second_sync_changes_nothing(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sync_changes_nothing_postgres() {
    let Some((url, schema)) = support::postgres("a_second_sync_changes_nothing_postgres", "e2e") else { return };
    second_sync_changes_nothing(Some((&url, &schema))).await;
}

fn truv_tx(id: &str, status: &str, date: &str, amount: &str, merchant: &str, mcc: Option<u16>) -> Value {
    let posted = if status == "POSTED" { json!(format!("{date}T12:00:00Z")) } else { Value::Null };
    json!({"id": id, "account_id": "chk-x", "amount": amount, "currency_code": "USD", "type": "DEBIT", "status": status,
           "posted_at": posted, "transacted_at": format!("{date}T11:00:00Z"), "updated_at": format!("{date}T13:00:00Z"),
           "description": merchant.to_uppercase(), "merchant_name": merchant, "merchant_category_code": mcc, "categories": []})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_row_is_superseded_by_its_posted_row_in_a_later_run() {
    let data = TruvData {
        accounts: vec![],
        transactions: vec![truv_tx("p-1", "PENDING", "2024-03-01", "42.10", "Trattoria Roma", Some(5812))],
    };
    let truv = TruvSim::new(TruvConfig::default(), data);
    let ts = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&ts.base_url()), None, None, "");
    assert_eq!(json_out(&sync(&config).await)["superseded"], 0);
    // The bank posts it two days later with a tip, under another id.
    truv.push_transactions([truv_tx("q-1", "POSTED", "2024-03-03", "48.10", "Trattoria Roma", Some(5812))]);
    let second = json_out(&sync(&config).await);
    assert_eq!(second["superseded"], 1, "{second}");
    let rows = export(&config, &dir.path().join("out")).await;
    let p = rows.iter().find(|r| r["source_transaction_id"] == "p-1").unwrap();
    let q = rows.iter().find(|r| r["source_transaction_id"] == "q-1").unwrap();
    assert_eq!(p["superseded_by"], q["id"]);
    assert_eq!((p["counts"].as_str(), q["counts"].as_str()), ("0", "1"));
    let o = bankpipe_async(args(&["explain", "--config", config.to_str().unwrap(), "p-1"]), vec![]).await;
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("superseded by") && text.contains("within 20% for tip-prone MCC 5812"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn linked_accounts_keep_one_row_per_movement() {
    let data = TruvData {
        accounts: vec![],
        transactions: vec![truv_tx("g-1", "POSTED", "2024-03-05", "23.45", "Grocer", Some(5411))],
    };
    let truv = TruvSim::new(TruvConfig::default(), data);
    let firefly = FireflySim::new(
        FireflyConfig::default(),
        FireflyData::from_recorded(&root().join("fixtures/firefly/groups")).unwrap(),
    );
    let ts = SimServer::start(truv.router(), 0).await.unwrap();
    let fs = SimServer::start(firefly.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let link = "[[account_links]]\naccounts = [\"truv:chk-x\", \"firefly:1\"]\n";
    let config = write_config(dir.path(), Some(&ts.base_url()), Some(&fs.base_url()), None, link);
    let summary = json_out(&sync(&config).await);
    assert_eq!(summary["duplicates"], 1, "{summary}");
    let rows = export(&config, &dir.path().join("out")).await;
    let truv_row = rows.iter().find(|r| r["source_transaction_id"] == "g-1").unwrap();
    let ff_row = rows.iter().find(|r| r["source_transaction_id"] == "1001").unwrap();
    assert_eq!(ff_row["duplicate_of"], truv_row["id"], "the Firefly row duplicates the Truv row, which has an MCC");
    assert_eq!(truv_row["duplicate_of"], "");
    // The other Firefly rows of the group (-6.55 at the pharmacy) are untouched.
    assert_eq!(rows.iter().find(|r| r["source_transaction_id"] == "1002").unwrap()["duplicate_of"], "");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_sync_at_a_time_exits_75() {
    let (_t, ts, _f, fs) = fixture_sims().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&ts.base_url()), Some(&fs.base_url()), None, "");
    json_out(&sync(&config).await);
    let store = bankpipe_store::SqliteStore::open(&format!("sqlite://{}", dir.path().join("state.db").display()))
        .await
        .unwrap();
    let held = store.lock().await.unwrap();
    let o = sync(&config).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("another bankpipe sync holds this database's lock"), "{stderr}");
    drop(held);
    json_out(&sync(&config).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_keeps_its_watermarks_and_never_stops_the_others() {
    let (_t, ts, _f, fs) = fixture_sims().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&ts.base_url()), Some(&fs.base_url()), None, "");
    json_out(&sync(&config).await);
    let status = |c: &Path| {
        let c = c.to_str().unwrap().to_owned();
        async move { json_out(&bankpipe_async(args(&["status", "--config", &c, "--json"]), vec![]).await) }
    };
    let before = status(&config).await["watermarks"].clone();
    let o = bankpipe_async(
        args(&["sync", "--config", config.to_str().unwrap()]),
        vec![("T_ID", "sim-client"), ("T_SECRET", "wrong"), ("F_TOKEN", "sim-firefly-token")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "completed with failures: {stderr}");
    assert!(
        stderr.contains("source truv failed") && stderr.contains("HTTP 401") && !stderr.contains("wrong"),
        "{stderr}"
    );
    assert!(stderr.contains("firefly 1 pages 7 records"), "Firefly was still fetched: {stderr}");
    let after = status(&config).await;
    let truv_marks = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v.as_array().unwrap().iter().filter(|w| w["source"] == "truv").cloned().collect()
    };
    assert_eq!(truv_marks(&after["watermarks"]), truv_marks(&before), "the failed source's watermarks stay");
    assert_eq!(after["runs"][0]["outcome"], "completed-with-failures");
}

/// A sink's credentials are read before the run starts: a variable that is
/// not set (or empty) exits 2 naming the sink and the variable, before the
/// source is fetched, the database created or a sink reached.
#[tokio::test(flavor = "multi_thread")]
async fn a_sink_variable_not_set_exits_2_before_anything_is_fetched_or_sent() {
    use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
    let truv =
        TruvSim::new(TruvConfig::default(), TruvData::from_recorded(&root().join("fixtures/truv/multipage")).unwrap());
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let bank = mibudge.seed_bank_account("Checking", "USD");
    let servers =
        [SimServer::start(truv.router(), 0).await.unwrap(), SimServer::start(mibudge.router(), 0).await.unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let sink = support::mibudge_sink(&servers[1].base_url(), &format!("\"chk-001\" = \"{bank}\"\n"));
    let config = write_config(dir.path(), Some(&servers[0].base_url()), None, None, &sink);
    let sync = |password: Option<&'static str>| {
        let mut env = SIM_ENV.to_vec();
        env.push(("MB_LOGIN", "sim@example.com"));
        env.extend(password.map(|p| ("MB_PASSWORD", p)));
        bankpipe_async(args(&["sync", "--config", config.to_str().unwrap()]), env)
    };
    for (password, problem) in [(None, "is not set"), (Some(""), "is empty")] {
        let o = sync(password).await;
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("sink \"mibudge\"")
                && stderr.contains("MB_PASSWORD")
                && stderr.contains("password_env")
                && stderr.contains(problem),
            "{stderr}"
        );
        assert_eq!((truv.requests(), mibudge.requests()), (0, 0), "nothing fetched or sent");
        assert!(!dir.path().join("state.db").exists(), "no database created");
    }
    let o = sync(Some("sim-password")).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(truv.requests() > 0 && mibudge.requests() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_problems_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some("http://127.0.0.1:9"), None, None, "");
    let o = bankpipe_async(args(&["sync", "--config", config.to_str().unwrap(), "--source", "nope"]), SIM_ENV.to_vec())
        .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no source named \"nope\""));
    let o = bankpipe_async(args(&["sync", "--config", config.to_str().unwrap()]), vec![]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("T_ID"));
    let bad_dir = write_config(dir.path(), None, None, None, "");
    std::fs::write(&bad_dir, "[store]\ndatabase_url = \"sqlite:///nonexistent-dir/x/state.db\"\n[[sources]]\nname=\"f\"\nkind=\"firefly\"\nbase_url=\"http://127.0.0.1:9\"\ntoken_env=\"F_TOKEN\"\n").unwrap();
    let o = bankpipe_async(args(&["sync", "--config", bad_dir.to_str().unwrap()]), SIM_ENV.to_vec()).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent-dir/x") && stderr.contains("does not exist"), "{stderr}");
    // A database URL of no supported kind is a configuration problem.
    std::fs::write(&bad_dir, "[store]\ndatabase_url = \"mysql://u@127.0.0.1/db\"\n[[sources]]\nname=\"f\"\nkind=\"firefly\"\nbase_url=\"http://127.0.0.1:9\"\ntoken_env=\"F_TOKEN\"\n").unwrap();
    let o = bankpipe_async(args(&["sync", "--config", bad_dir.to_str().unwrap()]), SIM_ENV.to_vec()).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("database_url") && stderr.contains("mysql"), "{stderr}");
}

/// The indexes of `transactions` that have a definition, as SQLite lists them.
async fn transaction_indexes(db: &std::path::Path) -> Vec<(String, String)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let list = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions' AND sql IS NOT NULL \
         ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    list
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_resumes_after_kill_9_with_nothing_lost_or_doubled() {
    let gen =
        bankpipe_gen::GenConfig { accounts: 2, transactions: 1_500, page_size: 100, seed: 11, ..Default::default() };
    let data = TruvData::generated(gen);
    let unique = data.transactions.len();
    let slow = TruvConfig {
        faults: Faults { latency: std::time::Duration::from_millis(40), ..Faults::none() },
        ..TruvConfig::default()
    };
    let truv = TruvSim::new(slow, data);
    let ts = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&ts.base_url()), None, None, "");
    let cmd = args(&[
        "backfill",
        "--config",
        config.to_str().unwrap(),
        "--from",
        "2024-01-01",
        "--to",
        "2025-12-31",
        "--window-days",
        "30",
    ]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bankpipe"))
        .args(&cmd)
        .envs(SIM_ENV)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it finish a few windows, then kill -9 mid-window.
    let db = dir.path().join("state.db");
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if truv.requests() >= 12 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(db.exists());
    let killed_after = truv.requests();
    // The first load deferred every index of `transactions` (the unique id
    // index too) and died before building them: the resumed backfill
    // (opening the database with no other holder of its lock) builds
    // exactly the schema's, which also proves no id was stored twice.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_db = fresh.path().join("fresh.db");
    drop(bankpipe_store::SqliteStore::open(&format!("sqlite://{}", fresh_db.display())).await.unwrap());
    let schema = transaction_indexes(&fresh_db).await;
    assert!(transaction_indexes(&db).await.is_empty(), "deferred while loading");
    let resumed = json_out(&bankpipe_async([cmd.clone(), args(&["--json"])].concat(), SIM_ENV.to_vec()).await);
    assert_eq!(resumed["outcome"], "ok");
    let windows = 25; // 2024-01-01..=2025-12-31 in 30-day windows
    let resumed_pages = source(&resumed, "truv")["pages"].as_u64().unwrap();
    assert!(
        killed_after >= 12 && resumed_pages < windows,
        "the rerun skipped the finished windows: {resumed_pages} pages"
    );
    let rows = export(&config, &dir.path().join("out")).await;
    let ids: std::collections::BTreeSet<_> = rows.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids.len(), rows.len(), "no duplicates");
    assert_eq!(rows.len(), unique, "nothing lost");
    assert_eq!(transaction_indexes(&db).await, schema, "every index built again");
    // A third run has nothing left to do.
    let again = json_out(&bankpipe_async([cmd, args(&["--json"])].concat(), SIM_ENV.to_vec()).await);
    assert_eq!(source(&again, "truv")["pages"], 0, "every window is checkpointed");
}

/// The source's own daily totals are stored at sync time and reconciled
/// after dedupe: two deliberately wrong figures are reported by the sync,
/// `status` and `export` (DESIGN §3), the others match, and neither side
/// is "fixed".
async fn stored_source_totals_report_mismatches(database: Option<(&str, &str)>) {
    let skewed = vec!["2024-03-01".to_owned(), "2024-03-03".to_owned()];
    let truv = TruvSim::new(
        TruvConfig { daily_totals: true, skew_daily_totals: skewed.clone(), ..TruvConfig::default() },
        TruvData::from_recorded(&root().join("fixtures/truv/multipage")).unwrap(),
    );
    let ts = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&ts.base_url()), None, database, "");
    let summary = json_out(&sync(&config).await);
    let warnings: Vec<&str> =
        source(&summary, "truv")["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let mismatches: Vec<&&str> = warnings.iter().filter(|w| w.starts_with("daily total mismatch")).collect();
    assert_eq!(mismatches.len(), 2, "{warnings:?}");
    assert!(mismatches.iter().any(|w| w.contains("2024-03-01")) && mismatches.iter().any(|w| w.contains("2024-03-03")));

    let status = bankpipe_async(args(&["status", "--config", config.to_str().unwrap(), "--json"]), vec![]).await;
    let status = json_out(&status);
    let totals = &status["source_totals"];
    assert_eq!(totals["mismatching"], 2, "{totals}");
    assert_eq!(totals["matching"], 1, "{totals}");
    let days: Vec<&str> =
        totals["mismatches"].as_array().unwrap().iter().map(|m| m["date"].as_str().unwrap()).collect();
    assert_eq!(days, ["2024-03-01", "2024-03-03"]);
    let first = &totals["mismatches"][0];
    assert_ne!(first["source_net_total"], first["net_total"], "both figures are shown, neither replaced");
    assert_eq!(first["source_transaction_count"], first["transaction_count"], "only the amount was skewed");

    let out = dir.path().join("export");
    export(&config, &out).await;
    let daily = read_csv(&out.join("daily_totals.csv"));
    // The documented entry has no account id: it is reconciled against the
    // day summed over the response's accounts (the `*` row); per-account
    // rows have no source figure (`computed`).
    let status_of = |date: &str| -> Vec<String> {
        daily.iter().filter(|r| r["date"] == date && r["status"] != "computed").map(|r| r["status"].clone()).collect()
    };
    assert!(daily.iter().filter(|r| r["status"] != "computed").all(|r| r["source_account_id"] == "*"));
    assert_eq!(status_of("2024-03-01"), ["mismatch"]);
    assert_eq!(status_of("2024-03-02"), ["match"]);
    assert_eq!(status_of("2024-03-03"), ["mismatch"]);

    // A second sync re-reads the same figures: still exactly two, no more.
    let again = json_out(&sync(&config).await);
    let n = source(&again, "truv")["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w.as_str().is_some_and(|w| w.starts_with("daily total mismatch")))
        .count();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn stored_source_totals_report_mismatches_sqlite() {
    stored_source_totals_report_mismatches(None).await;
}

#[tokio::test]
async fn stored_source_totals_report_mismatches_postgres() {
    let Some((url, schema)) = support::postgres("stored_source_totals_report_mismatches_postgres", "totals") else {
        return;
    };
    stored_source_totals_report_mismatches(Some((&url, &schema))).await;
}
