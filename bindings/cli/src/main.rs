//! `concord`: a Concord device in the terminal.
//!
//! Each invocation opens the store in the SQLite file given by `--db`, runs one command
//! (edit or read a document locally, or sync with a relay) and exits. Edits commit to the
//! local file first and work offline; `sync` exchanges them with the relay later.
//!
//! This file holds the command line (clap) and the dispatch; the commands live in
//! [`commands`] (local edits and reads), [`policy`] (conflict policies: `policy`, `get
//! --all`, `resolve`), [`sync`] (talking to the relay) and [`check`]
//! (finding damage in the store, which also explains errors caused by it), and printing
//! goes through [`output`]. Several `concord` processes may use one store at once.

mod check;
mod commands;
mod output;
mod policy;
mod sync;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use concord_core::{DocKind, Store, StoreOptions, TextUnit};

use crate::output::Output;

#[derive(Parser)]
#[command(
    name = "concord",
    version,
    about = "A Concord device in the terminal: edit CRDT documents offline, sync them with a relay",
    after_help = "PATHS are '/'-separated: `title`, `todos/0/done`. In yrs documents the first \
                  segment names a root type (`meta/title`, `body`). Text indexes and lengths count \
                  Unicode scalar values (characters) in both kinds, or UTF-16 code units with \
                  `--text-unit utf16` (as JavaScript)."
)]
struct Cli {
    /// The device's store: a SQLite file, created if absent.
    #[arg(long, env = "CONCORD_DB", global = true, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Print machine-readable JSON (one value per line) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// What text indexes and lengths count: `scalar` (Unicode scalar values) or `utf16`.
    #[arg(
        long,
        env = "CONCORD_TEXT_UNIT",
        global = true,
        default_value = "scalar"
    )]
    text_unit: TextUnit,
    #[command(subcommand)]
    command: Command,
}

/// A document kind, as accepted on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    /// JSON-like maps, lists, text and counters (Automerge).
    Automerge,
    /// Yjs-compatible shared types: root maps, arrays and texts (Yrs).
    Yrs,
}

impl From<KindArg> for DocKind {
    fn from(kind: KindArg) -> DocKind {
        match kind {
            KindArg::Automerge => DocKind::Automerge,
            KindArg::Yrs => DocKind::Yrs,
        }
    }
}

const VALUE_HELP: &str = "A JSON value: 42, true, null, '\"text\"', '[1,2]', '{\"a\":1}'. \
                          Anything that does not parse as JSON is stored as a plain string.";

