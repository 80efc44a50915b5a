//! Never miss a transaction on the way in (issue #10), end to end over
//! loopback HTTP: a late settlement, a newly linked account, records
//! shifting between page requests, one source down while the other's rows
//! are delivered.

mod support;

use std::path::Path;

use bankpipe_sim::faults::Faults;
use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::{json, Value};
use support::{args, bankpipe_async, write_config};

const ENV: [(&str, &str); 5] = [
    ("T_ID", "sim-client"),
    ("T_SECRET", "sim-secret"),
    ("F_TOKEN", "sim-firefly-token"),
    ("MB_LOGIN", "sim@example.com"),
    ("MB_PASSWORD", "sim-password"),
];

fn account(id: &str) -> Value {
    json!({"id": id, "created_at": "2023-01-01T00:00:00Z", "updated_at": "2023-01-01T00:00:00Z",
           "type": "CHECKING", "subtype": null, "mask": "6789", "nickname": id,
           "balances": {"currency_code": "USD", "balance": "100.00", "available_balance": null, "credit_limit": null}})
}

/// A Truv record of `account`, transacted at noon UTC on `day`, posted on
/// `posted` (pending when `None`).
fn record(account: &str, id: &str, amount: &str, merchant: &str, day: &str, posted: Option<&str>) -> Value {
    let at = format!("{day}T12:00:00Z");
    let posted_at = posted.map(|p| format!("{p}T15:00:00Z"));
    json!({"id": id, "created_at": at, "updated_at": posted_at.clone().unwrap_or_else(|| at.clone()),
           "account_id": account, "external_id": null, "amount": amount, "currency_code": "USD",
           "check_number": null, "categories": ["Travel", "Hotel"], "description": merchant.to_uppercase(),
           "merchant_name": merchant, "status": if posted.is_some() { "POSTED" } else { "PENDING" },
           "type": "DEBIT", "posted_at": posted_at, "transacted_at": at, "memo": null,
           "merchant_category_code": 7011, "location": null})
}

async fn sync(config: &Path) -> (Option<i32>, Value, String) {
    let o = bankpipe_async(args(&["sync", "--config", config.to_str().unwrap(), "--json"]), ENV.to_vec()).await;
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let summary = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), summary, stderr)
}

