//! Running a measurement in a child process: the benchmark binary re-invokes itself with a
//! hidden subcommand, the child prints one JSON report on stdout, and the parent parses it.
//! The child's stderr (progress, errors) passes through to the terminal.

use std::ffi::OsString;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Runs `concord-bench <args>` and parses its stdout as `T`.
pub fn run<T: DeserializeOwned>(what: &str, args: &[OsString]) -> Result<T> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let output = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {} for {what}", exe.display()))?;
    if !output.status.success() {
        bail!("{what} failed in its child process ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "{what}: cannot parse the child's report: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The child's side: prints the report for the parent.
pub fn reply(report: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(report)?);
    Ok(())
}
