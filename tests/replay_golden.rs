//! Golden replays of the bundled fixtures.
//!
//! Every expected file under `fixtures/golden/<case>/` was checked by hand
//! against the fixture pages (see fixtures/README.md for the reasoning per
//! case). Each case runs `bankpipe replay … --expect fixtures/golden/<case>`:
//! the golden check users run. On an intended change, regenerate with
//! `BANKPIPE_BLESS=1 cargo test --test replay_golden` (which passes
//! `--update`) and review the diff line by line before committing.

mod support;

fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1);
        }
    }
    format!("line counts differ: expected {}, actual {}", expected.lines().count(), actual.lines().count())
}

/// Replay with `--expect fixtures/golden/<case>` (`--update` under
/// BANKPIPE_BLESS): the golden check users run in CI, run on our fixtures.
fn golden(case: &str, args: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let golden = format!("fixtures/golden/{case}");
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.extend(["--out", out.path().to_str().unwrap(), "--expect", &golden]);
    if std::env::var_os("BANKPIPE_BLESS").is_some() {
        all.push("--update");
    }
    let o = support::bankpipe(&all);
    assert!(
        o.status.success(),
        "golden mismatch for {case}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn truv_seed_001_example() {
    golden("truv-doc-001", &["--truv", "fixtures/truv/doc-001"]);
}

#[test]
fn truv_seed_002_example() {
    golden("truv-doc-002", &["--truv", "fixtures/truv/doc-002"]);
}

#[test]
fn truv_multipage() {
    golden("truv-multipage", &["--truv", "fixtures/truv/multipage"]);
}

#[test]
fn truv_multipage_booked_in_new_york() {
    golden("truv-multipage-new-york", &["--truv", "fixtures/truv/multipage", "--tz", "America/New_York"]);
}

#[test]
fn truv_currencies() {
    golden("truv-currencies", &["--truv", "fixtures/truv/currencies"]);
}

#[test]
fn truv_malformed_records() {
    golden("truv-malformed", &["--truv", "fixtures/truv/malformed"]);
}

#[test]
fn firefly_groups() {
    golden("firefly-groups", &["--firefly", "fixtures/firefly/groups"]);
}

#[test]
fn truv_and_firefly_together() {
    golden("combined", &["--truv", "fixtures/truv/multipage", "--firefly", "fixtures/firefly/groups"]);
}

#[test]
fn firefly_malformed_records() {
    golden("firefly-malformed", &["--firefly", "fixtures/firefly/malformed"]);
}

#[test]
fn categorized_with_rules_maps_and_explain() {
    golden(
        "categorized",
        &[
            "--truv",
            "fixtures/truv/multipage",
            "--firefly",
            "fixtures/firefly/groups",
            "--config",
            "fixtures/config/categorize.toml",
            "--explain",
        ],
    );
}

#[test]
fn sink_requests_of_the_fixtures() {
    let requests = tempfile::tempdir().unwrap();
    let dir = requests.path().to_str().unwrap().to_owned();
    let (_out, _) = support::replay_ok(&[
        "--truv",
        "fixtures/truv/multipage",
        "--firefly",
        "fixtures/firefly/groups",
        "--config",
        "fixtures/config/sinks.toml",
        "--sink-requests",
        &dir,
    ]);
    let golden = support::root().join("fixtures/golden/sink-requests");
    for name in ["trupocket.jsonl", "mibudge.jsonl"] {
        let actual = std::fs::read_to_string(requests.path().join(name)).unwrap();
        if std::env::var_os("BANKPIPE_BLESS").is_some() {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(golden.join(name), &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(golden.join(name)).unwrap();
        assert!(expected == actual, "sink-requests/{name}: {}", first_difference(&expected, &actual));
    }
}