fn amounts(mb: &MibudgeSim) -> Vec<String> {
    let mut a: Vec<String> = mb.transactions().iter().map(|t| t["amount"].as_str().unwrap().to_owned()).collect();
    a.sort();
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hold_settling_weeks_later_is_fetched_and_delivered() {
    // A hotel hold of 1 March, and daily postings through 30 March.
    let mut rows = vec![record("chk", "hold", "412.00", "Grand Hotel", "2024-03-01", None)];
    for day in 2..=30 {
        let d = format!("2024-03-{day:02}");
        rows.push(record("chk", &format!("c-{day}"), "4.50", "Cafe", &d, Some(&d)));
    }
    let truv = TruvSim::new(TruvConfig::default(), TruvData { accounts: vec![account("chk")], transactions: rows });
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let bank = mibudge.seed_bank_account("Checking", "USD");
    let servers =
        [SimServer::start(truv.router(), 0).await.unwrap(), SimServer::start(mibudge.router(), 0).await.unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let extra = support::mibudge_sink(&servers[1].base_url(), &format!("\"chk\" = \"{bank}\"\n"));
    let config = write_config(dir.path(), Some(&servers[0].base_url()), None, None, &extra);
    let (code, _, stderr) = sync(&config).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(mibudge.transactions().len(), 29, "the postings; the hold is pending");

    // 31 March: the hold settles (29 days after its transaction date,
    // beyond the 14-day overlap behind the watermark of 30 March).
    truv.push_transactions([record("chk", "hold", "398.20", "Grand Hotel", "2024-03-01", Some("2024-03-31"))]);
    let (code, summary, stderr) = sync(&config).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["sources"][0]["from"], "2024-03-01", "the window starts at the oldest pending row: {summary}");
    assert!(amounts(&mibudge).contains(&"-398.20".to_owned()), "the settlement was fetched and delivered");
    assert_eq!(mibudge.transactions().len(), 30);

    // Settled: the next window is back to watermark − overlap.
    let (_, summary, _) = sync(&config).await;
    assert_eq!(summary["sources"][0]["from"], "2024-03-17", "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newly_linked_account_gets_its_whole_history() {
    let recent: Vec<Value> = (20..=30)
        .map(|day| {
            let d = format!("2024-03-{day:02}");
            record("chk", &format!("c-{day}"), "4.50", "Cafe", &d, Some(&d))
        })
        .collect();
    let truv = TruvSim::new(TruvConfig::default(), TruvData { accounts: vec![account("chk")], transactions: recent });
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&server.base_url()), None, None, "");
    let (code, _, stderr) = sync(&config).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (_, summary, _) = sync(&config).await;
    assert_eq!(summary["sources"][0]["walks"], 1, "one walk while nothing is new: {summary}");

    // A savings account is linked, with a year of history before any window.
    let mut history = vec![record("sav", "s-new", "25.00", "Transfer", "2024-03-29", Some("2024-03-29"))];
    history.extend((1..=12).map(|m| {
        let d = format!("2023-{m:02}-15");
        record("sav", &format!("s-{m}"), "10.00", "Fee", &d, Some(&d))
    }));
    truv.push_transactions(history);
    let (code, summary, stderr) = sync(&config).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["sources"][0]["walks"], 2, "the window, then the new account's history: {summary}");
    assert_eq!(summary["sources"][0]["inserted"], 13, "all 13 of the new account's rows: {summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn records_moving_between_page_requests_are_all_read_or_the_source_fails_loudly() {
    let data = TruvData::generated(bankpipe_gen::GenConfig {
        accounts: 2,
        transactions: 1_500,
        page_size: 1000,
        seed: 5,
        ..Default::default()
    });
    let n = data.transactions.len();
    // A burst of activity during the first walk only.
    let burst =
        TruvConfig { faults: Faults { drift: true, ..Faults::none() }, drift_limit: Some(2), ..TruvConfig::default() };
    let truv = TruvSim::new(burst, data.clone());
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&server.base_url()), None, None, "");
    let (code, summary, stderr) = sync(&config).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["sources"][0]["walks"], 2, "the short pass was walked again: {summary}");
    assert_eq!(summary["sources"][0]["inserted"], n as u64 + 2, "every record, the 2 new ones too: {summary}");

    // A listing that never holds still: the source fails loudly with the
    // numbers, its watermarks stay, and the run says so.
    let restless = TruvConfig { faults: Faults { drift: true, ..Faults::none() }, ..TruvConfig::default() };
    let truv = TruvSim::new(restless, data);
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&server.base_url()), None, None, "");
    let (code, summary, stderr) = sync(&config).await;
    assert_eq!(code, Some(3), "{stderr}");
    let error = summary["sources"][0]["error"].as_str().unwrap();
    assert!(error.contains("incomplete walk") && error.contains("distinct records of the"), "{error}");
    let status = support::json_out(
        &bankpipe_async(args(&["status", "--config", config.to_str().unwrap(), "--json"]), vec![]).await,
    );
    assert_eq!(status["watermarks"], json!([]), "no watermark moved");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_source_down_the_others_rows_are_still_delivered() {
    let truv = TruvSim::new(
        TruvConfig { secret: "rotated".into(), ..TruvConfig::default() },
        TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap(),
    );
    let firefly = FireflySim::new(
        FireflyConfig::default(),
        FireflyData::from_recorded(&support::root().join("fixtures/firefly/groups")).unwrap(),
    );
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let bank = mibudge.seed_bank_account("Checking", "USD");
    let servers = [
        SimServer::start(truv.router(), 0).await.unwrap(),
        SimServer::start(firefly.router(), 0).await.unwrap(),
        SimServer::start(mibudge.router(), 0).await.unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let extra = support::mibudge_sink(
        &servers[2].base_url(),
        &format!("\"chk-001\" = \"{bank}\"\n\"firefly:1\" = \"{bank}\"\n"),
    );
    let config = write_config(dir.path(), Some(&servers[0].base_url()), Some(&servers[1].base_url()), None, &extra);
    let (code, summary, stderr) = sync(&config).await;
    assert_eq!(code, Some(3), "completed with failures: {stderr}");
    assert!(stderr.contains("source truv failed") && stderr.contains("HTTP 401"), "{stderr}");
    let truv_outcome = summary["sources"].as_array().unwrap().iter().find(|s| s["source"] == "truv").unwrap();
    assert!(truv_outcome["error"].as_str().unwrap().contains("401"), "{summary}");
    let delivered = summary["deliveries"][0]["delivered"].as_u64().unwrap();
    assert!(delivered >= 4, "Firefly's account-1 rows were delivered despite Truv: {summary}");
    assert_eq!(mibudge.transactions().len() as u64, delivered);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_amount_out_of_range_is_quarantined_and_blocks_nothing() {
    let mut huge = record("chk", "huge", "-100000000000000000.00", "Typo Bank", "2024-03-05", Some("2024-03-05"));
    huge["type"] = json!("DEBIT");
    let rows = vec![
        record("chk", "ok-1", "4.50", "Cafe", "2024-03-04", Some("2024-03-04")),
        huge,
        record("chk", "ok-2", "5.50", "Cafe", "2024-03-06", Some("2024-03-06")),
    ];
    let truv = TruvSim::new(TruvConfig::default(), TruvData { accounts: vec![account("chk")], transactions: rows });
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&server.base_url()), None, None, "");
    for run in 1..=2 {
        let (code, summary, stderr) = sync(&config).await;
        assert_eq!(code, Some(0), "run {run}: quarantine is not a failure: {stderr}");
        let s = &summary["sources"][0];
        assert_eq!((s["records"].as_u64(), s["quarantined"].as_u64()), (Some(3), Some(1)), "{summary}");
    }
    let o = bankpipe_async(args(&["explain", "--config", config.to_str().unwrap(), "huge"]), vec![]).await;
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("quarantined") && text.contains("out of range"), "{text}");
    let status = support::json_out(
        &bankpipe_async(args(&["status", "--config", config.to_str().unwrap(), "--json"]), vec![]).await,
    );
    assert_eq!(status["transactions"], 2, "the good rows are stored");
    assert_eq!(status["quarantined"], 1, "the re-read record is stored once");
}

