//! The measured work of one editing-trace scenario, run inside a child process so that
//! its peak memory is its own: replaying the trace into one engine ("apply"), and
//! opening the result again in a fresh process ("load").
//!
//! Engines: raw Automerge and raw Yrs (in memory, no storage), and Concord's [`Store`]
//! with an Automerge or a Yrs document (every transaction a durable SQLite commit).
//! Every run checks the final text against the expected text and fails loudly otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, ROOT};
use concord_core::{DocKind, Store};
use serde::{Deserialize, Serialize};
use yrs::updates::decoder::Decode;
use yrs::{GetString, OffsetKind, Options, ReadTxn, StateVector, Text, Transact, Update};

use crate::astral::AstralPositions;
use crate::measure::{self, Latency, Span, SqliteFiles};
use crate::trace_data::Trace;

/// The document id used in Concord stores.
const DOC: &str = "paper";
/// The text's path: a key of the root map (Automerge) or a root text type (Yrs).
const TEXT: &str = "text";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    RawAutomerge,
    RawYrs,
    ConcordAutomerge,
    ConcordYrs,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::RawAutomerge => "raw-automerge",
            Engine::RawYrs => "raw-yrs",
            Engine::ConcordAutomerge => "concord-automerge",
            Engine::ConcordYrs => "concord-yrs",
        }
    }
}

/// What to run: the first `txns` trace transactions, `batch` of them per commit.
#[derive(Debug, Clone)]
pub struct Job {
    pub engine: Engine,
    pub compact_trace: PathBuf,
    pub expected: PathBuf,
    pub txns: usize,
    pub batch: usize,
    /// Holds the engine's output: the store (Concord) or the saved bytes (raw).
    pub dir: PathBuf,
}

/// Measured by the apply child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyReport {
    pub txns: usize,
    pub edits: usize,
    pub commits: usize,
    pub wall_secs: f64,
    pub cpu_secs: Option<f64>,
    /// Per commit (Concord: `Store::transact`; raw: one trace txn).
    pub commit_latency: Latency,
    /// Resident memory before the replay began (runtime + compact trace + expected text).
    pub baseline_rss_kib: Option<u64>,
    /// Peak resident memory of the process (VmHWM), read at the end.
    pub peak_rss_kib: Option<u64>,
    /// Raw engines: length of the full saved state and the time to produce it.
    pub saved_bytes: Option<u64>,
    pub save_secs: Option<f64>,
    /// Concord: the size of the document's saved state (`Store::saved_state`, what a
    /// checkpoint stores).
    pub snapshot_bytes: Option<u64>,
    /// Concord: database files while the store is still open.
    pub disk_open: Option<SqliteFiles>,
    /// Concord: database files after the store is closed (SQLite checkpoints the WAL).
    pub disk_closed: Option<SqliteFiles>,
}

/// Measured by the load child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// Raw: decode the saved bytes and read the text. Concord: `Store::open` until
    /// `store.get(doc, "text")` returns the whole text.
    pub load_secs: f64,
    pub peak_rss_kib: Option<u64>,
    pub chars: usize,
    /// Concord: the database after every local update is acknowledged and the store is
    /// compacted (`Store::acknowledge` + `Store::compact_all`), then closed.
    pub compacted_bytes: Option<u64>,
}

fn raw_file(dir: &Path) -> PathBuf {
    dir.join("saved.bin")
}

fn db_file(dir: &Path) -> PathBuf {
    dir.join("store.db")
}

fn check_text(what: &str, actual: &str, expected: &str) -> Result<()> {
    if actual != expected {
        let at = actual
            .chars()
            .zip(expected.chars())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| actual.chars().count().min(expected.chars().count()));
        bail!(
            "{what}: final text differs from the expected text (lengths {} vs {} chars, \
             first difference at char {at})",
            actual.chars().count(),
            expected.chars().count()
        );
    }
    Ok(())
}

/// Replays the trace into the engine and reports time, memory and size.
pub fn apply(job: &Job) -> Result<ApplyReport> {
    let trace = Trace::read_compact(&job.compact_trace)?;
    let expected = std::fs::read_to_string(&job.expected)?;
    ensure!(
        job.txns <= trace.txns(),
        "the trace has only {} txns",
        trace.txns()
    );
    ensure!(job.batch >= 1, "--batch must be at least 1");
    let baseline = measure::rss_kib();
    let mut report = match job.engine {
        Engine::RawAutomerge => apply_raw_automerge(job, &trace, &expected)?,
        Engine::RawYrs => apply_raw_yrs(job, &trace, &expected)?,
        Engine::ConcordAutomerge => apply_concord(job, DocKind::Automerge, &trace, &expected)?,
        Engine::ConcordYrs => apply_concord(job, DocKind::Yrs, &trace, &expected)?,
    };
    report.baseline_rss_kib = baseline;
    Ok(report)
}

