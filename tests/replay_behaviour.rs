//! Behaviour of `bankpipe replay` asserted directly (independent of goldens).

mod support;

use support::{bankpipe, read_csv, replay_ok};

fn rows_of(dir: &std::path::Path, file: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    read_csv(&dir.join(file))
}

#[test]
fn distinct_twins_stay_two_rows() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/multipage"]);
    let rows = rows_of(out.path(), "transactions.csv");
    let coffees: Vec<_> = rows.iter().filter(|r| r["description"] == "BLUE BOTTLE #12").collect();
    assert_eq!(coffees.len(), 2, "same day, amount and merchant, different ids: both coffees count");
    assert!(coffees.iter().all(|r| r["amount"] == "-5.50" && r["booking_date"] == "2024-03-01" && r["counts"] == "1"));
    assert_ne!(coffees[0]["id"], coffees[1]["id"]);
}

#[test]
fn the_same_identity_is_one_row_and_the_newest_wins() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/multipage"]);
    let rows = rows_of(out.path(), "transactions.csv");
    // t-003 is re-read on page 2 with an older updated_at and amount: page 1's version stays.
    let t3: Vec<_> = rows.iter().filter(|r| r["source_transaction_id"] == "t-003").collect();
    assert_eq!(t3.len(), 1);
    assert_eq!(t3[0]["amount"], "2500.00");
    // t-004 is pending on page 1 and posted (with tip) on page 3: the posted version wins.
    let t4: Vec<_> = rows.iter().filter(|r| r["source_transaction_id"] == "t-004").collect();
    assert_eq!(t4.len(), 1);
    assert_eq!((t4[0]["status"].as_str(), t4[0]["amount"].as_str()), ("posted", "-48.10"));
}

#[test]
fn overlapping_recordings_dedupe_across_directories() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/multipage", "--truv", "fixtures/truv/multipage"]);
    assert_eq!(rows_of(out.path(), "transactions.csv").len(), 9);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["records_read"], 22);
    assert_eq!(summary["rereads"], 13, "every row of the second directory is a re-read of the first");
    assert_eq!(summary["duplicates"], 0);
    // Totals are over unique rows: the twice-read day still totals 2489.00.
    let totals = rows_of(out.path(), "daily_totals.csv");
    let day = totals.iter().find(|r| r["source_account_id"] == "chk-001" && r["date"] == "2024-03-01").unwrap();
    assert_eq!((day["net_total"].as_str(), day["transaction_count"].as_str()), ("2489.00", "3"));
}

#[test]
fn sign_comes_from_type_whatever_the_string_says() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/multipage"]);
    let rows = rows_of(out.path(), "transactions.csv");
    let amount = |id: &str| rows.iter().find(|r| r["source_transaction_id"] == id).unwrap()["amount"].clone();
    assert_eq!(amount("t-001"), "-5.50", "\"5.50\" DEBIT");
    assert_eq!(amount("t-002"), "-5.50", "\"-5.50\" DEBIT");
    assert_eq!(amount("t-010"), "12.00", "\"-12.00\" CREDIT");
}

#[test]
fn memo_and_pending_rows_are_kept_but_never_counted() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/multipage"]);
    let rows = rows_of(out.path(), "transactions.csv");
    for id in ["t-005", "t-007", "t-006"] {
        let r = rows.iter().find(|r| r["source_transaction_id"] == id).unwrap();
        assert_eq!(r["counts"], "0", "{id}");
    }
    let auth = rows.iter().find(|r| r["source_transaction_id"] == "t-006").unwrap();
    assert_eq!((auth["status"].as_str(), auth["source_status"].as_str()), ("pending", "AUTHORIZATION"));
}

#[test]
fn amounts_print_the_currency_minor_digits() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/currencies"]);
    let rows = rows_of(out.path(), "transactions.csv");
    let mut amounts: Vec<(&str, &str)> = rows.iter().map(|r| (r["amount"].as_str(), r["currency"].as_str())).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [("-1.250", "KWD"), ("-1200", "JPY"), ("-500", "JPY"), ("0.005", "KWD")]);
}

#[test]
fn firefly_booking_date_is_the_date_as_written() {
    let (out, _) = replay_ok(&["--firefly", "fixtures/firefly/groups"]);
    let rows = rows_of(out.path(), "transactions.csv");
    let r = rows.iter().find(|r| r["source_transaction_id"] == "1001").unwrap();
    // 2024-03-05T00:00:00+01:00 is 4 March in UTC but books on 5 March.
    assert_eq!((r["booking_date"].as_str(), r["transacted_at"].as_str()), ("2024-03-05", "2024-03-04T23:00:00Z"));
    let legs: Vec<_> = rows.iter().filter(|r| r["group_id"] == "102").collect();
    assert_eq!(legs.len(), 2, "a transfer between asset accounts is two legs");
    let mut signed: Vec<_> = legs.iter().map(|r| (r["source_account_id"].as_str(), r["amount"].as_str())).collect();
    signed.sort();
    assert_eq!(signed, [("1", "-500.00"), ("2", "500.00")]);
    assert!(legs.iter().all(|r| r["kind"] == "transfer"));
    assert!(!rows.iter().any(|r| r["source_transaction_id"] == "1005"), "an opening balance is not a transaction");
}

