//! `bankpipe replay --expect DIR` (DESIGN §8): exit 0 when the output
//! equals the golden files, exit 1 with a row-level diff (keyed by
//! canonical id) on a changed amount, an extra row or a missing row;
//! `--update` rewrites the goldens so the next check passes.

mod support;

use std::path::Path;

/// Replay the multipage fixture against `golden` (with `--update`: rewrite it).
fn replay(golden: &Path, update: bool) -> std::process::Output {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["replay", "--truv", "fixtures/truv/multipage", "--out", out.path().to_str().unwrap()];
    args.extend(["--expect", golden.to_str().unwrap()]);
    if update {
        args.push("--update");
    }
    support::bankpipe(&args)
}

/// A golden directory made by `--update` from the multipage fixture.
fn goldens() -> tempfile::TempDir {
    let golden = tempfile::tempdir().unwrap();
    let o = replay(golden.path(), true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = std::fs::read_to_string(golden.path().join("summary.json")).unwrap();
    assert!(!summary.contains("elapsed_seconds"), "the wall time stays out of the goldens");
    golden
}

fn check(golden: &Path) -> std::process::Output {
    replay(golden, false)
}

/// Edit the golden transactions.csv: `f` gets the lines, header first.
fn edit(golden: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let path = golden.join("transactions.csv");
    let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(str::to_owned).collect();
    f(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn unchanged_output_passes() {
    let golden = goldens();
    let o = check(golden.path());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("matches the golden files"));
}

#[test]
fn a_changed_amount_is_shown_with_old_and_new_values() {
    let golden = goldens();
    let rows = support::read_csv(&golden.path().join("transactions.csv"));
    let t1 = rows.iter().find(|r| r["source_transaction_id"] == "t-001").unwrap();
    let id = t1["id"].clone();
    // The golden says -6.50 where the output has -5.50.
    edit(golden.path(), |lines| {
        for l in lines.iter_mut().filter(|l| l.starts_with(&id)) {
            *l = l.replacen(",-5.50,", ",-6.50,", 1);
        }
    });
    let o = check(golden.path());
    assert_eq!(o.status.code(), Some(1));
    let diff = String::from_utf8_lossy(&o.stdout);
    assert!(diff.contains("transactions.csv: 0 added, 0 removed, 1 changed"), "{diff}");
    assert!(diff.contains(&format!("~ id={id}: amount: -6.50 → -5.50")), "{diff}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("differs from the golden files"));
}

#[test]
fn an_extra_and_a_missing_row_are_named_by_id() {
    let golden = goldens();
    let mut removed_id = String::new();
    edit(golden.path(), |lines| {
        // Drop the second row (the output now has a row the golden lacks)
        // and add a row the output lacks.
        let gone = lines.remove(2);
        removed_id = gone.split(',').next().unwrap().to_owned();
        let mut ghost: Vec<&str> = gone.split(',').collect();
        ghost[0] = "ffffffffffffffffffffffffffffffff";
        lines.push(ghost.join(","));
    });
    let o = check(golden.path());
    assert_eq!(o.status.code(), Some(1));
    let diff = String::from_utf8_lossy(&o.stdout);
    assert!(diff.contains("transactions.csv: 1 added, 1 removed, 0 changed"), "{diff}");
    assert!(diff.contains(&format!("+ id={removed_id}: id={removed_id}, source=truv")), "{diff}");
    assert!(diff.contains("- id=ffffffffffffffffffffffffffffffff: "), "{diff}");
}

#[test]
fn update_round_trip_accepts_the_change() {
    let golden = goldens();
    edit(golden.path(), |lines| {
        lines.pop();
    });
    assert_eq!(check(golden.path()).status.code(), Some(1));
    assert!(replay(golden.path(), true).status.success());
    assert_eq!(check(golden.path()).status.code(), Some(0));
}

#[test]
fn a_missing_golden_directory_is_a_usage_error() {
    let o = check(Path::new("fixtures/golden/no-such-case"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("create it with --update"));
}
