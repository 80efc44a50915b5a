//! Simulator → `bankpipe record` → `bankpipe replay` gives the same
//! canonical rows as replaying the pages the simulator was seeded from.

mod support;

use std::path::Path;
use std::process::Output;

use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;

async fn run(args: Vec<String>, env: Vec<(&'static str, &'static str)>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_bankpipe"))
            .args(&args)
            .envs(env)
            .current_dir(support::root())
            .output()
            .expect("run bankpipe")
    })
    .await
    .unwrap()
}

fn sorted_rows(path: &Path) -> Vec<String> {
    let mut rows: Vec<String> = std::fs::read_to_string(path).unwrap().lines().skip(1).map(str::to_owned).collect();
    rows.sort();
    rows
}

const ENV: [(&str, &str); 3] = [("T_ID", "sim-client"), ("T_SECRET", "sim-secret"), ("F_TOKEN", "sim-firefly-token")];

#[tokio::test(flavor = "multi_thread")]
async fn record_then_replay_equals_the_seed_pages() {
    let root = support::root();
    let truv =
        TruvSim::new(TruvConfig::default(), TruvData::from_recorded(&root.join("fixtures/truv/multipage")).unwrap());
    let firefly = FireflySim::new(
        FireflyConfig::default(),
        FireflyData::from_recorded(&root.join("fixtures/firefly/groups")).unwrap(),
    );
    let ts = SimServer::start(truv.router(), 0).await.unwrap();
    let fs = SimServer::start(firefly.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bankpipe.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nname = \"truv\"\nkind = \"truv\"\nbase_url = \"{}\"\nlink_id = \"{}\"\nclient_id_env = \"T_ID\"\nsecret_env = \"T_SECRET\"\n\n\
             [[sources]]\nname = \"firefly\"\nkind = \"firefly\"\nbase_url = \"{}\"\ntoken_env = \"F_TOKEN\"\n",
            ts.base_url(),
            TruvConfig::default().link_id,
            fs.base_url()
        ),
    )
    .unwrap();
    let p = |x: &Path| x.to_str().unwrap().to_owned();
    for (name, page_size) in [("truv", "4"), ("firefly", "3")] {
        let out = run(
            vec![
                "record".into(),
                "--config".into(),
                p(&config),
                "--source".into(),
                name.into(),
                "--out".into(),
                p(&dir.path().join(name)),
                "--page-size".into(),
                page_size.into(),
            ],
            ENV.to_vec(),
        )
        .await;
        assert!(out.status.success(), "record {name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(std::fs::read_dir(dir.path().join("truv")).unwrap().count() >= 3, "several pages recorded");

    // Secrets never, account numbers only masked.
    for name in ["truv", "firefly"] {
        for f in std::fs::read_dir(dir.path().join(name)).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            for secret in ["sim-secret", "sim-firefly-token"] {
                assert!(!text.contains(secret), "secret in recording");
            }
            assert!(
                !text.contains("000123456789") && !text.contains("NL91ABNA0417164300"),
                "account number in recording"
            );
        }
    }

    let replay = |args: Vec<String>| run([vec!["replay".to_owned()], args].concat(), vec![]);
    let recorded = dir.path().join("out-recorded");
    let seeded = dir.path().join("out-seeded");
    let a = replay(vec![
        "--truv".into(),
        p(&dir.path().join("truv")),
        "--firefly".into(),
        p(&dir.path().join("firefly")),
        "--out".into(),
        p(&recorded),
    ])
    .await;
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = replay(vec![
        "--truv".into(),
        "fixtures/truv/multipage".into(),
        "--firefly".into(),
        "fixtures/firefly/groups".into(),
        "--out".into(),
        p(&seeded),
    ])
    .await;
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(sorted_rows(&recorded.join("transactions.csv")), sorted_rows(&seeded.join("transactions.csv")));
    assert_eq!(sorted_rows(&recorded.join("accounts.csv")), sorted_rows(&seeded.join("accounts.csv")));
}

#[tokio::test(flavor = "multi_thread")]
async fn record_names_a_missing_credential_variable_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[[sources]]\nname = \"ff\"\nkind = \"firefly\"\nbase_url = \"http://127.0.0.1:9\"\ntoken_env = \"BANKPIPE_TEST_UNSET_TOKEN\"\n").unwrap();
    let out = run(
        vec![
            "record".into(),
            "--config".into(),
            config.to_str().unwrap().into(),
            "--source".into(),
            "ff".into(),
            "--out".into(),
            dir.path().join("o").to_str().unwrap().into(),
        ],
        vec![],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("BANKPIPE_TEST_UNSET_TOKEN") && stderr.contains("token_env"), "{stderr}");
    let out = run(
        vec![
            "record".into(),
            "--config".into(),
            config.to_str().unwrap().into(),
            "--source".into(),
            "nope".into(),
            "--out".into(),
            "x".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no source named \"nope\" (sources: ff)"));
}