#[test]
fn no_account_number_beyond_the_mask_is_written() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/multipage", "--firefly", "fixtures/firefly/groups"]);
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("000123456789"), "full Truv account number leaked");
        assert!(!text.contains("NL91ABNA0417164300"), "Firefly IBAN leaked");
    }
}

fn replay_fails(dir_flag: &str, dir: &str, expected: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let o = bankpipe(&["replay", dir_flag, dir, "--out", out.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{dir}: {stderr}");
    for needle in expected {
        assert!(stderr.contains(needle), "{dir}: stderr lacks {needle:?}:\n{stderr}");
    }
    assert!(stderr.matches("(os error").count() <= 1, "an OS error is printed once: {stderr}");
}

#[test]
fn broken_chains_stop_with_the_file_named() {
    replay_fails("--truv", "fixtures/errors/truv-gap", &["fixtures/errors/truv-gap/page-003.json", "gap"]);
    replay_fails("--truv", "fixtures/errors/truv-repeat", &["page-002b.json", "repeats page 2"]);
    replay_fails("--truv", "fixtures/errors/truv-loop", &["page-002.json", "loop"]);
    replay_fails("--firefly", "fixtures/errors/firefly-gap", &["page-003.json", "gap"]);
}

#[test]
fn unusable_pages_stop_with_file_path_and_problem() {
    replay_fails("--truv", "fixtures/errors/truv-not-json", &["truv-not-json/page-001.json", "expected value"]);
    replay_fails("--truv", "fixtures/errors/truv-no-transactions", &["page-001.json", "missing field `transactions`"]);
    replay_fails("--firefly", "fixtures/errors/firefly-bad-meta", &["meta.pagination.current_page", "invalid type"]);
    replay_fails("--truv", "fixtures/does-not-exist", &["fixtures/does-not-exist", "cannot read"]);
    replay_fails("--truv", "fixtures/golden", &["no *.json page files"]);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(bankpipe(&["replay", "--out", "/tmp/x"]).status.code(), Some(2));
    let o = bankpipe(&["replay", "--truv", "fixtures/truv/doc-001", "--out", "/tmp/x", "--tz", "Mars/Olympus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("IANA"));
    assert_eq!(bankpipe(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn a_bad_rule_stops_with_exit_2_naming_the_rule_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[rules]]\nname = \"coffee\"\nmatch_merchant = \"(unclosed\"\ncategory = \"Food & Dining/Coffee Shops\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let replay = || {
        bankpipe(&[
            "replay",
            "--truv",
            "fixtures/truv/doc-002",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = replay();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml") && stderr.contains("coffee") && stderr.contains("match_merchant"), "{stderr}");
    assert!(!out.join("transactions.csv").exists(), "nothing is written on a config error");

    std::fs::write(&config, "[[rules]]\nmcc = 5814\ncategory = \"Food & Dining/Pizza\"\n").unwrap();
    let o = replay();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rules[0]") && stderr.contains("Food & Dining/Pizza"), "{stderr}");
}

#[test]
fn explain_names_the_deciding_step_for_every_row() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/doc-002", "--explain"]);
    let text = std::fs::read_to_string(out.path().join("explain.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["category"], "Food & Dining/Coffee Shops");
    assert_eq!(rows[0]["category_source"], "mcc+source");
    let why = rows[0]["explanation"].as_str().unwrap();
    assert!(why.contains("MCC 5814") && why.contains("refines"), "{why}");
}

#[test]
fn an_html_page_served_as_a_page_is_shown_by_its_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page-001.json"), "<!DOCTYPE html><html><title>Maintenance</title></html>").unwrap();
    replay_fails("--truv", dir.path().to_str().unwrap(), &["page-001.json", "an HTML page?", "Maintenance"]);
}

#[test]
fn format_chooses_the_transaction_files() {
    let (out, _) = replay_ok(&["--truv", "fixtures/truv/multipage", "--format", "csv"]);
    assert!(out.path().join("transactions.csv").exists());
    assert!(!out.path().join("transactions.jsonl").exists());
    // A second run into the same directory with the other format leaves no
    // stale file of the first behind.
    let dir = out.path().to_str().unwrap();
    let o = support::bankpipe(&["replay", "--truv", "fixtures/truv/multipage", "--format", "jsonl", "--out", dir]);
    assert!(o.status.success());
    assert!(!out.path().join("transactions.csv").exists());
    let lines = std::fs::read_to_string(out.path().join("transactions.jsonl")).unwrap().lines().count();
    assert_eq!(lines, 9);
    assert!(out.path().join("daily_totals.csv").exists() && out.path().join("accounts.csv").exists());
}