fn empty_report(job: &Job, trace: &Trace) -> ApplyReport {
    ApplyReport {
        txns: job.txns,
        edits: trace.edits(job.txns),
        commits: 0,
        wall_secs: 0.0,
        cpu_secs: None,
        commit_latency: Latency::default(),
        baseline_rss_kib: None,
        peak_rss_kib: None,
        saved_bytes: None,
        save_secs: None,
        snapshot_bytes: None,
        disk_open: None,
        disk_closed: None,
    }
}

/// The trace txns of the job, `batch` per commit.
fn batches(job: &Job) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    (0..job.txns)
        .step_by(job.batch.max(1))
        .map(|start| start..(start + job.batch.max(1)).min(job.txns))
}

/// Raw Automerge: one `AutoCommit`, one Text object, `commit()` after every `batch` trace
/// txns (every one by default).
fn apply_raw_automerge(job: &Job, trace: &Trace, expected: &str) -> Result<ApplyReport> {
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, TEXT, ObjType::Text)?;
    if !trace.start.is_empty() {
        doc.splice_text(&text, 0, 0, &trace.start)?;
    }
    doc.commit();
    let mut latencies = Vec::with_capacity(job.txns);
    let span = Span::start();
    for txns in batches(job) {
        let t = Instant::now();
        for i in txns {
            for p in trace.txn(i) {
                doc.splice_text(&text, p.pos as usize, p.del as isize, trace.inserted(p))?;
            }
        }
        doc.commit();
        latencies.push(t.elapsed());
    }
    let elapsed = span.stop();
    check_text("raw automerge", &doc.text(&text)?, expected)?;
    raw_report(job, trace, elapsed, latencies, || Ok(doc.save()))
}

/// The raw Yrs rows' client id (see [`yrs_doc`]): at least 2^49, so its varint takes 8
/// bytes.
const RAW_YRS_CLIENT_ID: u64 = (1 << 52) + 0x5eed;

