//! Delivery to Trupocket and mibudge, end to end over loopback HTTP:
//! every canonical transaction lands exactly once in each sink's ledger,
//! whatever the faults.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bankpipe_sim::faults::Faults;
use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::Value;
use support::{args, bankpipe_async, root};

const ENV: [(&str, &str); 6] = support::ALL_ENV;

/// The simulator's Trupocket, with a per-second budget instead of the
/// Premium plan's daily one: that window resets at midnight UTC, and near it
/// bankpipe rightly paces its calls seconds apart, which would make the
/// tests' timing depend on the hour.
fn tp_config() -> TrupocketConfig {
    TrupocketConfig { rate_limit: RateLimit { limit: 1_000, window_secs: 1 }, ..TrupocketConfig::default() }
}

/// Canonical transactions the fixtures make deliverable: 6 counted Truv rows
/// (multipage) and 7 Firefly legs (groups), one of them in EUR.
const DELIVERABLE: usize = 13;

struct World {
    _servers: Vec<SimServer>,
    trupocket: Arc<TrupocketSim>,
    mibudge: Arc<MibudgeSim>,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

async fn world(tp: TrupocketConfig, mb: MibudgeConfig, max_wait_secs: u64) -> World {
    world_with(tp, mb, max_wait_secs, true).await
}

/// `create_categories = false` seeds only the fallback category, `Uncategorized`.
async fn world_with(tp: TrupocketConfig, mb: MibudgeConfig, max_wait_secs: u64, create_categories: bool) -> World {
    let truv =
        TruvSim::new(TruvConfig::default(), TruvData::from_recorded(&root().join("fixtures/truv/multipage")).unwrap());
    let firefly = FireflySim::new(
        FireflyConfig::default(),
        FireflyData::from_recorded(&root().join("fixtures/firefly/groups")).unwrap(),
    );
    let trupocket = TrupocketSim::new(tp);
    let household = trupocket.seed_household("Home");
    if !create_categories {
        trupocket.seed_category(&household, "Uncategorized");
    }
    let tp_accounts: Vec<String> =
        ["chk", "card", "ff1", "ff2", "ff5"].iter().map(|n| trupocket.seed_account(&household, "chkg", n)).collect();
    let mibudge = MibudgeSim::new(mb);
    let mb_accounts: Vec<String> =
        ["USD", "USD", "USD", "USD", "EUR"].iter().map(|c| mibudge.seed_bank_account("acct", c)).collect();
    let groceries = mibudge.seed_budget(&mb_accounts[2], "Groceries");
    let _ = groceries;
    let servers = vec![
        SimServer::start(truv.router(), 0).await.unwrap(),
        SimServer::start(firefly.router(), 0).await.unwrap(),
        SimServer::start(trupocket.router(), 0).await.unwrap(),
        SimServer::start(mibudge.router(), 0).await.unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let map = |ids: &[String]| {
        format!(
            "\"chk-001\" = \"{}\"\n\"card-002\" = \"{}\"\n\"1\" = \"{}\"\n\"2\" = \"{}\"\n\"5\" = \"{}\"\n",
            ids[0], ids[1], ids[2], ids[3], ids[4]
        )
    };
    let extra = format!(
        "[[sinks]]\nname = \"trupocket\"\nkind = \"trupocket\"\nbase_url = \"{}/v1\"\ntoken_env = \"TP_PAT\"\nhousehold_id = \"{household}\"\n\
         create_categories = {create_categories}\nmax_wait_secs = {max_wait_secs}\n[sinks.accounts]\n{}\n\
         [[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{}\"\nlogin_env = \"MB_LOGIN\"\npassword_env = \"MB_PASSWORD\"\n\
         max_wait_secs = {max_wait_secs}\n[sinks.accounts]\n{}\n\
         [categories.mibudge]\n\"Food & Dining/Groceries\" = \"Groceries\"\n",
        servers[2].base_url(),
        map(&tp_accounts),
        servers[3].base_url(),
        map(&mb_accounts)
    );
    let config =
        support::write_config(dir.path(), Some(&servers[0].base_url()), Some(&servers[1].base_url()), None, &extra);
    World { _servers: servers, trupocket, mibudge, dir, config }
}

async fn sync(config: &Path) -> std::process::Output {
    bankpipe_async(args(&["sync", "--config", config.to_str().unwrap(), "--json"]), ENV.to_vec()).await
}

/// Ledger entries grouped by what identifies a movement; panics on a double.
fn assert_exactly_once(name: &str, ledger: &[Value], key: impl Fn(&Value) -> String, expected: usize) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in ledger {
        *seen.entry(key(entry)).or_default() += 1;
    }
    // The fixtures hold one pair of true twins (two coffees): that key appears twice legitimately.
    let twins = seen.iter().filter(|(k, n)| **n == 2 && k.contains("Blue Bottle")).count();
    for (k, n) in &seen {
        assert!(*n == 1 || (*n == 2 && k.contains("Blue Bottle")), "{name}: {k} delivered {n} times");
    }
    assert_eq!(twins, 1, "{name}: both twins delivered, once each");
    assert_eq!(ledger.len(), expected, "{name}: {seen:#?}");
}

fn tp_key(t: &Value) -> String {
    format!("{} {} {} {}", t["fromAccountID"], t["date"], t["categories"][0]["amount"], t["payee"])
}

fn mb_key(t: &Value) -> String {
    let merchant = t["description"].as_str().unwrap_or("");
    format!("{} {} {} {} {merchant}", t["bank_account"], t["posted_date"], t["amount"], t["raw_description"])
}

fn check_ledgers(w: &World) {
    // Trupocket refuses the EUR row (household in USD), and receives the
    // Firefly transfer between two of its accounts as one `transfer` row
    // (its two legs); mibudge has an EUR account, and a row per leg.
    let ledger = w.trupocket.ledger();
    assert_exactly_once("trupocket", &ledger, tp_key, DELIVERABLE - 2);
    let transfers: Vec<&Value> = ledger.iter().filter(|t| t["cashflow"] == "transfer").collect();
    assert_eq!(transfers.len(), 1, "one transfer row: {transfers:?}");
    assert!(transfers[0]["toAccountID"].is_string() && transfers[0]["toAccountID"] != transfers[0]["fromAccountID"]);
    assert_exactly_once("mibudge", &w.mibudge.ledger(), mb_key, DELIVERABLE);
}

/// The `--json` summary of a sync that completed: exit 0, or 3 when a
/// delivery of the run failed (the EUR row Trupocket refuses) or a sink stopped.
fn json(o: &std::process::Output) -> Value {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 3)), "sync did not complete: {stderr}");
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_run_delivers_each_transaction_once_and_a_second_run_nothing() {
    let tp = TrupocketConfig { rate_limit: RateLimit { limit: 10, window_secs: 1 }, ..TrupocketConfig::default() };
    let w = world(tp, MibudgeConfig::default(), 60).await;
    let o = sync(&w.config).await;
    assert_eq!(o.status.code(), Some(3), "the refused EUR row makes the run 'completed with failures'");
    let first = json(&o);
    assert_eq!(first["outcome"], "completed-with-failures");
    check_ledgers(&w);
    let tp = first["deliveries"].as_array().unwrap().iter().find(|d| d["sink"] == "trupocket").unwrap();
    assert_eq!(
        (tp["delivered"].as_u64(), tp["failed"].as_u64()),
        (Some(11), Some(1)),
        "11 rows: the transfer legs are one: {tp}"
    );
    assert_eq!(w.trupocket.rejected_429(), 0, "no 429 when pacing by the advertised limits");
    let requests = w.trupocket.requests();
    let o = sync(&w.config).await;
    assert_eq!(o.status.code(), Some(0), "nothing failed in this run: {}", String::from_utf8_lossy(&o.stderr));
    let second = json(&o);
    check_ledgers(&w);
    assert!(second["deliveries"].as_array().unwrap().iter().all(|d| d["delivered"] == 0));
    let log = w.trupocket.request_log();
    assert_eq!(
        w.trupocket.requests() - requests,
        1,
        "a run with nothing to deliver only lists the categories: {:?}",
        &log[requests as usize..]
    );
    assert_eq!(
        w.trupocket.rejected_429(),
        0,
        "the second run starts from the budget the first one left (rate_budgets)"
    );
    assert_eq!(w.mibudge.logins(), 2, "one login per run");
    let splits = w.mibudge.split_calls();
    assert_eq!(splits, 1, "one grocery row is split to the Groceries budget");
    let status = bankpipe_async(args(&["status", "--config", w.config.to_str().unwrap()]), vec![]).await;
    assert!(String::from_utf8_lossy(&status.stdout).contains("trupocket        0 waiting, 1 failed, 12 delivered"));
    let _ = &w.dir;
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_through_5xx_and_dropped_responses() {
    let faults = Faults { error_rate: 0.2, drop_after_processing_rate: 0.3, ..Faults::none() };
    let tp = TrupocketConfig { faults: faults.clone(), ..tp_config() };
    let mb = MibudgeConfig { faults: Faults { html_errors: true, ..faults }, ..MibudgeConfig::default() };
    let w = world(tp, mb, 60).await;
    // A run may stop a sink on an unlucky streak (exit 3 naming it); the
    // next one resumes. Settled: both sinks ran to the end, nothing in flight.
    for _ in 0..10 {
        let o = sync(&w.config).await;
        let summary: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        let sinks = summary["deliveries"].as_array().cloned().unwrap_or_default();
        if sinks.len() == 2 && sinks.iter().all(|d| d["in_flight"] == 0 && d["stopped"].is_null()) {
            break;
        }
    }
    json(&sync(&w.config).await);
    check_ledgers(&w);
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_across_kill_9_during_delivery() {
    let slow = Faults { latency: Duration::from_millis(15), ..Faults::none() };
    let tp = TrupocketConfig { faults: slow.clone(), ..tp_config() };
    let mb = MibudgeConfig { faults: slow, ..MibudgeConfig::default() };
    let w = world(tp, mb, 60).await;
    let mut kills = 0;
    let mut rng = fastrand::Rng::with_seed(7);
    while kills < 20 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bankpipe"))
            .args(["sync", "--config", w.config.to_str().unwrap()])
            .envs(ENV)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(rng.u64(30..400))).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        if w.trupocket.ledger().len() == DELIVERABLE - 2 && w.mibudge.ledger().len() == DELIVERABLE && kills >= 20 {
            break;
        }
    }
    json(&sync(&w.config).await);
    check_ledgers(&w);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_renewed_and_nothing_is_doubled() {
    let mb = MibudgeConfig {
        token_lifetime: Duration::from_millis(250),
        faults: Faults { latency: Duration::from_millis(40), ..Faults::none() },
        ..MibudgeConfig::default()
    };
    let w = world(tp_config(), mb, 60).await;
    json(&sync(&w.config).await);
    check_ledgers(&w);
    let logins = w.mibudge.logins();
    assert!(logins >= 2, "the token expired mid-run and was renewed");
    assert!(logins <= 8, "logged in again only on 401s, not per request: {logins}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_storm_is_waited_out() {
    let mb = MibudgeConfig { api_limit: Some((4, 1)), ..MibudgeConfig::default() };
    let w = world(tp_config(), mb, 60).await;
    json(&sync(&w.config).await);
    check_ledgers(&w);
    assert!(w.mibudge.rejected_429() > 0, "the storm happened");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_plan_exits_75_keeps_the_backlog_and_resumes() {
    // Like the Free plan (20 calls a day), a budget too long to pace: 9 calls
    // per 20-second window, spent as needed; waiting for the next window
    // exceeds max_wait_secs = 1.
    let tp = TrupocketConfig {
        rate_limit: RateLimit { limit: 9, window_secs: 20 },
        plan: "free".into(),
        ..TrupocketConfig::default()
    };
    let w = world_with(tp, MibudgeConfig::default(), 1, false).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    tokio::time::sleep(Duration::from_secs((now.as_secs() / 20 + 1) * 20) - now + Duration::from_millis(50)).await;
    let o = sync(&w.config).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("rate budget exhausted"), "{stderr}");
    let partial = w.trupocket.ledger().len();
    assert!(partial > 0 && partial < DELIVERABLE - 2, "some delivered, the rest kept: {partial}");
    assert_eq!(w.trupocket.rejected_429(), 0, "stopped cleanly instead of hammering the limit");
    // After the window, the next run resumes and finishes.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    tokio::time::sleep(Duration::from_secs((now.as_secs() / 20 + 1) * 20) - now + Duration::from_millis(50)).await;
    json(&sync(&w.config).await);
    check_ledgers(&w);
    assert_eq!(w.trupocket.rejected_429(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_prints_the_plan_and_sends_nothing() {
    let w = world(tp_config(), MibudgeConfig::default(), 60).await;
    let o = bankpipe_async(args(&["sync", "--config", w.config.to_str().unwrap(), "--dry-run"]), ENV.to_vec()).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let count =
        |sink: &str, action: &str| lines.iter().filter(|l| l["sink"] == sink && l["plan"]["action"] == action).count();
    assert_eq!((count("trupocket", "send"), count("trupocket", "refuse")), (DELIVERABLE - 1, 1));
    assert_eq!(count("mibudge", "send"), DELIVERABLE);
    assert!(w.trupocket.ledger().is_empty() && w.mibudge.ledger().is_empty(), "nothing sent");
    assert_eq!(w.mibudge.logins(), 0);
    let status = bankpipe_async(args(&["status", "--config", w.config.to_str().unwrap(), "--json"]), vec![]).await;
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("no bankpipe database here"),
        "nothing written, not even a database file"
    );
    // After a real sync, a dry run has nothing left to plan.
    json(&sync(&w.config).await);
    let o = bankpipe_async(args(&["sync", "--config", w.config.to_str().unwrap(), "--dry-run"]), ENV.to_vec()).await;
    let remaining = String::from_utf8_lossy(&o.stdout).lines().count();
    assert_eq!(remaining, 0, "{}", String::from_utf8_lossy(&o.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn created_accounts_are_remembered_and_a_plan_limit_stops_the_sink() {
    // Trupocket without an account mapping but create_accounts = true, and a
    // plan capped at 5 transactions a month.
    let tp = TrupocketConfig { monthly_transactions: Some(5), ..tp_config() };
    let w = world(tp, MibudgeConfig::default(), 60).await;
    let text = std::fs::read_to_string(&w.config).unwrap();
    let start = text.find("[sinks.accounts]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    let unmapped = format!("{}create_accounts = true\n{}", &text[..start], &text[end..]);
    std::fs::write(&w.config, unmapped).unwrap();
    let first = json(&sync(&w.config).await);
    let tp_report = first["deliveries"].as_array().unwrap().iter().find(|d| d["sink"] == "trupocket").unwrap();
    assert_eq!(tp_report["delivered"], 5, "{tp_report}");
    assert!(tp_report["stopped"].as_str().unwrap().contains("plan-limit-exceeded"), "{tp_report}");
    let accounts_created =
        w.trupocket.request_log().iter().filter(|l| l.starts_with("POST") && l.ends_with("/accounts")).count();
    assert!(accounts_created >= 1);
    // The next run creates no account again and still stops at the cap.
    json(&sync(&w.config).await);
    let again = w.trupocket.request_log().iter().filter(|l| l.starts_with("POST") && l.ends_with("/accounts")).count();
    assert_eq!(again, accounts_created, "created accounts are remembered in the store");
    assert_eq!(w.trupocket.ledger().len(), 5, "nothing beyond the plan's cap, nothing doubled");
}
