//! What the tests that launch `mpirun` on themselves (`faults`, `resume`) share.

use std::ffi::OsStr;
use std::process::Command;

/// `mpirun --oversubscribe -np RANKS <this test's binary>`, every rank given `env` (and
/// root allowed: CI runs as root).
pub fn mpirun_self<'a>(ranks: usize, env: impl IntoIterator<Item = (&'a str, &'a OsStr)>) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "-np", &ranks.to_string()])
        .arg(std::env::current_exe().expect("the test's own path"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Panics when started by mpirun: the test launches mpirun itself.
pub fn assert_not_under_mpirun(test: &str) {
    assert!(
        std::env::var_os("OMPI_COMM_WORLD_SIZE").is_none(),
        "run the {test} test without mpirun: it launches mpirun itself"
    );
}
