//! Helpers shared by the end-to-end tests of the `bankpipe` binary.
#![allow(dead_code)]

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
