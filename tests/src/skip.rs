//! Skipped tests, made visible. cargo counts a test that returns early as
//! passed, so a skip prints `SKIP name: why` on stderr and, when
//! `MYDOCKER_SKIP_LOG` names a file, appends `name: why` to it as one line;
//! scripts/test.sh sets it and ends with `N tests skipped:` and the list.
//!
//! Plain std, no dependency: a test crate that cannot depend on `e2e`
//! includes this file with `#[path]`.

use std::io::Write;

/// The env var naming the file each skip is appended to.
pub const SKIP_LOG: &str = "MYDOCKER_SKIP_LOG";

/// Records the skip of test `name` (`package test::path`) for `why`.
pub fn record(name: &str, why: &str) {
    eprintln!("SKIP {name}: {why}");
    let Some(path) = std::env::var_os(SKIP_LOG).filter(|p| !p.is_empty()) else {
        return;
    };
    // One write of one short line with O_APPEND: concurrent tests (threads
    // and test binaries) never interleave within a line.
    let line = format!("{name}: {}\n", why.replace('\n', " "));
    if let Err(e) = append(std::path::Path::new(&path), &line) {
        panic!("{SKIP_LOG}={}: {e}", path.to_string_lossy());
    }
}

fn append(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// `crate::module::test` from the type name of a fn item declared inside
/// the test (`crate::module::test::here`): the test's own path, whichever
/// thread runs it.
pub fn test_path(here: &str) -> &str {
    here.strip_suffix("::here").unwrap_or(here)
}

/// Returns from the calling test, recorded as skipped, unless `$cond`.
#[macro_export]
macro_rules! skip_unless {
    ($cond:expr, $why:expr) => {
        if !$cond {
            fn here() {}
            $crate::skip::record(
                &format!(
                    "{} {}",
                    env!("CARGO_PKG_NAME"),
                    $crate::skip::test_path(std::any::type_name_of_val(&here))
                ),
                &$why,
            );
            return;
        }
    };
}

/// Returns from the calling test, recorded as skipped, unless root.
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::skip_unless!($crate::is_root(), "needs root")
    };
}