#[test]
fn two_copies_with_one_updated_at_and_different_amounts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = record("chk", "t-1", "4.75", "Cafe", "2024-03-04", Some("2024-03-04"));
    let mut b = a.clone();
    b["amount"] = json!("5.00");
    let page =
        json!({"count": 2, "next": null, "previous": null, "accounts": [account("chk")], "transactions": [a, b]});
    std::fs::write(dir.path().join("page-001.json"), page.to_string()).unwrap();
    let (out, o) = support::replay_ok(&["--truv", dir.path().to_str().unwrap()]);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    let warnings = summary["warnings"].to_string();
    assert!(warnings.contains("t-1") && warnings.contains("-4.75") && warnings.contains("-5.00"), "{warnings}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("t-1"), "shown on stderr too");
}

/// A Truv look-alike answering every page with a gzip body that expands to
/// 256 MiB of zeros (256 KB on the wire).
async fn gzip_bomb() -> SimServer {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&chunk).unwrap();
    }
    let body = bytes::Bytes::from(gz.finish().unwrap());
    assert!(body.len() < 1 << 20, "small on the wire: {}", body.len());
    let app = axum::Router::new().route(
        "/v1/links/{link}/transactions/",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json"), ("content-encoding", "gzip")], body) }
        }),
    );
    SimServer::start(app, 0).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_bomb_is_refused_by_name_with_memory_bounded() {
    let server = gzip_bomb().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&server.base_url()), None, None, "");
    let out = dir.path().join("recorded");
    let (config, out) = (config.to_str().unwrap().to_owned(), out.to_str().unwrap().to_owned());
    // Peak RSS of the bankpipe process, from /usr/bin/time when the machine has it.
    let timed = Path::new("/usr/bin/time").exists();
    let o = tokio::task::spawn_blocking(move || {
        let mut c = if timed {
            let mut c = std::process::Command::new("/usr/bin/time");
            c.args(["-f", "peak-rss-kib=%M", env!("CARGO_BIN_EXE_bankpipe")]);
            c
        } else {
            std::process::Command::new(env!("CARGO_BIN_EXE_bankpipe"))
        };
        c.args(["record", "--config", &config, "--source", "truv", "--out", &out]).envs(ENV).output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/v1/links/") && stderr.contains("max_body_bytes"),
        "names the URL and the limit: {stderr}"
    );
    if let Some(kib) = stderr.lines().find_map(|l| l.strip_prefix("peak-rss-kib=")) {
        let kib: u64 = kib.trim().parse().unwrap();
        assert!(kib < 256 * 1024, "peak RSS {kib} KiB must stay under 256 MiB");
        eprintln!("gzip bomb: peak RSS {} MiB", kib / 1024);
    }
    let written: u64 =
        std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    assert!(written < 1 << 20, "no huge page file written: {written} bytes");
}