#[derive(Subcommand)]
enum Command {
    /// Create an empty document.
    Create {
        /// The document id.
        doc: String,
        /// Which CRDT the document uses.
        #[arg(long, value_enum, default_value = "automerge")]
        kind: KindArg,
    },
    /// Set the value at PATH (a map key, or a list index to replace).
    Put {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title` (yrs: `<root>/...`).
        path: String,
        #[arg(help = VALUE_HELP, allow_hyphen_values = true)]
        value: String,
    },
    /// Print the value at PATH (the whole document without PATH) as JSON.
    Get {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title`; the whole document when absent.
        path: Option<String>,
        /// Every value concurrently at PATH, each with the device that wrote it and its
        /// hybrid logical clock time (paths under lww, merge or keep-all policies).
        #[arg(long, requires = "path")]
        all: bool,
    },
    /// Conflict policies: how concurrent values at a path are resolved (docs/conflicts.md).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Write VALUE at PATH, superseding every concurrent value this device holds there
    /// (settles a keep-all conflict; a write made elsewhere meanwhile is a new conflict).
    Resolve {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title` (yrs: `<root>/...`).
        path: String,
        #[arg(help = VALUE_HELP, allow_hyphen_values = true)]
        value: String,
    },
    /// Remove a map key or a list element.
    Delete {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title` (yrs: `<root>/...`).
        path: String,
    },
    /// Append a value to the list at PATH (created if absent).
    Push {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title` (yrs: `<root>/...`).
        path: String,
        #[arg(help = VALUE_HELP, allow_hyphen_values = true)]
        value: String,
    },
    /// Insert a value into a list, before the index that ends PATH (e.g. `todos/0`).
    Insert {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title` (yrs: `<root>/...`).
        path: String,
        #[arg(help = VALUE_HELP, allow_hyphen_values = true)]
        value: String,
    },
    /// Add BY (default 1, may be negative) to the counter at PATH (automerge only).
    Incr {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title` (yrs: `<root>/...`).
        path: String,
        /// The amount to add.
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        by: i64,
    },
    /// Insert TEXT into the collaborative text at PATH (created if absent) at INDEX.
    InsertText {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title` (yrs: `<root>/...`).
        path: String,
        /// Position, in `--text-unit`s.
        index: usize,
        /// The text to insert.
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
    /// Delete LEN characters of the text at PATH, starting at INDEX.
    DeleteText {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `todos/0/title` (yrs: `<root>/...`).
        path: String,
        /// Position, in `--text-unit`s.
        index: usize,
        /// How many characters, in the same units.
        len: usize,
    },
    /// Print the text at PATH, or its part from START up to END (in `--text-unit`s), and
    /// with `--json` its length too.
    Text {
        /// The document id.
        doc: String,
        /// Where in the document, e.g. `body` (yrs: `<root>/...`).
        path: String,
        /// Where the part starts.
        start: Option<usize>,
        /// Where the part ends (the end of the text if absent).
        end: Option<usize>,
    },
    /// Print the whole document as JSON.
    Show {
        /// The document id.
        doc: String,
    },
    /// List the documents in the store with their kinds.
    List,
    /// Show the device id and, per document, its kind, version vector and pending updates.
    Status {
        /// Only this document.
        doc: Option<String>,
    },
    /// Sync with a relay: send what it lacks, fetch what this device lacks.
    #[command(after_help = sync::SYNC_HELP)]
    Sync(sync::SyncArgs),
    /// Commit COUNT separate edits, printing `committed <i>` after each one returns.
    ///
    /// Automerge documents: increment the counter at PATH (default `counter`). Yrs
    /// documents: append one character to the root text at PATH (default `log`).
    EditLoop {
        /// The document id.
        doc: String,
        /// How many commits.
        #[arg(long)]
        count: u64,
        /// The counter (automerge) or root text (yrs) to edit.
        #[arg(long)]
        path: Option<String>,
    },
    /// Check the store for damage: SQLite's integrity check, then every document loads.
    ///
    /// Prints `ok` and exits 0 when healthy. Otherwise lists each problem (which document,
    /// what is wrong) and the documents with unsynced local edits, and exits 1 with what
    /// to do: restore the file from a backup, or re-sync into a fresh store.
    #[command(visible_alias = "doctor")]
    Check,
}

/// `concord policy ...`
#[derive(Subcommand)]
enum PolicyCommand {
    /// Set the policy of the paths matching PATTERN: a key path (`title`, `meta/title`), a
    /// key prefix (`draft_*`), any one key (`settings/*`) or everything below (`settings/**`).
    Set {
        /// The document id.
        doc: String,
        /// Which paths (the most specific matching pattern applies).
        pattern: String,
        /// crdt (the default), lww, keep-all, or merge:max|min|union|concat.
        policy: String,
    },
    /// List the document's policies, most specific first.
    List {
        /// The document id.
        doc: String,
    },
}

impl Command {
    /// The document the command works on, if it names one.
    fn doc(&self) -> Option<&str> {
        match self {
            Command::Create { doc, .. }
            | Command::Put { doc, .. }
            | Command::Get { doc, .. }
            | Command::Delete { doc, .. }
            | Command::Push { doc, .. }
            | Command::Insert { doc, .. }
            | Command::Incr { doc, .. }
            | Command::InsertText { doc, .. }
            | Command::DeleteText { doc, .. }
            | Command::Text { doc, .. }
            | Command::Show { doc }
            | Command::Resolve { doc, .. }
            | Command::Policy(PolicyCommand::Set { doc, .. } | PolicyCommand::List { doc })
            | Command::EditLoop { doc, .. } => Some(doc),
            Command::Status { doc } => doc.as_deref(),
            Command::List | Command::Sync(_) | Command::Check => None,
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Output::new(cli.json);
    let Some(db) = cli.db else {
        // A usage error (exit code 2), reported the way clap reports its own.
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the store is required: pass --db FILE or set CONCORD_DB",
            )
            .exit();
    };
    if let Command::Check = cli.command {
        return match Store::open(&db) {
            Ok(store) => check::run(&store, &out, &db),
            Err(e) if concord_core::store::is_corruption(&e) => check::unopenable(&out, &db, &e),
            Err(e) => Err(open_error(e, &db)),
        };
    }
    // Errors caused by damaged data name the file and point to `concord check`. Only
    // `sync` handles updates from elsewhere; in other commands an update that does not
    // decode was read from the file.
    let doc = cli.command.doc().map(str::to_string);
    let stored_only = !matches!(cli.command, Command::Sync(_));
    run_command(cli.command, out, &db, cli.text_unit)
        .map_err(|e| check::explain(e, &db, doc.as_deref(), stored_only))
}

fn open_error(e: concord_core::Error, db: &Path) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("cannot open the store {}", db.display()))
}

