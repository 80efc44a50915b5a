//! Dedupe that cannot lose or double what was delivered (DESIGN §4.6–4.7,
//! issue #9), end to end over loopback HTTP:
//!
//! - with `deliver_pending`, a pending row delivered to mibudge that later
//!   posts — under its own id with a tip, or under a new id — is corrected
//!   on the sink exactly once (mibudge allows no amount change after
//!   creation: delete + create), and the next run changes nothing;
//! - a pending row paired with its posted twin is delivered when it posts
//!   under its own id;
//! - a cross-source pair keeps, per sink, the side that sink already has.

mod support;

use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use serde_json::{json, Value};

const ENV: [(&str, &str); 5] = [
    ("T_ID", "sim-client"),
    ("T_SECRET", "sim-secret"),
    ("F_TOKEN", "sim-firefly-token"),
    ("MB_LOGIN", "sim@example.com"),
    ("MB_PASSWORD", "sim-password"),
];

fn account() -> Value {
    json!({"id": "chk-001", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
           "type": "CHECKING", "subtype": null, "mask": "6789", "nickname": "Everyday",
           "balances": {"currency_code": "USD", "balance": "100.00", "available_balance": null, "credit_limit": null}})
}

#[allow(clippy::too_many_arguments)] // one argument per varying field of a Truv record
fn record(
    id: &str,
    status: &str,
    amount: &str,
    merchant: &str,
    mcc: u16,
    at: &str,
    posted: Option<&str>,
    updated: &str,
) -> Value {
    json!({"id": id, "created_at": at, "updated_at": updated, "account_id": "chk-001", "external_id": null,
           "amount": amount, "currency_code": "USD", "check_number": null, "categories": ["Food & Dining", "Restaurants"],
           "description": merchant.to_uppercase(), "merchant_name": merchant, "status": status, "type": "DEBIT",
           "posted_at": posted, "transacted_at": at, "memo": null, "merchant_category_code": mcc, "location": null})
}

