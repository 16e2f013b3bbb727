//! A worker binary's command line.

use std::process::Command;

/// Runs `binary --help`, asserts that it succeeds and documents every one
/// of `env_names` as `[env: NAME`, and returns the text for further checks.
///
/// # Panics
/// When the binary cannot run, fails, or leaves a name out.
pub fn assert_help_lists(binary: &str, env_names: &[&str]) -> String {
    let output = Command::new(binary)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("running {binary} --help: {e}"));
    assert!(output.status.success(), "{binary} --help failed");
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    for name in env_names {
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} missing from --help:\n{help}"
        );
    }
    help
}
