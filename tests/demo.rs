//! The README's first command: `bankpipe demo`, twice.

mod support;

#[test]
fn the_demo_runs_the_whole_job_and_a_second_run_delivers_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let run = || support::bankpipe(&["demo", "--dir", dir.path().to_str().unwrap()]);
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(
        stdout.contains("Received by the simulated sinks this run: Trupocket 11 transactions, mibudge 13 transactions"),
        "{stdout}"
    );
    assert!(
        stdout.contains("trupocket  12 delivered, 1 failed, 0 waiting"),
        "the EUR row is refused by the USD household; the Firefly transfer's two legs are one Trupocket row: {stdout}"
    );
    assert!(stdout.contains("Food & Dining/Coffee Shops"));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("sync completed-with-failures") && stderr.contains("refused the one EUR row"), "{stderr}");
    let second = run();
    assert!(second.status.success());
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("Trupocket 0 transactions, mibudge 0 transactions"), "{stdout}");
}