/// mibudge rows of the simulator now: (raw description, amount, pending).
fn rows(mb: &MibudgeSim) -> Vec<(String, String, bool)> {
    let mut out: Vec<_> = mb
        .transactions()
        .iter()
        .map(|t| {
            (
                t["raw_description"].as_str().unwrap().to_owned(),
                t["amount"].as_str().unwrap().to_owned(),
                t["pending"] == true,
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivered_pending_row_that_posts_is_corrected_once() {
    let data = TruvData {
        accounts: vec![account()],
        transactions: vec![
            record(
                "h-1",
                "AUTHORIZATION",
                "42.10",
                "Trattoria",
                5812,
                "2024-03-01T19:00:00Z",
                None,
                "2024-03-01T19:00:00Z",
            ),
            record("h-2", "PENDING", "30.00", "Shell", 5541, "2024-03-02T10:00:00Z", None, "2024-03-02T10:00:00Z"),
        ],
    };
    let truv = TruvSim::new(TruvConfig::default(), data);
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let bank = mibudge.seed_bank_account("Checking", "USD");
    let servers =
        [SimServer::start(truv.router(), 0).await.unwrap(), SimServer::start(mibudge.router(), 0).await.unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{}\"\nlogin_env = \"MB_LOGIN\"\npassword_env = \"MB_PASSWORD\"\n\
         deliver_pending = true\n[sinks.accounts]\n\"chk-001\" = \"{bank}\"\n",
        servers[1].base_url()
    );
    let config = support::write_config(dir.path(), Some(&servers[0].base_url()), None, None, &extra);
    let sync = || async {
        let o =
            support::bankpipe_async(support::args(&["sync", "--config", config.to_str().unwrap()]), ENV.to_vec()).await;
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };

    sync().await;
    assert_eq!(
        rows(&mibudge),
        [("SHELL".into(), "-30.00".into(), true), ("TRATTORIA".into(), "-42.10".into(), true)],
        "both holds delivered as pending"
    );

    // h-1 posts under its own id with a tip; h-2 posts under a new id (the
    // bank keeps listing the old hold, as some do).
    truv.push_transactions([
        record(
            "h-1",
            "POSTED",
            "50.00",
            "Trattoria",
            5812,
            "2024-03-01T19:00:00Z",
            Some("2024-03-02T12:00:00Z"),
            "2024-03-02T12:00:00Z",
        ),
        record(
            "p-2",
            "POSTED",
            "30.00",
            "Shell",
            5541,
            "2024-03-02T10:00:00Z",
            Some("2024-03-03T09:00:00Z"),
            "2024-03-03T09:00:00Z",
        ),
    ]);
    // The dry run shows the correction the sync will make.
    let o = support::bankpipe_async(
        support::args(&["sync", "--config", config.to_str().unwrap(), "--dry-run"]),
        ENV.to_vec(),
    )
    .await;
    let planned = String::from_utf8_lossy(&o.stdout);
    let h1 = bankpipe_model::CanonicalId::for_transaction("truv", "chk-001", "h-1").to_string();
    assert!(
        planned.lines().any(|l| l.contains(&h1) && l.contains("\"correct\"") && l.contains("posted|-5000")),
        "{planned}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("correct (create, then delete the old row)"));
    sync().await;
    assert_eq!(
        rows(&mibudge),
        [("SHELL".into(), "-30.00".into(), false), ("TRATTORIA".into(), "-50.00".into(), false)],
        "each corrected once: the tip, the posting; the holds are gone"
    );
    let created = mibudge.ledger().len();
    assert_eq!(created, 4, "two holds, two corrections");

    // Nothing left to do: no new row, nothing deleted.
    sync().await;
    assert_eq!(mibudge.ledger().len(), created);
    assert_eq!(rows(&mibudge).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_row_wrongly_superseded_by_its_twin_is_delivered_when_it_posts_under_its_own_id() {
    // Two coffees a few minutes apart: c2 posts first, c1 is still pending and
    // pairs with c2 by similarity. When c1 posts under its own id, it was its
    // own movement: both must reach the sink.
    let data = TruvData {
        accounts: vec![account()],
        transactions: vec![
            record("c1", "PENDING", "4.50", "Blue Bottle", 5814, "2024-03-02T08:00:00Z", None, "2024-03-02T08:00:00Z"),
            record(
                "c2",
                "POSTED",
                "4.50",
                "Blue Bottle",
                5814,
                "2024-03-02T08:05:00Z",
                Some("2024-03-02T20:00:00Z"),
                "2024-03-02T20:00:00Z",
            ),
        ],
    };
    let truv = TruvSim::new(TruvConfig::default(), data);
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let bank = mibudge.seed_bank_account("Checking", "USD");
    let servers =
        [SimServer::start(truv.router(), 0).await.unwrap(), SimServer::start(mibudge.router(), 0).await.unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{}\"\nlogin_env = \"MB_LOGIN\"\npassword_env = \"MB_PASSWORD\"\n\
         [sinks.accounts]\n\"chk-001\" = \"{bank}\"\n",
        servers[1].base_url()
    );
    let config = support::write_config(dir.path(), Some(&servers[0].base_url()), None, None, &extra);
    let sync = || async {
        let o = support::bankpipe_async(
            support::args(&["sync", "--config", config.to_str().unwrap(), "--json"]),
            ENV.to_vec(),
        )
        .await;
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let first = sync().await;
    assert_eq!(first["superseded"], 1, "c1 pairs with c2 for now");
    assert_eq!(mibudge.transactions().len(), 1);
    truv.push_transactions([record(
        "c1",
        "POSTED",
        "4.50",
        "Blue Bottle",
        5814,
        "2024-03-02T08:00:00Z",
        Some("2024-03-03T06:00:00Z"),
        "2024-03-03T06:00:00Z",
    )]);
    sync().await;
    assert_eq!(
        rows(&mibudge),
        [("BLUE BOTTLE".into(), "-4.50".into(), false), ("BLUE BOTTLE".into(), "-4.50".into(), false)],
        "both coffees count"
    );
    sync().await;
    assert_eq!(mibudge.ledger().len(), 2, "and nothing more");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_source_pair_keeps_the_side_the_sink_already_has() {
    // Run 1: only the hand-kept ledger (Firefly) has the grocery run of 5
    // March; it is delivered. Run 2: the bank's row arrives (within the
    // bank account's window: watermark 10 March − 14 days) with an MCC and
    // wins dedupe — but the sink already has the ledger's row, so it gets
    // nothing more.
    // The bank account's latest posting so far, on 10 March.
    let earlier = record(
        "b-0",
        "POSTED",
        "3.00",
        "Kiosk",
        5994,
        "2024-03-10T09:00:00Z",
        Some("2024-03-10T12:00:00Z"),
        "2024-03-10T12:00:00Z",
    );
    let truv = TruvSim::new(TruvConfig::default(), TruvData { accounts: vec![account()], transactions: vec![earlier] });
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
    let extra = format!(
        "[[account_links]]\naccounts = [\"truv:chk-001\", \"firefly:1\"]\n\
         [[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{}\"\nlogin_env = \"MB_LOGIN\"\npassword_env = \"MB_PASSWORD\"\n\
         [sinks.accounts]\n\"chk-001\" = \"{bank}\"\n\"1\" = \"{bank}\"\n",
        servers[2].base_url()
    );
    let config =
        support::write_config(dir.path(), Some(&servers[0].base_url()), Some(&servers[1].base_url()), None, &extra);
    let sync = || async {
        let o = support::bankpipe_async(
            support::args(&["sync", "--config", config.to_str().unwrap(), "--json"]),
            ENV.to_vec(),
        )
        .await;
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    sync().await;
    let groceries = |mb: &MibudgeSim| mb.transactions().iter().filter(|t| t["amount"] == "-23.45").count();
    assert_eq!(groceries(&mibudge), 1, "the ledger's row is delivered");
    truv.push_transactions([record(
        "g-1",
        "POSTED",
        "23.45",
        "Grocer",
        5411,
        "2024-03-05T12:00:00Z",
        Some("2024-03-05T15:00:00Z"),
        "2024-03-05T15:00:00Z",
    )]);
    let second = sync().await;
    assert_eq!(second["duplicates"], 1, "{second}");
    assert_eq!(groceries(&mibudge), 1, "one movement, one sink row");
}
