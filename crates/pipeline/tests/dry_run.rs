//! `sync --dry-run` as a library: the Truv multipage fixture served by a
//! simulator, a mibudge and a Trupocket sink that map one of its two
//! accounts, an empty store. The dry run fetches, plans every deliverable
//! row with each sink's own plan, and writes and sends nothing — it needs
//! no sink credentials either.

use std::path::Path;

use bankpipe_config::Config;
use bankpipe_enrich::Categorizer;
use bankpipe_pipeline::dry_run::dry_run;
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use bankpipe_sources::live::LiveSource;
use bankpipe_store::{RunLog, SqliteStore};

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_plans_every_deliverable_row_and_writes_and_sends_nothing() {
    let fixture = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/truv/multipage"));
    let truv = TruvSim::new(TruvConfig::default(), TruvData::from_recorded(fixture).unwrap());
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    std::env::set_var("DRY_RUN_T_ID", "sim-client");
    std::env::set_var("DRY_RUN_T_SECRET", "sim-secret");
    // Sinks at an address nothing listens on, with credential variables
    // that are not set: a dry run neither reads nor reaches them.
    let text = format!(
        "[[sources]]\nname = \"truv\"\nkind = \"truv\"\nbase_url = \"{}\"\nlink_id = \"24d7e80942ce4ad58a93f70ce4115f5c\"\n\
         client_id_env = \"DRY_RUN_T_ID\"\nsecret_env = \"DRY_RUN_T_SECRET\"\n\
         [[sinks]]\nname = \"mb\"\nkind = \"mibudge\"\nbase_url = \"http://127.0.0.1:9\"\n\
         login_env = \"DRY_RUN_UNSET_LOGIN\"\npassword_env = \"DRY_RUN_UNSET_PASSWORD\"\n\
         [sinks.accounts]\n\"chk-001\" = \"b1\"\n\
         [[sinks]]\nname = \"tp\"\nkind = \"trupocket\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         token_env = \"DRY_RUN_UNSET_PAT\"\nhousehold_id = \"h1\"\ncreate_accounts = true\n\
         [sinks.accounts]\n\"chk-001\" = \"a1\"\n",
        server.base_url()
    );
    let config = Config::parse(&text, Path::new("dry.toml")).unwrap();
    let categorizer = Categorizer::new(&config.rules, &config.categories, None).unwrap();
    let sources: Vec<LiveSource> =
        config.sources.iter().map(|s| LiveSource::from_config(s, chrono_tz::UTC).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("dry.db").display())).await.unwrap();
    let today = "2024-04-01".parse().unwrap();

    let planned = dry_run(&store, &config, &categorizer, &sources, false, chrono_tz::UTC, today).await.unwrap();

    assert_eq!(planned.fetched.len(), 1);
    assert_eq!(
        (planned.fetched[0].source.as_str(), planned.fetched[0].from),
        ("truv", None),
        "a first run walks it all"
    );
    assert!(planned.fetched[0].transactions > 0);
    let lines: Vec<serde_json::Value> = planned.lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(planned.planned(), lines.len());
    for sink in ["mb", "tp"] {
        let mine: Vec<&serde_json::Value> = lines.iter().filter(|l| l["sink"] == sink).collect();
        assert!(!mine.is_empty(), "{sink}");
        let sent = mine.iter().filter(|l| l["plan"]["action"] == "send").count();
        let skipped = mine.iter().filter(|l| l["plan"]["action"] == "skip").count();
        assert!(sent > 0 && skipped > 0, "chk-001 is sent, card-002 waits for a mapping: {sent} {skipped}");
        assert_eq!(sent + skipped, mine.len(), "{mine:?}");
        let counted: u64 = planned.table.iter().filter(|((s, _, _), _)| s == sink).map(|(_, n)| n).sum();
        assert_eq!(counted as usize, mine.len(), "the table counts every line");
    }
    assert!(planned.table.contains_key(&("tp".into(), "truv:card-002".into(), "create account, then send")));
    assert!(planned.table.contains_key(&("mb".into(), "truv:card-002".into(), "wait for a mapping")));
    let status = store.status(10).await.unwrap();
    assert_eq!((status.runs.len(), status.transactions), (0, 0), "nothing written");
}
