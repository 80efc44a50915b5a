//! The delivery ledger against the Trupocket and mibudge simulators over
//! loopback HTTP, with the in-flight states a crash leaves behind set up
//! exactly (DESIGN §6, issue #9):
//!
//! - a user's own row identical to an in-flight delivery is never adopted;
//! - an in-flight delivery whose transaction was edited at the source since
//!   is found by the marker of the request that was sent (not a recomputed
//!   one), and the edit is then corrected on mibudge;
//! - a 2xx whose body cannot be read is reconciled, never sent again.

use bankpipe_store::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

use bankpipe_config::{CategoriesConfig, Config, SinkConfig};
use bankpipe_enrich::Categorizer;
use bankpipe_http::{HttpClient, Policy};
use bankpipe_model::{Money, Status, Transaction};
use bankpipe_sim::faults::Faults;
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::SimServer;
use bankpipe_sinks::mibudge::MibudgeSink;
use bankpipe_sinks::trupocket::TrupocketSink;
use bankpipe_sinks::{marker, markers_in, Plan, Sink};
use bankpipe_sources::recorded::walk_dir;
use bankpipe_sources::{NormalizeContext, PageError, SourceKind};
use bankpipe_store::{RunKind, SqliteStore};
use serde_json::Value;

/// The `[[sinks]]` entry of `kind` (`trupocket` or `mibudge`) at `base`, `chk-001` mapped to `account`, as a file gives it, its credentials
/// read from the environment.
fn sink(kind: &str, base: String, account: &str, household: Option<String>) -> SinkConfig {
    let own = match household {
        Some(h) => format!("token_env = \"LEDGER_TP\"\nhousehold_id = \"{h}\"\ncreate_categories = true\n"),
        None => "login_env = \"LEDGER_MB_LOGIN\"\npassword_env = \"LEDGER_MB_PASSWORD\"\n".to_owned(),
    };
    let mapped = format!("\"chk-001\" = \"{account}\"\n");
    let text = format!(
        "[[sinks]]\nname = \"{kind}\"\nkind = \"{kind}\"\nbase_url = \"{base}\"\nmax_wait_secs = 5\n{own}[sinks.accounts]\n{mapped}"
    );
    let mut sink = Config::parse(&text, std::path::Path::new("sinks.toml")).expect("a valid sink").sinks.remove(0);
    sink.resolve_secrets().expect("the credentials are set");
    sink
}

/// The Trupocket keys of a `kind = "trupocket"` entry.
fn tp_keys(config: &SinkConfig) -> &bankpipe_config::TrupocketConfig {
    config.trupocket().expect("a trupocket sink")
}

/// The mibudge keys of a `kind = "mibudge"` entry.
fn mb_keys(config: &SinkConfig) -> &bankpipe_config::MibudgeConfig {
    config.mibudge().expect("a mibudge sink")
}

/// The posted, counted transactions of the multipage fixture's account chk-001.
fn transactions() -> Vec<Transaction> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/truv/multipage"));
    let mut out: BTreeMap<String, Transaction> = BTreeMap::new();
    walk_dir::<PageError, _>(SourceKind::Truv, &NormalizeContext::new("truv"), dir, |_, p| {
        for t in p.transactions {
            out.insert(t.id.to_string(), t); // newest sighting last
        }
        Ok(())
    })
    .unwrap();
    out.into_values()
        .filter(|t| t.status == Status::Posted && !t.memo_only && t.source_account_id == "chk-001")
        .collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    categorizer: Categorizer,
    client: HttpClient,
    txs: Vec<Transaction>,
}

async fn setup() -> Setup {
    std::env::set_var("LEDGER_TP", TrupocketConfig::default().token);
    std::env::set_var("LEDGER_MB_LOGIN", "sim@example.com");
    std::env::set_var("LEDGER_MB_PASSWORD", "sim-password");
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("l.db").display())).await.unwrap();
    let categorizer = Categorizer::new(&[], &CategoriesConfig::default(), None).unwrap();
    let mut txs = transactions();
    for t in &mut txs {
        categorizer.categorize(t);
    }
    let run = store.begin_run(RunKind::Sync).await.unwrap();
    store.write_page(run, &[], &txs, &[]).await.unwrap();
    Setup { _dir: dir, store, categorizer, client: HttpClient::new(Policy::default()).unwrap(), txs }
}

