//! The skip mechanism itself: a skipped test names itself and lands in the
//! log that scripts/test.sh counts. The only test of this binary, so setting
//! the environment races with no other thread.

fn skipped() {
    e2e::skip_unless!(false, "on purpose");
    unreachable!("skip_unless!(false) returns");
}

#[test]
fn a_skip_is_appended_to_the_log_with_the_test_name() {
    let dir = e2e::TempDir::new("skiplog");
    let log = dir.path().join("skipped");
    std::fs::write(&log, "earlier: kept\n").unwrap();
    // SAFETY: no other thread of this process reads the environment now.
    unsafe { std::env::set_var(e2e::skip::SKIP_LOG, &log) };
    skipped();
    skipped();
    unsafe { std::env::remove_var(e2e::skip::SKIP_LOG) };
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "earlier: kept\ne2e skip::skipped: on purpose\ne2e skip::skipped: on purpose\n"
    );
}
