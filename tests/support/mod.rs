//! Helpers shared by the end-to-end tests of the `bankpipe` binary.
#![allow(dead_code)]

pub mod scale;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (tests run the binary from here so that fixture paths
/// in outputs are the short relative ones the goldens hold).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `bankpipe` with `args` from the repository root.
pub fn bankpipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bankpipe")).args(args).current_dir(root()).output().expect("run bankpipe")
}

/// Run a replay into a fresh temporary directory; panics unless it exits 0.
pub fn replay_ok(args: &[&str]) -> (tempfile::TempDir, Output) {
    let out = tempfile::tempdir().expect("tempdir");
    let mut all: Vec<&str> = vec!["replay"];
    all.extend_from_slice(args);
    all.push("--out");
    let dir = out.path().to_str().expect("utf-8 temp path").to_owned();
    all.push(&dir);
    let output = bankpipe(&all);
    assert!(output.status.success(), "bankpipe {all:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    (out, output)
}

/// Read a CSV file into header + rows of strings.
pub fn read_csv(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).expect("open csv");
    let headers = r.headers().expect("headers").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

/// Environment of the simulator credentials the test configs name.
pub const SIM_ENV: [(&str, &str); 3] =
    [("T_ID", "sim-client"), ("T_SECRET", "sim-secret"), ("F_TOKEN", "sim-firefly-token")];

/// Run `bankpipe` off the async runtime's worker threads.
pub async fn bankpipe_async(args: Vec<String>, env: Vec<(&'static str, &'static str)>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_bankpipe"))
            .args(&args)
            .envs(env)
            .current_dir(root())
            .output()
            .expect("run bankpipe")
    })
    .await
    .expect("join")
}

/// A config with a Truv and/or Firefly source at the given simulator URLs,
/// a SQLite store in `dir` (or PostgreSQL when `database` is given), plus `extra` TOML.
pub fn write_config(
    dir: &Path,
    truv: Option<&str>,
    firefly: Option<&str>,
    database: Option<(&str, &str)>,
    extra: &str,
) -> PathBuf {
    let mut text = match database {
        None => format!("[store]\ndatabase_url = \"sqlite://{}\"\n", dir.join("state.db").display()),
        Some((url, schema)) => format!("[store]\ndatabase_url = \"{url}\"\nschema = \"{schema}\"\n"),
    };
    if let Some(t) = truv {
        text += &format!(
            "[[sources]]\nname = \"truv\"\nkind = \"truv\"\nbase_url = \"{t}\"\nlink_id = \"24d7e80942ce4ad58a93f70ce4115f5c\"\nclient_id_env = \"T_ID\"\nsecret_env = \"T_SECRET\"\n"
        );
    }
    if let Some(f) = firefly {
        text += &format!(
            "[[sources]]\nname = \"firefly\"\nkind = \"firefly\"\nbase_url = \"{f}\"\ntoken_env = \"F_TOKEN\"\n"
        );
    }
    text += extra;
    let path = dir.join("bankpipe.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Parse the `--json` summary a command printed.
pub fn json_out(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "command failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// `s` as an owned argument list.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every simulator credential the test configs name (Truv, Firefly III,
/// Trupocket, mibudge).
pub const ALL_ENV: [(&str, &str); 6] = [
    ("T_ID", "sim-client"),
    ("T_SECRET", "sim-secret"),
    ("F_TOKEN", "sim-firefly-token"),
    ("TP_PAT", "tp_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ("MB_LOGIN", "sim@example.com"),
    ("MB_PASSWORD", "sim-password"),
];

/// `[[sinks]]` TOML of a mibudge sink named `mibudge` at `url`, with the
/// `[sinks.accounts]` lines `mapping`.
pub fn mibudge_sink(url: &str, mapping: &str) -> String {
    format!(
        "[[sinks]]\nname = \"mibudge\"\nkind = \"mibudge\"\nbase_url = \"{url}\"\nlogin_env = \"MB_LOGIN\"\n\
         password_env = \"MB_PASSWORD\"\n[sinks.accounts]\n{mapping}"
    )
}

/// The Truv multipage fixture served by a simulator, and a mibudge
/// simulator with one USD bank account to which `key` (e.g. `chk-001` or
/// `truv:chk-001`) is mapped; a config in a fresh directory.
pub struct MibudgeWorld {
    pub servers: Vec<bankpipe_sim::SimServer>,
    pub mibudge: std::sync::Arc<bankpipe_sim::mibudge::MibudgeSim>,
    pub bank: String,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

pub async fn truv_and_mibudge(key: &str) -> MibudgeWorld {
    use bankpipe_sim::mibudge::{MibudgeConfig, MibudgeSim};
    use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
    let truv = TruvSim::new(
        TruvConfig::default(),
        TruvData::from_recorded(&root().join("fixtures/truv/multipage")).expect("fixture"),
    );
    let mibudge = MibudgeSim::new(MibudgeConfig::default());
    let bank = mibudge.seed_bank_account("Checking", "USD");
    let servers = vec![
        bankpipe_sim::SimServer::start(truv.router(), 0).await.expect("truv"),
        bankpipe_sim::SimServer::start(mibudge.router(), 0).await.expect("mibudge"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = mibudge_sink(&servers[1].base_url(), &format!("\"{key}\" = \"{bank}\"\n"));
    let config = write_config(dir.path(), Some(&servers[0].base_url()), None, None, &extra);
    MibudgeWorld { servers, mibudge, bank, dir, config }
}

/// The PostgreSQL half of a test: `(url, fresh schema name)` when
/// BANKPIPE_TEST_DATABASE_URL is set; otherwise a NOTICE naming `test` and
/// `None` (the test returns).
pub fn postgres(test: &str, prefix: &str) -> Option<(String, String)> {
    match std::env::var("BANKPIPE_TEST_DATABASE_URL") {
        Ok(url) => Some((url, format!("{prefix}_{}", fastrand::u64(..)))),
        Err(_) => {
            eprintln!("NOTICE: {test} skipped: BANKPIPE_TEST_DATABASE_URL is not set");
            None
        }
    }
}