/// Leave `tx` in flight with the request `sink` plans for it, as a process
/// killed right after committing `in_flight` does; returns the request body.
async fn left_in_flight<K: Sink>(s: &Setup, sink: &mut K, tx: &Transaction) -> Value {
    sink.prepare(&s.client).await.unwrap();
    s.store.enqueue_deliveries(sink.name(), false, sink.corrects()).await.unwrap();
    let m = marker(&tx.id, 0);
    let Plan::Send(request) = sink.plan(&s.client, tx, &m).await.unwrap() else { panic!("planned to send") };
    let text = serde_json::to_string(&request).unwrap();
    assert!(s.store.begin_delivery(sink.name(), tx, &m, &text).await.unwrap());
    request.body
}

fn without_marker(mut body: Value, memo: &str) -> Value {
    if body["categories"].is_array() {
        body["categories"][0]["memo"] = memo.into();
    } else {
        body["memo"] = memo.into();
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_identical_row_is_never_adopted() {
    let s = setup().await;
    let tx = s.txs[0].clone();

    let tp = TrupocketSim::new(TrupocketConfig::default());
    let household = tp.seed_household("Home");
    let account = tp.seed_account(&household, "chkg", "Checking");
    let tp_server = SimServer::start(tp.router(), 0).await.unwrap();
    let config = sink("trupocket", format!("{}/v1", tp_server.base_url()), &account, Some(household.clone()));
    let mut trupocket =
        TrupocketSink::new(&config, tp_keys(&config), &s.categorizer.sink_maps, &s.store, vec![]).unwrap();
    let body = left_in_flight(&s, &mut trupocket, &tx).await;
    tp.seed_transaction(&household, without_marker(body, "lunch, entered by hand"));
    let report = bankpipe_sinks::deliver(&s.store, &mut trupocket, &s.client, false).await.unwrap();
    assert_eq!(report.reconciled_found, 0, "the user's row is not ours");
    assert_eq!(report.reconciled_resent, 1, "the stored request was sent again");
    let ledger = tp.ledger();
    let memos: Vec<&str> = ledger.iter().map(|t| t["categories"][0]["memo"].as_str().unwrap()).collect();
    assert!(memos.contains(&"lunch, entered by hand"), "{memos:?}");
    assert_eq!(memos.iter().filter(|m| markers_in(m) == [marker(&tx.id, 0).as_str()]).count(), 1, "ours sent once");

    let mb = MibudgeSim::new(MibudgeConfig { page_size: 2, ..MibudgeConfig::default() });
    let bank = mb.seed_bank_account("Checking", "USD");
    let mb_server = SimServer::start(mb.router(), 0).await.unwrap();
    let config = sink("mibudge", mb_server.base_url(), &bank, None);
    let mut mibudge = MibudgeSink::new(&config, mb_keys(&config), &s.categorizer.sink_maps, chrono_tz::UTC).unwrap();
    let body = left_in_flight(&s, &mut mibudge, &tx).await;
    mb.seed_transaction(without_marker(body, "entered by hand"));
    let report = bankpipe_sinks::deliver(&s.store, &mut mibudge, &s.client, false).await.unwrap();
    assert_eq!(report.reconciled_found, 0, "the user's row is not ours");
    assert_eq!(report.reconciled_resent, 1, "the stored request was sent again");
    let rows = mb.transactions();
    let ours =
        rows.iter().filter(|t| t["memo"].as_str().is_some_and(|m| markers_in(m) == [marker(&tx.id, 0).as_str()]));
    assert_eq!(ours.count(), 1);
    assert!(rows.iter().any(|t| t["memo"] == "entered by hand"));
    assert_eq!(rows.len(), s.txs.len() + 1, "every transaction once, plus the user's row");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_between_the_lost_response_and_the_next_run_is_found_by_the_sent_marker_then_corrected() {
    let s = setup().await;
    let tx = s.txs[0].clone();
    let mb = MibudgeSim::new(MibudgeConfig::default());
    let bank = mb.seed_bank_account("Checking", "USD");
    let server = SimServer::start(mb.router(), 0).await.unwrap();
    let config = sink("mibudge", server.base_url(), &bank, None);
    let mut mibudge = MibudgeSink::new(&config, mb_keys(&config), &s.categorizer.sink_maps, chrono_tz::UTC).unwrap();
    // Sent and committed by the server; the answer was lost with the process.
    let body = left_in_flight(&s, &mut mibudge, &tx).await;
    let remote = mb.seed_transaction(body);
    // Before the next run the bank edits the row: another amount and merchant.
    let mut edited = tx.clone();
    edited.amount = Money::parse("-9.99", tx.amount.currency()).unwrap();
    edited.merchant_name = Some("Renamed Merchant".into());
    edited.updated_at = edited.updated_at.map(|u| u + chrono::Duration::days(1));
    let run = s.store.begin_run(RunKind::Sync).await.unwrap();
    s.store.write_page(run, &[], &[edited], &[]).await.unwrap();

    let report = bankpipe_sinks::deliver(&s.store, &mut mibudge, &s.client, false).await.unwrap();
    assert_eq!(report.reconciled_found, 1, "found by the marker of the request sent");
    let row = s.store.delivery("mibudge", &tx.id.to_string()).await.unwrap().unwrap();
    assert_eq!(row.remote_id.as_deref(), Some(remote.as_str()));
    assert_eq!(mb.transactions().len(), s.txs.len(), "nothing doubled");

    // The next run corrects the edit: delete + create, one row, new amount.
    let report = bankpipe_sinks::deliver(&s.store, &mut mibudge, &s.client, false).await.unwrap();
    assert_eq!(report.delivered, 1);
    let rows = mb.transactions();
    assert_eq!(rows.len(), s.txs.len(), "still one row per transaction");
    let mine: Vec<&Value> = rows
        .iter()
        .filter(|t| t["memo"].as_str().is_some_and(|m| markers_in(m) == [marker(&tx.id, 1).as_str()]))
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["amount"], "-9.99");
    assert!(rows.iter().all(|t| t["id"] != remote.as_str()), "the old row is deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_2xx_is_reconciled_never_sent_again() {
    let s = setup().await;
    let faults = Faults { unreadable_success_rate: 1.0, ..Faults::none() };
    let tp = TrupocketSim::new(TrupocketConfig { faults, ..TrupocketConfig::default() });
    let household = tp.seed_household("Home");
    let account = tp.seed_account(&household, "chkg", "Checking");
    let server = SimServer::start(tp.router(), 0).await.unwrap();
    let config = sink("trupocket", format!("{}/v1", server.base_url()), &account, Some(household));
    let mut trupocket =
        TrupocketSink::new(&config, tp_keys(&config), &s.categorizer.sink_maps, &s.store, vec![]).unwrap();
    let report = bankpipe_sinks::deliver(&s.store, &mut trupocket, &s.client, false).await.unwrap();
    assert_eq!((report.delivered, report.reconciled_found), (s.txs.len() as u64, s.txs.len() as u64));
    assert_eq!(tp.ledger().len(), s.txs.len(), "each sent once, found by its hashtag");
}

/// Two workers deliver to one household: a category one of them creates
/// after the other read the list is refused to the other as a duplicate.
/// The list is read again and the category used; nothing fails.
#[tokio::test(flavor = "multi_thread")]
async fn a_category_created_meanwhile_by_another_worker_is_used() {
    let s = setup().await;
    let tp = TrupocketSim::new(TrupocketConfig::default());
    let household = tp.seed_household("Home");
    let account = tp.seed_account(&household, "chkg", "Checking");
    let server = SimServer::start(tp.router(), 0).await.unwrap();
    let config = sink("trupocket", format!("{}/v1", server.base_url()), &account, Some(household.clone()));
    let mut trupocket =
        TrupocketSink::new(&config, tp_keys(&config), &s.categorizer.sink_maps, &s.store, vec![]).unwrap();
    trupocket.prepare(&s.client).await.unwrap(); // reads an empty list
    let wanted: std::collections::BTreeSet<String> = s
        .txs
        .iter()
        .map(|t| s.categorizer.sink_maps.trupocket(t.category.as_deref().unwrap_or("Uncategorized")).to_owned())
        .collect();
    for name in &wanted {
        tp.seed_category(&household, name); // "the other worker"
    }
    s.store.enqueue_deliveries("trupocket", false, false).await.unwrap();
    let report = bankpipe_sinks::deliver_queued(&s.store, &mut trupocket, &s.client).await.unwrap();
    assert_eq!((report.delivered, report.failed), (s.txs.len() as u64, 0), "{report:?}");
    assert_eq!(tp.ledger().len(), s.txs.len());
}

/// The live plan (`Sink::plan` against the simulators) and the offline plan
/// (`replay --sink-requests`, `sync --dry-run`) are one function: for the
/// same transaction and facts they give the same request, byte for byte —
/// and the same refusal for a currency the Trupocket household is not in.
#[tokio::test(flavor = "multi_thread")]
async fn live_and_offline_plans_give_the_same_request() {
    let s = setup().await;
    let zone = chrono_tz::UTC;
    let tp = TrupocketSim::new(TrupocketConfig::default());
    let household = tp.seed_household("Home");
    let account = tp.seed_account(&household, "chkg", "Checking");
    let tp_server = SimServer::start(tp.router(), 0).await.unwrap();
    let tp_config = sink("trupocket", format!("{}/v1", tp_server.base_url()), &account, Some(household));
    let mut trupocket =
        TrupocketSink::new(&tp_config, tp_keys(&tp_config), &s.categorizer.sink_maps, &s.store, vec![]).unwrap();
    trupocket.prepare(&s.client).await.unwrap();
    let mb = MibudgeSim::new(MibudgeConfig::default());
    let bank = mb.seed_bank_account("Checking", "USD");
    let mb_server = SimServer::start(mb.router(), 0).await.unwrap();
    let mb_config = sink("mibudge", mb_server.base_url(), &bank, None);
    let mut mibudge = MibudgeSink::new(&mb_config, mb_keys(&mb_config), &s.categorizer.sink_maps, zone).unwrap();
    mibudge.prepare(&s.client).await.unwrap();
    let mut txs = s.txs.clone();
    let mut euro = s.txs[0].clone();
    euro.amount = Money::parse("-4.75", bankpipe_model::Currency::from_code("EUR").unwrap()).unwrap();
    txs.push(euro);
    let mut sent = 0;
    for tx in &txs {
        let m = marker(&tx.id, 0);
        let live = trupocket.plan(&s.client, tx, &m).await.unwrap();
        let offline = bankpipe_sinks::offline::plan(&tp_config, &s.categorizer.sink_maps, zone, tx);
        assert_eq!(live, offline, "trupocket, {}", tx.id);
        sent += usize::from(matches!(live, Plan::Send(_)));
        if tx.amount.currency().code() == "USD" {
            let live = mibudge.plan(&s.client, tx, &m).await.unwrap();
            let offline = bankpipe_sinks::offline::plan(&mb_config, &s.categorizer.sink_maps, zone, tx);
            assert_eq!(live, offline, "mibudge, {}", tx.id);
            assert!(matches!(live, Plan::Send(_)), "{live:?}");
        }
    }
    assert_eq!(sent, s.txs.len(), "every USD row sent, the EUR one refused by both");
    assert!(matches!(
        bankpipe_sinks::offline::plan(&tp_config, &s.categorizer.sink_maps, zone, txs.last().unwrap()),
        Plan::Refuse(r) if r.contains("household is in USD")
    ));
}
