//! Printing results: text for people, or one JSON value per line with `--json`.
//!
//! Every line is flushed as it is written, so a reader of a pipe (a test, a script following
//! `edit-loop` or `sync --watch`) sees each result as soon as the command has it.
//! Errors are not printed here: `main` prints them to stderr as `error: <message>`.

use std::fmt::Display;
use std::io::{self, Write};

use concord_core::VersionVector;
use serde_json::{json, Value};

/// Where results go, and in which form.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a result: `text` for people (nothing when `None`), or `value` with `--json`.
    pub fn result(
        &self,
        text: Option<&dyn Display>,
        value: impl FnOnce() -> Value,
    ) -> io::Result<()> {
        if self.json {
            line(&value())
        } else if let Some(text) = text {
            line(text)
        } else {
            Ok(())
        }
    }

    /// Prints a JSON value read from a document: indented for people, one line with `--json`.
    pub fn document(&self, value: &Value) -> io::Result<()> {
        if self.json {
            line(value)
        } else {
            let pretty = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
            line(&pretty)
        }
    }
}

/// Writes one line to stdout and flushes it.
pub fn line(text: &dyn Display) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()
}

/// A version vector as a JSON object: origin → highest contiguous seq.
pub fn version_json(version: &VersionVector) -> Value {
    Value::Object(
        version
            .iter()
            .map(|(origin, seq)| (origin.to_string(), json!(seq)))
            .collect(),
    )
}

/// A version vector for people: `origin:seq` pairs, origins shortened to 8 characters.
pub fn version_text(version: &VersionVector) -> String {
    if version.is_empty() {
        return "{}".into();
    }
    version
        .iter()
        .map(|(origin, seq)| format!("{}:{seq}", short(origin.as_str())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first 8 characters of an id (device ids are 32 hex digits).
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// True when the error is a closed stdout (e.g. `concord show doc | head -1`): not worth
/// reporting.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
