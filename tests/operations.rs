//! Running it every night (issue #11): diagnostics a scheduler can read.

mod support;

use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use support::{args, bankpipe_async, write_config};

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_json_object_per_line_and_text_logs_carry_no_colour_when_redirected() {
    let truv = TruvSim::new(
        TruvConfig { secret: "rotated".into(), ..TruvConfig::default() },
        TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap(),
    );
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&server.base_url()), None, None, "");
    let env = vec![("T_ID", "sim-client"), ("T_SECRET", "wrong")];
    let o = bankpipe_async(args(&["sync", "--config", config.to_str().unwrap(), "--log-format", "json"]), env.clone())
        .await;
    assert_eq!(o.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.len() >= 3, "the source error, the summary and the final error: {stderr}");
    for l in &lines {
        assert!(l["level"].is_string() && l["fields"]["message"].is_string() && l["timestamp"].is_string(), "{l}");
    }
    assert!(lines
        .iter()
        .any(|l| l["level"] == "ERROR" && l["fields"]["message"].as_str().unwrap().contains("HTTP 401")));
    assert!(!stderr.contains("wrong"), "no secret in the logs");

    let o = bankpipe_async(args(&["sync", "--config", config.to_str().unwrap()]), env).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains('\u{1b}'), "no ANSI escape codes when stderr is not a terminal: {stderr:?}");
    assert!(stderr.contains("bankpipe: error: completed with failures"), "{stderr}");
}

