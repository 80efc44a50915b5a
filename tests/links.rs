//! Many links: one template source with a links file, synced end to end
//! against one Truv simulator serving three links.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::{json, Value};
use support::{args, bankpipe_async, json_out, read_csv, write_config, SIM_ENV};

fn tx(id: &str, account: &str, date: &str, amount: &str, merchant: &str) -> Value {
    json!({"id": id, "account_id": account, "amount": amount, "currency_code": "USD", "type": "DEBIT",
           "status": "POSTED", "posted_at": format!("{date}T12:00:00Z"), "transacted_at": format!("{date}T11:00:00Z"),
           "updated_at": format!("{date}T13:00:00Z"), "description": merchant.to_uppercase(),
           "merchant_name": merchant, "merchant_category_code": null, "categories": []})
}

fn link(transactions: Vec<Value>) -> TruvData {
    TruvData { accounts: vec![], transactions }
}

/// `[store]` + a template `bank` whose links (alice, bob, carol) come from
/// `links.csv` beside the configuration, and a rule naming the template.
fn config(dir: &Path, truv: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("links.csv"),
        "link_id,name,sink,source_account,sink_account\nL-alice,alice,,,\nL-bob,bob,,,\nL-carol,carol,,,\n",
    )
    .unwrap();
    let template = format!(
        "[[sources]]\nname = \"bank\"\nkind = \"truv\"\nbase_url = \"{truv}\"\nclient_id_env = \"T_ID\"\n\
         secret_env = \"T_SECRET\"\nlinks_file = \"links.csv\"\n\
         [[rules]]\nname = \"grocer\"\nsource = \"bank\"\nmatch_merchant = \"^corner grocer\"\n\
         category = \"Food & Dining/Coffee Shops\"\n"
    );
    write_config(dir, None, None, None, &template)
}

async fn run(cmd: &[&str], config: &Path) -> Value {
    let mut all = cmd.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    let json = cmd[0] != "export";
    if json {
        all.push("--json");
    }
    let o = bankpipe_async(args(&all), SIM_ENV.to_vec()).await;
    if json {
        json_out(&o)
    } else {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Value::Null
    }
}

/// `(source, account) -> booking date` of `status --json`.
async fn watermarks(config: &Path) -> BTreeMap<(String, String), String> {
    let status = run(&["status"], config).await;
    status["watermarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let s = |k: &str| w[k].as_str().unwrap().to_owned();
            ((s("source"), s("source_account_id")), s("booking_date"))
        })
        .collect()
}

fn owned(list: &[(&str, &str, &str)]) -> BTreeMap<(String, String), String> {
    list.iter().map(|(s, a, d)| ((s.to_string(), a.to_string()), d.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_of_three_links_syncs_each_link_as_its_own_source() {
    // Alice and carol share an account id and a transaction id: their rows stay apart.
    let alice = link(vec![
        tx("same-1", "chk", "2024-03-01", "10.00", "Corner Grocer"),
        tx("a-2", "chk", "2024-03-04", "20.00", "Book Nook"),
    ]);
    let bob = link(vec![
        tx("b-1", "chk-b", "2024-03-02", "5.00", "Book Nook"),
        tx("b-2", "sav-b", "2024-03-06", "6.00", "Corner Grocer"),
    ]);
    let carol = link(vec![
        tx("same-1", "chk", "2024-03-03", "7.00", "Book Nook"),
        tx("c-2", "chk", "2024-03-05", "8.00", "Corner Grocer"),
        tx("c-3", "chk", "2024-03-07", "9.00", "Book Nook"),
    ]);
    // push_transactions goes to bob's link.
    let cfg = TruvConfig { link_id: "L-bob".into(), ..TruvConfig::default() };
    let truv = TruvSim::with_links(
        cfg,
        [("L-alice".to_owned(), alice), ("L-bob".to_owned(), bob), ("L-carol".to_owned(), carol)],
    );
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server.base_url());

    let first = run(&["sync"], &config).await;
    assert_eq!(first["outcome"], "ok", "{first}");
    let inserted: BTreeMap<&str, u64> = first["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["source"].as_str().unwrap(), s["inserted"].as_u64().unwrap()))
        .collect();
    assert_eq!(inserted, BTreeMap::from([("bank.alice", 2), ("bank.bob", 2), ("bank.carol", 3)]));

    // Rows are stored per concrete source name.
    let out = dir.path().join("out");
    run(&["export", "--out", out.to_str().unwrap()], &config).await;
    let rows = read_csv(&out.join("transactions.csv"));
    let mut per_source: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &rows {
        per_source.entry(&r["source"]).or_default().insert(&r["source_transaction_id"]);
    }
    let want: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::from([
        ("bank.alice", BTreeSet::from(["same-1", "a-2"])),
        ("bank.bob", BTreeSet::from(["b-1", "b-2"])),
        ("bank.carol", BTreeSet::from(["same-1", "c-2", "c-3"])),
    ]);
    assert_eq!(per_source, want);
    let same: Vec<&str> = rows.iter().filter(|r| r["source_transaction_id"] == "same-1").map(|r| &*r["id"]).collect();
    assert!(same.len() == 2 && same[0] != same[1], "one canonical id per link: {same:?}");
    // The rule naming the template applied to every link's rows, and only to those it matches.
    for r in &rows {
        let by_rule = r["merchant_name"] == "Corner Grocer";
        assert_eq!(r["category_source"] == "rule", by_rule, "{r:?}");
    }
    assert_eq!(rows.iter().filter(|r| r["category_source"] == "rule").count(), 3);

    // Watermarks per link and account.
    let before = owned(&[
        ("bank.alice", "chk", "2024-03-04"),
        ("bank.bob", "chk-b", "2024-03-02"),
        ("bank.bob", "sav-b", "2024-03-06"),
        ("bank.carol", "chk", "2024-03-07"),
    ]);
    assert_eq!(watermarks(&config).await, before);

    // New activity on bob's link only moves bob's watermark.
    truv.push_transactions([tx("b-3", "chk-b", "2024-03-09", "4.00", "Book Nook")]);
    let second = run(&["sync"], &config).await;
    assert_eq!(second["outcome"], "ok", "{second}");
    let mut after = before.clone();
    after.insert(("bank.bob".into(), "chk-b".into()), "2024-03-09".into());
    assert_eq!(watermarks(&config).await, after);

    // `--source` names one link, or the template for all its links.
    let synced = |summary: &Value| -> Vec<String> {
        let mut names: Vec<String> =
            summary["sources"].as_array().unwrap().iter().map(|s| s["source"].as_str().unwrap().to_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(synced(&run(&["sync", "--source", "bank.bob"], &config).await), ["bank.bob"]);
    assert_eq!(synced(&run(&["sync", "--source", "bank"], &config).await), ["bank.alice", "bank.bob", "bank.carol"]);
}