/// A Yrs document configured as Concord configures its own (UTF-16 offsets, as Yjs), with
/// a fixed client id as long as 15 in 16 of Yrs's random ones. Every item's id and origins
/// carry the client id as a varint: Yrs draws it from 53 bits, and the 1 in 16 shorter by
/// a byte made this trace's saved state 346.5 KiB instead of 367.9 KiB and its load that
/// much quicker, so a raw row that drew one could not be compared with a Concord row that
/// did not. Concord's documents keep Yrs's random ids.
fn yrs_doc() -> yrs::Doc {
    yrs::Doc::with_options(Options {
        client_id: yrs::block::ClientID::new(RAW_YRS_CLIENT_ID),
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

/// Raw Yrs: one `Doc`, one root `TextRef`, one `transact_mut` per `batch` trace txns
/// (every one by default).
fn apply_raw_yrs(job: &Job, trace: &Trace, expected: &str) -> Result<ApplyReport> {
    let doc = yrs_doc();
    let text = doc.get_or_insert_text(TEXT);
    if !trace.start.is_empty() {
        text.insert(&mut doc.transact_mut(), 0, &trace.start);
    }
    // The trace counts code points, Yrs (as configured) UTF-16 units: see `astral.rs`.
    let mut astral = AstralPositions::of(&trace.start);
    let mut latencies = Vec::with_capacity(job.txns);
    let span = Span::start();
    for txns in batches(job) {
        let t = Instant::now();
        let mut txn = doc.transact_mut();
        for i in txns {
            for p in trace.txn(i) {
                let ins = trace.inserted(p);
                let at = astral.splice(p.pos, p.del, ins);
                if at.del > 0 {
                    text.remove_range(&mut txn, at.pos, at.del);
                }
                if !ins.is_empty() {
                    text.insert(&mut txn, at.pos, ins);
                }
            }
        }
        drop(txn);
        latencies.push(t.elapsed());
    }
    let elapsed = span.stop();
    check_text("raw yrs", &text.get_string(&doc.transact()), expected)?;
    raw_report(job, trace, elapsed, latencies, || {
        Ok(doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default()))
    })
}

/// The report of a raw-library replay: times `save`, writes its bytes for the cold-load
/// step, and records the replay's timings.
fn raw_report(
    job: &Job,
    trace: &Trace,
    elapsed: measure::Elapsed,
    mut latencies: Vec<std::time::Duration>,
    save: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<ApplyReport> {
    let started = Instant::now();
    let saved = save()?;
    let save_secs = started.elapsed().as_secs_f64();
    std::fs::write(raw_file(&job.dir), &saved)?;
    Ok(ApplyReport {
        commits: latencies.len(),
        wall_secs: elapsed.wall.as_secs_f64(),
        cpu_secs: elapsed.cpu.map(|d| d.as_secs_f64()),
        commit_latency: Latency::of(&mut latencies),
        peak_rss_kib: measure::peak_rss_kib(),
        saved_bytes: Some(saved.len() as u64),
        save_secs: Some(save_secs),
        ..empty_report(job, trace)
    })
}

/// Concord: a `Store` on disk; each `Store::transact` applies `batch` trace txns and
/// commits them durably (SQLite WAL, synchronous=FULL) before returning.
fn apply_concord(job: &Job, kind: DocKind, trace: &Trace, expected: &str) -> Result<ApplyReport> {
    let db = db_file(&job.dir);
    let store = Store::open(&db).with_context(|| format!("opening store {}", db.display()))?;
    store.create_doc(DOC, kind)?;
    if !trace.start.is_empty() {
        store.transact(DOC, |tx| tx.insert_text(TEXT, 0, &trace.start))?;
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(job.txns / job.batch + 1);
    let progress_every = (job.txns / 10).max(1);
    let span = Span::start();
    let mut next = 0;
    while next < job.txns {
        let end = (next + job.batch).min(job.txns);
        let t = Instant::now();
        store.transact(DOC, |tx| {
            for i in next..end {
                for p in trace.txn(i) {
                    tx.splice_text(TEXT, p.pos as usize, p.del as usize, trace.inserted(p))?;
                }
            }
            Ok(())
        })?;
        latencies.push(t.elapsed());
        if end / progress_every != next / progress_every {
            eprintln!(
                "    {}: {end}/{} txns, {:.1}s",
                job.engine.name(),
                job.txns,
                span.stop().wall.as_secs_f64()
            );
        }
        next = end;
    }
    let elapsed = span.stop();
    let text = store.get(DOC, TEXT)?;
    check_text(
        &format!("concord {kind}"),
        text.as_ref().and_then(|v| v.as_str()).unwrap_or_default(),
        expected,
    )?;
    let disk_open = SqliteFiles::of(&db);
    let peak = measure::peak_rss_kib();
    let snapshot_bytes = store.saved_state(DOC)?.len() as u64;
    drop(store);
    Ok(ApplyReport {
        commits: latencies.len(),
        wall_secs: elapsed.wall.as_secs_f64(),
        cpu_secs: elapsed.cpu.map(|d| d.as_secs_f64()),
        commit_latency: Latency::of(&mut latencies),
        peak_rss_kib: peak,
        snapshot_bytes: Some(snapshot_bytes),
        disk_open: Some(disk_open),
        disk_closed: Some(SqliteFiles::of(&db)),
        ..empty_report(job, trace)
    })
}

/// Opens what [`apply`] left behind, in a fresh process, and checks the text; unless
/// `read_only`, a Concord store is then acknowledged and compacted and its size reported.
pub fn load(engine: Engine, dir: &Path, expected: &Path, read_only: bool) -> Result<LoadReport> {
    let expected = std::fs::read_to_string(expected)?;
    let mut compacted_bytes = None;
    let mut load_peak = None;
    let (secs, text) = match engine {
        Engine::RawAutomerge => {
            let bytes = std::fs::read(raw_file(dir))?;
            let t = Instant::now();
            let doc = AutoCommit::load(&bytes)?;
            let Some((_, text_id)) = doc.get(ROOT, TEXT)? else {
                bail!("raw automerge: loaded document has no text");
            };
            let text = doc.text(&text_id)?;
            (t.elapsed(), text)
        }
        Engine::RawYrs => {
            let bytes = std::fs::read(raw_file(dir))?;
            let t = Instant::now();
            let doc = yrs_doc();
            let text_ref = doc.get_or_insert_text(TEXT);
            doc.transact_mut()
                .apply_update(Update::decode_v1(&bytes)?)?;
            let text = text_ref.get_string(&doc.transact());
            (t.elapsed(), text)
        }
        Engine::ConcordAutomerge | Engine::ConcordYrs => {
            let t = Instant::now();
            let store = Store::open(db_file(dir))?;
            let value = store.get(DOC, TEXT)?;
            let elapsed = t.elapsed();
            // After the timing and the peak memory of the load: what acknowledgement and
            // compaction leave on disk.
            load_peak = measure::peak_rss_kib();
            if !read_only {
                let upto = store.version_vector(DOC)?.get(&store.device_id());
                store.acknowledge(DOC, &store.device_id(), upto)?;
                store.compact_all()?;
                drop(store);
                let files = SqliteFiles::of(&db_file(dir));
                compacted_bytes = Some(files.db + files.wal + files.shm);
            }
            let Some(serde_json::Value::String(text)) = value else {
                bail!(
                    "{}: the reopened store has no text at {DOC:?}/{TEXT:?}",
                    engine.name()
                );
            };
            (elapsed, text)
        }
    };
    check_text(&format!("{} cold load", engine.name()), &text, &expected)?;
    Ok(LoadReport {
        load_secs: secs.as_secs_f64(),
        peak_rss_kib: load_peak.or_else(measure::peak_rss_kib),
        chars: text.chars().count(),
        compacted_bytes,
    })
}