fn run_in(cwd: &std::path::Path, list: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bankpipe"))
        .args(list)
        .envs([("T_ID", "sim-client"), ("T_SECRET", "sim-secret")])
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relative_database_follows_the_config_file_and_read_side_commands_create_nothing() {
    let truv = TruvSim::new(
        TruvConfig::default(),
        TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap(),
    );
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = home.path().join("bankpipe.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\ndatabase_url = \"sqlite://state.db\"\n[[sources]]\nname = \"truv\"\nkind = \"truv\"\nbase_url = \"{}\"\n\
             link_id = \"24d7e80942ce4ad58a93f70ce4115f5c\"\nclient_id_env = \"T_ID\"\nsecret_env = \"T_SECRET\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // Read-side commands and a dry run before any sync: a clear error or a
    // plan, and no database file anywhere.
    let o = run_in(elsewhere.path(), &["status", "--config", config]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no bankpipe database here"));
    let o = run_in(elsewhere.path(), &["sync", "--config", config, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!home.path().join("state.db").exists() && !elsewhere.path().join("state.db").exists());
    // Sync from one directory, status from another: the same database, next to the config.
    let synced = tokio::task::spawn_blocking({
        let (dir, config) = (elsewhere.path().to_owned(), config.to_owned());
        move || run_in(&dir, &["sync", "--config", &config])
    })
    .await
    .unwrap();
    assert_eq!(synced.status.code(), Some(0), "{}", String::from_utf8_lossy(&synced.stderr));
    assert!(home.path().join("state.db").exists() && !elsewhere.path().join("state.db").exists());
    let o = run_in(&support::root().join("crates"), &["status", "--config", config, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["transactions"], 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_shows_as_interrupted() {
    let slow = TruvConfig {
        faults: bankpipe_sim::Faults { latency: std::time::Duration::from_secs(5), ..bankpipe_sim::Faults::none() },
        ..TruvConfig::default()
    };
    let truv = TruvSim::new(slow, TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap());
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&server.base_url()), None, None, "");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bankpipe"))
        .args(["sync", "--config", config.to_str().unwrap()])
        .envs([("T_ID", "sim-client"), ("T_SECRET", "sim-secret")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    child.kill().unwrap(); // SIGKILL, mid-fetch
    child.wait().unwrap();
    let o = bankpipe_async(args(&["status", "--config", config.to_str().unwrap(), "--json"]), vec![]).await;
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["runs"][0]["outcome"], "interrupted", "{status}");
}

/// mibudge with the fixture's `chk-001` mapped to a bank account that does
/// not exist: every POST is refused (400), recorded failed with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_delivery_is_listed_with_its_reason_fixed_retried_and_delivered_once_then_resent_after_a_delete() {
    use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
    let truv = TruvSim::new(
        TruvConfig::default(),
        TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap(),
    );
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let bank = mibudge.seed_bank_account("Checking", "USD");
    let servers =
        [SimServer::start(truv.router(), 0).await.unwrap(), SimServer::start(mibudge.router(), 0).await.unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let sink = |account: &str| {
        format!(
            "[[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{}\"\nlogin_env = \"MB_LOGIN\"\n\
             password_env = \"MB_PASSWORD\"\n[sinks.accounts]\n\"truv:chk-001\" = \"{account}\"\n",
            servers[1].base_url()
        )
    };
    let wrong = "00000000-0000-4000-8000-000000000000";
    let config = write_config(dir.path(), Some(&servers[0].base_url()), None, None, &sink(wrong));
    let c = config.to_str().unwrap().to_owned();
    let env = vec![
        ("T_ID", "sim-client"),
        ("T_SECRET", "sim-secret"),
        ("MB_LOGIN", "sim@example.com"),
        ("MB_PASSWORD", "sim-password"),
    ];
    let run = |list: &[&str]| {
        let mut a = vec![list[0].to_owned(), list[1].to_owned()];
        a.retain(|s| !s.is_empty());
        a.extend(["--config".to_owned(), c.clone()]);
        a.extend(list[2..].iter().map(|s| s.to_string()));
        bankpipe_async(a, env.clone())
    };
    let o = run(&["sync", "", "--json"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    // Listed with the server's reason; status groups the reasons.
    let o = run(&["deliveries", "list", "--state", "failed", "--json"]).await;
    let failed: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(failed.len(), 4, "the four posted rows of chk-001");
    assert!(failed.iter().all(|f| f["reason"].as_str().unwrap().contains("does not exist")), "{failed:?}");
    let o = run(&["status", ""]).await;
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("failed ×4") && text.contains("does not exist"), "{text}");
    assert!(mibudge.transactions().is_empty());

    // The user fixes the mapping and retries: each delivered once.
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap().replace(wrong, &bank)).unwrap();
    let o = run(&["deliveries", "retry", "--sink", "mibudge", "--account", "truv:chk-001"]).await;
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("4 deliveries queued again"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&["sync", ""]).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mibudge.transactions().len(), 4);
    let o = run(&["sync", ""]).await;
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(mibudge.ledger().len(), 4, "nothing sent twice");
    let id = failed[0]["transaction"].as_str().unwrap();
    let o = run(&["explain", "", id]).await;
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("delivery to mibudge: delivered, sink row ") && text.contains("marker #bp"), "{text}");

    // The user deletes one row in mibudge; resend all: only that one is recreated.
    let gone = mibudge.transactions()[0]["id"].as_str().unwrap().to_owned();
    assert!(mibudge.user_deletes(&gone));
    let o = run(&["deliveries", "resend", "--sink", "mibudge", "--all"]).await;
    assert!(String::from_utf8_lossy(&o.stderr).contains("4 deliveries marked for resending"));
    let o = run(&["sync", ""]).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mibudge.transactions().len(), 4, "the deleted row recreated, the others found by their markers");
    assert_eq!(mibudge.ledger().len(), 5, "one new row");
    // Skip: a queued row never goes out.
    let o = run(&["deliveries", "skip", ""]).await;
    assert_eq!(o.status.code(), Some(2), "an action needs a filter or --all");
}

/// Parse the Prometheus text format strictly enough to catch a malformed
/// file: `# HELP`/`# TYPE`/`# EOF` comments, and `name{label="v",…} value`
/// samples with a numeric value. Returns (name with labels, value).
fn parse_prometheus(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF" || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            let labels = series[name_end..].strip_prefix('{').and_then(|l| l.strip_suffix('}')).expect("closed labels");
            for pair in labels.split(',') {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
        samples.insert(series.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("bad value: {line}")));
    }
    samples
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_file_is_written_atomically_and_parses() {
    let w = support::truv_and_mibudge("chk-001").await;
    let (dir, config) = (&w.dir, &w.config);
    let metrics = dir.path().join("bankpipe.prom");
    let o = bankpipe_async(
        args(&["sync", "--config", config.to_str().unwrap(), "--metrics-file", metrics.to_str().unwrap()]),
        vec![
            ("T_ID", "sim-client"),
            ("T_SECRET", "sim-secret"),
            ("MB_LOGIN", "sim@example.com"),
            ("MB_PASSWORD", "sim-password"),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&metrics).unwrap();
    let m = parse_prometheus(&text);
    assert_eq!(m["bankpipe_last_run_success"], 1.0, "{text}");
    assert_eq!(m["bankpipe_last_run_exit_code"], 0.0);
    assert!(m["bankpipe_last_run_timestamp_seconds"] > 1.7e9);
    assert_eq!(m["bankpipe_source_up{source=\"truv\"}"], 1.0);
    assert_eq!(m["bankpipe_source_records{source=\"truv\"}"], 9.0, "the 9 records the simulator serves");
    assert_eq!(m["bankpipe_sink_delivered{sink=\"mibudge\"}"], 4.0);
    assert_eq!(m["bankpipe_sink_backlog{sink=\"mibudge\"}"], 2.0, "card-002's rows wait for a mapping");
    assert!(!dir.path().join("bankpipe.prom.tmp").exists(), "renamed into place");
}

#[test]
fn completions_and_the_manual_page_name_every_command() {
    for (list, needle) in [(&["completions", "bash"][..], "deliveries"), (&["man"][..], ".TH bankpipe 1")] {
        let o = support::bankpipe(list);
        assert_eq!(o.status.code(), Some(0));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(needle) && text.contains("sync"), "{list:?}: {}", &text[..text.len().min(300)]);
    }
}

#[test]
fn totals_of_an_unknown_account_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), None, None, None, "");
    // A database exists (a sync of no source would fail; open it through status).
    let store = dir.path().join("state.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        bankpipe_store::SqliteStore::open(&format!("sqlite://{}", store.display())).await.unwrap();
    });
    let o = support::bankpipe(&[
        "totals",
        "--config",
        config.to_str().unwrap(),
        "--account",
        "truv:nope",
        "--from",
        "2024-01-01",
        "--to",
        "2024-12-31",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no account truv:nope"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_finds_a_wrong_household_an_unset_variable_and_unmapped_accounts() {
    use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
    use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
    let truv = TruvSim::new(
        TruvConfig::default(),
        TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap(),
    );
    let trupocket = TrupocketSim::new(TrupocketConfig::default());
    let household = trupocket.seed_household("Home");
    let tp_account = trupocket.seed_account(&household, "chkg", "Checking");
    trupocket.seed_category(&household, "Uncategorized");
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let bank = mibudge.seed_bank_account("Checking", "USD");
    let servers = [
        SimServer::start(truv.router(), 0).await.unwrap(),
        SimServer::start(trupocket.router(), 0).await.unwrap(),
        SimServer::start(mibudge.router(), 0).await.unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let sinks = |household: &str| {
        format!(
            "[[sinks]]\nname = \"trupocket\"\nkind = \"trupocket\"\nbase_url = \"{}/v1\"\ntoken_env = \"TP_PAT\"\n\
             household_id = \"{household}\"\n[sinks.accounts]\n\"truv:chk-001\" = \"{tp_account}\"\n\
             [[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{}\"\nlogin_env = \"MB_LOGIN\"\n\
             password_env = \"MB_PASSWORD\"\n[sinks.accounts]\n\"truv:chk-001\" = \"{bank}\"\n\"truv:card-002\" = \"{bank}\"\n",
            servers[1].base_url(),
            servers[2].base_url()
        )
    };
    let mut env = vec![
        ("T_ID", "sim-client"),
        ("T_SECRET", "sim-secret"),
        ("TP_PAT", "tp_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ("MB_LOGIN", "sim@example.com"),
    ];
    let config = write_config(dir.path(), Some(&servers[0].base_url()), None, None, &sinks("2BKHnotahousehold"));
    let o = bankpipe_async(args(&["check", "--config", config.to_str().unwrap()]), env.clone()).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("household_id 2BKHnotahousehold does not exist"), "{out}");
    assert!(out.contains("MB_PASSWORD") && out.contains("not set"), "{out}");
    assert!(!dir.path().join("state.db").exists(), "check creates no database");

    // Fixed: all good but for card-002, which Trupocket does not map (a snippet to paste).
    let config = write_config(dir.path(), Some(&servers[0].base_url()), None, None, &sinks(&household));
    env.push(("MB_PASSWORD", "sim-password"));
    let o = bankpipe_async(args(&["check", "--config", config.to_str().unwrap()]), env).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("\"truv:card-002\" = \"<trupocket account id>\""), "{out}");
    assert!(out.contains("all good"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_plans_the_waiting_backlog_too_with_a_summary_table() {
    let w = support::truv_and_mibudge("truv:chk-001").await;
    let (config, env) = (&w.config, support::ALL_ENV.to_vec());
    let o = bankpipe_async(args(&["sync", "--config", config.to_str().unwrap()]), env.clone()).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    // card-002 has no mapping: its rows wait in the queue, and the dry run
    // plans them (the fetched rows the sink already has are not planned).
    let o = bankpipe_async(args(&["sync", "--config", config.to_str().unwrap(), "--dry-run"]), env).await;
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "card-002's two waiting rows: {out}");
    assert!(lines.iter().all(|l| l["plan"]["action"] == "skip"));
    assert!(err.contains("truv:card-002") && err.contains("wait for a mapping") && err.contains("2 planned"), "{err}");
}

/// The backfill progress bar on a terminal (a pty from `script`), plain log
/// lines without escape codes when stderr is redirected.
#[tokio::test(flavor = "multi_thread")]
async fn backfill_shows_a_progress_bar_on_a_terminal_and_plain_lines_otherwise() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("NOTICE: no /usr/bin/script (util-linux) here: the terminal half is skipped");
    }
    let truv = TruvSim::new(
        TruvConfig::default(),
        TruvData::from_recorded(&support::root().join("fixtures/truv/multipage")).unwrap(),
    );
    let server = SimServer::start(truv.router(), 0).await.unwrap();
    let base = server.base_url();
    let run = move |name: &str, terminal: bool| {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), Some(&base), None, None, "");
        let exe = env!("CARGO_BIN_EXE_bankpipe");
        let line = format!("{exe} backfill --config {} --from 2024-01-01 --to 2024-06-30", config.display());
        let mut c = if terminal {
            let mut c = std::process::Command::new("/usr/bin/script");
            c.args(["-qec", &line, "/dev/null"]);
            c
        } else {
            let mut c = std::process::Command::new(exe);
            c.args(line.split_whitespace().skip(1));
            c
        };
        let o = c.envs([("T_ID", "sim-client"), ("T_SECRET", "sim-secret")]).env_remove("NO_COLOR").output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        (dir, o)
    };
    let run2 = run.clone();
    let (_d, plain) = tokio::task::spawn_blocking(move || run2("redirected", false)).await.unwrap();
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("backfill: truv") && stderr.contains("windows"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no escape codes when redirected: {stderr:?}");
    if std::path::Path::new("/usr/bin/script").exists() {
        let (_d, tty) = tokio::task::spawn_blocking(move || run("terminal", true)).await.unwrap();
        let screen = String::from_utf8_lossy(&tty.stdout);
        assert!(screen.contains("6/6 windows"), "the bar with its counts: {screen:?}");
        assert!(screen.contains('\u{1b}'), "drawn with terminal control codes: {screen:?}");
        assert!(!screen.contains("backfill: truv 2024"), "no plain log lines on a terminal: {screen:?}");
    }
}