fn run_command(
    command: Command,
    out: Output,
    db: &Path,
    text_unit: TextUnit,
) -> anyhow::Result<()> {
    // Several processes may use one store file at once (SQLite locks writes; the store
    // notices other processes' commits), e.g. `sync --watch` in one terminal and edits in
    // another.
    let options = StoreOptions {
        text_unit,
        ..Default::default()
    };
    let store = Store::open_with(db, options).map_err(|e| open_error(e, db))?;
    let store = &store;
    match command {
        Command::Create { doc, kind } => commands::create(store, &out, &doc, kind.into()),
        Command::Put { doc, path, value } => commands::put(store, &out, &doc, &path, &value),
        Command::Get {
            doc,
            path: Some(path),
            all: true,
        } => policy::get_all(store, &out, &doc, &path),
        Command::Get { doc, path, .. } => commands::get(store, &out, &doc, path.as_deref()),
        Command::Policy(PolicyCommand::Set {
            doc,
            pattern,
            policy,
        }) => policy::set(store, &out, &doc, &pattern, &policy),
        Command::Policy(PolicyCommand::List { doc }) => policy::list(store, &out, &doc),
        Command::Resolve { doc, path, value } => policy::resolve(store, &out, &doc, &path, &value),
        Command::Delete { doc, path } => commands::delete(store, &out, &doc, &path),
        Command::Push { doc, path, value } => commands::push(store, &out, &doc, &path, &value),
        Command::Insert { doc, path, value } => commands::insert(store, &out, &doc, &path, &value),
        Command::Incr { doc, path, by } => commands::incr(store, &out, &doc, &path, by),
        Command::InsertText {
            doc,
            path,
            index,
            text,
        } => commands::insert_text(store, &out, &doc, &path, index, &text),
        Command::DeleteText {
            doc,
            path,
            index,
            len,
        } => commands::delete_text(store, &out, &doc, &path, index, len),
        Command::Text {
            doc,
            path,
            start,
            end,
        } => commands::text(store, &out, &doc, &path, start, end),
        Command::Show { doc } => commands::show(store, &out, &doc),
        Command::List => commands::list(store, &out),
        Command::Status { doc } => commands::status(store, &out, doc.as_deref()),
        Command::Sync(args) => sync::run(store, &out, args),
        Command::EditLoop { doc, count, path } => {
            commands::edit_loop(store, &out, &doc, count, path.as_deref())
        }
        // Handled in `run`, which also reports a file that does not open.
        Command::Check => check::run(store, &out, db),
    }
}

fn main() -> ExitCode {
    // Usage errors exit with 2 (clap's convention); a sync that the relay refused for some
    // documents with 3; everything else with 1.
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            // Automerge logs each chunk it cannot parse; the error we print says it already.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,automerge=off".into()),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            sync::exit_code(&e).map_or(ExitCode::FAILURE, ExitCode::from)
        }
    }
}

/// An error and its causes on one line: `context: cause: ...`.
fn error_text(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

#[cfg(test)]
mod tests {
    use super::error_text;
    use anyhow::Context;

    #[test]
    fn a_locked_database_is_reported_once() {
        let locked = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let e = Err::<(), _>(concord_core::Error::from(locked))
            .context("cannot open the store a.db")
            .unwrap_err();
        assert_eq!(
            error_text(&e),
            "cannot open the store a.db: storage error: database is locked"
        );
    }
}
