//! `concord-bench trace`: replays editing traces (the automerge-paper trace, Martin
//! Kleppmann, CC BY 4.0, and any other given or found beside it: `trace_data.rs`) into raw
//! Automerge, raw Yrs and Concord stores of both kinds, each scenario in its own child
//! process, and reports time, peak memory, size on disk and cold load, and each Concord
//! row's ratios to the raw library in the same run. Traces run one after the other.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde_json::json;

use crate::child;
use crate::report::{self, Table};
use crate::scenario::{ApplyReport, Engine, LoadReport};
use crate::trace_data::{self, Trace};

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// A trace file (editing-traces JSON, gzip'd or not); may be given several times
    /// [default: <repo>/../shared/data/automerge-paper.json.gz, then every other
    /// *.json.gz / *.json trace in that directory]
    #[arg(long)]
    pub trace: Vec<PathBuf>,
    /// Trace txns replayed with one durable Concord commit each (a prefix of the trace)
    #[arg(long, default_value_t = 20_000)]
    pub txns: usize,
    /// Trace txns per durable Concord commit in the batched runs
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Trace txns replayed by the raw and batched runs [default: the whole trace]
    #[arg(long)]
    pub full_txns: Option<usize>,
    /// Run only scenarios whose name contains one of these words (comma-separated),
    /// e.g. `--only raw` or `--only concord-yrs`
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Directory for the temporary stores [default: the system temp dir]
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
    /// Keep the stores and saved states after the run (their directory is printed)
    #[arg(long)]
    pub keep: bool,
    /// Print results as JSON on stdout (tables go to stderr)
    #[arg(long)]
    pub json: bool,
    /// Rounds of every scenario, one after the other (raw and Concord rows interleaved,
    /// so a slower spell of the machine falls on both); each row reports its median round
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// One row: an engine replaying the first `txns` trace txns, `batch` per commit.
struct Scenario {
    name: String,
    engine: Engine,
    txns: usize,
    batch: usize,
    description: String,
}

struct Outcome {
    scenario: Scenario,
    apply: ApplyReport,
    load: LoadReport,
}

fn scenarios(args: &TraceArgs, total: usize) -> Result<Vec<Scenario>> {
    let full = args.full_txns.unwrap_or(total);
    ensure!(
        full <= total,
        "--full-txns {full}: the trace has only {total} txns"
    );
    // A trace shorter than --txns is replayed whole (rows are labelled with the txns run).
    let txns = args.txns.min(total);
    ensure!(args.batch >= 1, "--batch must be at least 1");
    let whole = |n: usize| {
        if n == total {
            "the whole trace".to_string()
        } else {
            format!("the first {} txns", report::thousands(n as u64))
        }
    };
    let raw = |engine, txns: usize, suffix: &str, what: &str| Scenario {
        name: format!("{}{suffix}", Engine::name(engine)),
        engine,
        txns,
        batch: 1,
        description: format!("{what}, in memory, no storage; {}", whole(txns)),
    };
    let concord = |engine, txns: usize, batch: usize, kind: &str| Scenario {
        name: if batch == 1 {
            format!("{}-each", Engine::name(engine))
        } else {
            format!("{}-batch{batch}", Engine::name(engine))
        },
        engine,
        txns,
        batch,
        description: format!(
            "Concord Store on disk, {kind} doc: {} per durable commit (Store::transact); {}",
            if batch == 1 {
                "one trace txn".to_string()
            } else {
                format!("{batch} trace txns")
            },
            whole(txns)
        ),
    };
    let mut all = vec![
        raw(
            Engine::RawAutomerge,
            full,
            "",
            "automerge AutoCommit, commit() per trace txn",
        ),
        raw(
            Engine::RawYrs,
            full,
            "",
            "yrs Doc, one transact_mut per trace txn",
        ),
    ];
    if txns != full {
        all.push(raw(
            Engine::RawAutomerge,
            txns,
            "-prefix",
            "automerge AutoCommit, commit() per trace txn",
        ));
        all.push(raw(
            Engine::RawYrs,
            txns,
            "-prefix",
            "yrs Doc, one transact_mut per trace txn",
        ));
    }
    all.push(concord(Engine::ConcordAutomerge, txns, 1, "automerge"));
    all.push(concord(Engine::ConcordYrs, txns, 1, "yrs"));
    if args.batch > 1 {
        // The libraries' own cost of the same batching, to tell Concord's from theirs.
        for (engine, what) in [
            (Engine::RawAutomerge, "automerge AutoCommit, commit()"),
            (Engine::RawYrs, "yrs Doc, one transact_mut"),
        ] {
            all.push(Scenario {
                batch: args.batch,
                ..raw(
                    engine,
                    full,
                    &format!("-batch{}", args.batch),
                    &format!("{what} per {} trace txns", args.batch),
                )
            });
        }
        all.push(concord(
            Engine::ConcordAutomerge,
            full,
            args.batch,
            "automerge",
        ));
        all.push(concord(Engine::ConcordYrs, full, args.batch, "yrs"));
    }
    if !args.only.is_empty() {
        all.retain(|s| args.only.iter().any(|word| s.name.contains(word.as_str())));
        ensure!(
            !all.is_empty(),
            "--only {:?} matches no scenario",
            args.only
        );
    }
    Ok(all)
}

pub fn run(args: &TraceArgs) -> Result<()> {
    let paths = if args.trace.is_empty() {
        trace_data::default_paths()?
    } else {
        args.trace.clone()
    };
    let mut tables = Vec::new();
    let mut data = Vec::new();
    for path in &paths {
        let (t, d) = run_trace(args, path).with_context(|| format!("trace {}", path.display()))?;
        tables.extend(t);
        data.push(d);
    }
    // One trace: its object as before; several: all of them.
    let data = match <[serde_json::Value; 1]>::try_from(data) {
        Ok([one]) => one,
        Err(all) => json!({"benchmark": "trace", "traces": all}),
    };
    report::emit(&tables, &data, args.json);
    Ok(())
}

/// Every scenario on one trace: its tables and its JSON.
fn run_trace(args: &TraceArgs, path: &Path) -> Result<(Vec<Table>, serde_json::Value)> {
    let trace = Trace::load(path)?;
    eprintln!(
        "trace {}: {} txns, {} edits, final text {} chars",
        path.display(),
        trace.txns(),
        trace.edits(trace.txns()),
        trace.end.chars().count()
    );
    let scenarios = scenarios(args, trace.txns())?;
    let work = match &args.tmp_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("concord-bench-trace")
            .tempdir_in(dir)?,
        None => tempfile::Builder::new()
            .prefix("concord-bench-trace")
            .tempdir()?,
    };
    let compact = work.path().join("trace.bin");
    trace.write_compact(&compact)?;
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    let mut runs: Vec<Vec<(ApplyReport, Vec<LoadReport>)>> =
        scenarios.iter().map(|_| Vec::new()).collect();
    for round in 1..=args.rounds {
        // Every scenario's replay, then the cold loads of all of them interleaved (load k
        // of each scenario, then load k + 1 of each): a slow spell of the machine, which
        // lasts seconds here, falls on the raw and the Concord rows' loads alike.
        let mut applied = Vec::with_capacity(scenarios.len());
        for scenario in &scenarios {
            let expected = work.path().join(format!("expected-{}.txt", scenario.txns));
            if !expected.exists() {
                std::fs::write(&expected, trace.expected_text(scenario.txns)?)?;
            }
            let dir = work.path().join(&scenario.name);
            std::fs::remove_dir_all(&dir).ok();
            std::fs::create_dir(&dir)?;
            eprintln!(
                "running {} (round {round}/{}): {}",
                scenario.name, args.rounds, scenario.description
            );
            let apply = apply_scenario(scenario, &compact, &expected, &dir)?;
            eprintln!(
                "  done in {}s, text verified",
                report::secs(apply.wall_secs)
            );
            applied.push((apply, expected, dir, Vec::with_capacity(LOAD_RUNS)));
        }
        // The first LOAD_RUNS - 1 loads only open and read, the last also acknowledges and
        // compacts.
        for run in 1..=LOAD_RUNS {
            for (scenario, (_, expected, dir, loads)) in scenarios.iter().zip(&mut applied) {
                loads.push(load_scenario(
                    scenario,
                    expected,
                    dir,
                    run,
                    run < LOAD_RUNS,
                )?);
            }
        }
        eprintln!("  cold loads verified ({LOAD_RUNS} per scenario)");
        for (done, (apply, _, dir, loads)) in runs.iter_mut().zip(applied) {
            done.push((apply, loads));
            if !args.keep || round < args.rounds {
                // Free the disk space of this round before the next one.
                std::fs::remove_dir_all(&dir).ok();
            }
        }
    }
    let outcomes: Vec<Outcome> = scenarios
        .into_iter()
        .zip(runs)
        .map(|(scenario, rounds)| {
            let (apply, load) = median_round(rounds);
            Outcome {
                scenario,
                apply,
                load,
            }
        })
        .collect();
    if args.keep {
        eprintln!("kept the stores in {}", work.keep().display());
    }
    let tables = tables(&outcomes, path, &trace, args.rounds);
    let data = json!({
        "benchmark": "trace",
        "trace": path.display().to_string(),
        "trace_txns": trace.txns(),
        "rounds": args.rounds,
        "trace_edits": trace.edits(trace.txns()),
        "scenarios": outcomes.iter().map(|o| json!({
            "name": o.scenario.name,
            "description": o.scenario.description,
            "engine": o.scenario.engine,
            "txns": o.scenario.txns,
            "txns_per_commit": o.scenario.batch,
            "apply": o.apply,
            "load": o.load,
        })).collect::<Vec<_>>(),
    });
    Ok((tables, data))
}

/// Replays the trace into `dir` in a child process.
fn apply_scenario(
    s: &Scenario,
    compact: &Path,
    expected: &Path,
    dir: &Path,
) -> Result<ApplyReport> {
    let os = |s: &str| OsString::from(s);
    let args = vec![
        os("child"),
        os("apply"),
        os("--engine"),
        os(s.engine.name()),
        os("--compact"),
        compact.into(),
        os("--expected"),
        expected.into(),
        os("--txns"),
        os(&s.txns.to_string()),
        os("--batch"),
        os(&s.batch.to_string()),
        os("--dir"),
        dir.into(),
    ];
    child::run(&format!("{} (apply)", s.name), &args)
        .with_context(|| format!("scenario {}", s.name))
}

/// Cold load number `run` of what [`apply_scenario`] left in `dir`, in a fresh process
/// (`read_only`: only open and read; otherwise also acknowledge and compact).
fn load_scenario(
    s: &Scenario,
    expected: &Path,
    dir: &Path,
    run: usize,
    read_only: bool,
) -> Result<LoadReport> {
    let os = |s: &str| OsString::from(s);
    let mut args = vec![
        os("child"),
        os("load"),
        os("--engine"),
        os(s.engine.name()),
        os("--expected"),
        expected.into(),
        os("--dir"),
        dir.into(),
    ];
    if read_only {
        args.push(os("--read-only"));
    }
    child::run(&format!("{} (cold load {run})", s.name), &args)
        .with_context(|| format!("scenario {}", s.name))
}

/// Cold loads per scenario and round, each in a fresh process. A load takes milliseconds and
/// its time varies by ±10% from one process to the next (two raw rows loading the same
/// saved state differed by 13% in medians of 9 loads), so it is taken many times.
const LOAD_RUNS: usize = 9;

/// A scenario's rounds as one row: the replay of the round with the median wall time, and
/// the median load time and peak memory of every cold load of every round.
fn median_round(mut rounds: Vec<(ApplyReport, Vec<LoadReport>)>) -> (ApplyReport, LoadReport) {
    let loads: Vec<LoadReport> = rounds
        .iter_mut()
        .flat_map(|(_, loads)| std::mem::take(loads))
        .collect();
    rounds.sort_by(|a, b| a.0.wall_secs.total_cmp(&b.0.wall_secs));
    let middle = rounds.len() / 2;
    let apply = rounds.swap_remove(middle).0;
    (apply, median_load(loads))
}

/// The median load time and median peak memory of `loads`, with the last one's sizes.
fn median_load(mut loads: Vec<LoadReport>) -> LoadReport {
    let mut secs: Vec<f64> = loads.iter().map(|l| l.load_secs).collect();
    secs.sort_by(f64::total_cmp);
    let mut rss: Vec<u64> = loads.iter().filter_map(|l| l.peak_rss_kib).collect();
    rss.sort_unstable();
    let last = loads.pop().expect("at least one load");
    LoadReport {
        load_secs: secs[secs.len() / 2],
        peak_rss_kib: rss.get(rss.len() / 2).copied(),
        ..last
    }
}

fn tables(outcomes: &[Outcome], path: &Path, trace: &Trace, rounds: usize) -> Vec<Table> {
    let name = trace_data::name_of(path);
    let most = trace.max_patches_per_txn();
    let mut speed = Table::new(
        format!(
            "Editing trace {name}: replay ({} patch{} per trace txn)",
            if most == 1 {
                "one".to_string()
            } else {
                format!("1-{most}")
            },
            if most == 1 { "" } else { "es" }
        ),
        &[
            "scenario",
            "txns",
            "txns/commit",
            "commits",
            "wall s",
            "CPU s",
            "txns/s",
            "commits/s",
            "commit p50 µs",
            "p99 µs",
            "max ms",
            "peak RSS",
        ],
    );
    for o in outcomes {
        let a = &o.apply;
        speed.row(vec![
            o.scenario.name.clone(),
            report::thousands(a.txns as u64),
            o.scenario.batch.to_string(),
            report::thousands(a.commits as u64),
            report::secs(a.wall_secs),
            report::cpu_secs(a.cpu_secs),
            report::rate(a.txns as f64 / a.wall_secs),
            report::rate(a.commits as f64 / a.wall_secs),
            report::micros(a.commit_latency.p50_us),
            report::micros(a.commit_latency.p99_us),
            report::millis(a.commit_latency.max_us / 1e6),
            report::kib(a.peak_rss_kib),
        ]);
    }
    for o in outcomes {
        speed.note(format!(
            "`{}`: {}.",
            o.scenario.name, o.scenario.description
        ));
    }
    let baseline = outcomes
        .iter()
        .filter_map(|o| o.apply.baseline_rss_kib)
        .max();
    speed.note(format!(
        "Each scenario runs in its own process, in {} rounds (every scenario once per round, \
         raw and Concord rows interleaved); each row is its round with the median wall time. \
         Peak RSS is that process's VmHWM, read at the end (after the final save/snapshot). \
         It includes a baseline of about {} (program, compact trace, expected text) before \
         the replay starts.",
        rounds,
        report::kib(baseline)
    ));
    speed.note(
        "Raw rows: a \"commit\" is the library's own in-memory commit/transaction; nothing is \
         written to disk while replaying.",
    );
    speed.note(format!(
        "Trace: {} ({} txns, {} edits). Every row checks the final text against the \
         trace's endContent (whole trace) or a plain-string replay (prefixes).",
        path.display(),
        report::thousands(trace.txns() as u64),
        report::thousands(trace.edits(trace.txns()) as u64)
    ));

    let mut size = Table::new(
        format!("Editing trace {name}: size and cold load"),
        &[
            "scenario",
            "txns",
            "saved state",
            "save ms",
            "CRDT snapshot",
            "disk while open (db+wal+shm)",
            "db after close",
            "cold load ms",
            "cold load peak RSS",
            "db after ack + compact",
        ],
    );
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for o in outcomes {
        let a = &o.apply;
        size.row(vec![
            o.scenario.name.clone(),
            report::thousands(a.txns as u64),
            or_dash(a.saved_bytes.map(report::bytes)),
            or_dash(a.save_secs.map(report::millis)),
            or_dash(a.snapshot_bytes.map(report::bytes)),
            or_dash(a.disk_open.map(|f| {
                format!(
                    "{} ({} + {} + {})",
                    report::bytes(f.total()),
                    report::bytes(f.db),
                    report::bytes(f.wal),
                    report::bytes(f.shm)
                )
            })),
            or_dash(a.disk_closed.map(|f| report::bytes(f.db + f.wal + f.shm))),
            report::millis(o.load.load_secs),
            report::kib(o.load.peak_rss_kib),
            or_dash(o.load.compacted_bytes.map(report::bytes)),
        ]);
    }
    size.note(
        "saved state: raw rows, `AutoCommit::save()` / `encode_state_as_update_v1` of the \
         whole document. CRDT snapshot: Concord rows, `Store::saved_state` at the end.",
    );
    size.note(
        "cold load: a fresh process, nine times per round (interleaved with the other rows' loads); the median time and median peak memory of all rounds. Raw \
         rows time decoding the saved bytes and reading the text; Concord rows time \
         `Store::open` until `store.get(doc, \"text\")` returns the whole text. The OS page \
         cache is warm (the files were just written).",
    );
    size.note(
        "Concord keeps every local update in its log until a relay acknowledges it (there is \
         no relay here), so `db after close` holds the checkpoint plus all updates; closing \
         checkpoints the tail. `db after ack + compact`: the load child then acknowledges \
         every local update and calls `Store::compact_all`.",
    );
    vec![speed, size, ratios(outcomes, &name)]
}

/// Each Concord row against the raw library of its kind on the same txns, in this run.
fn ratios(outcomes: &[Outcome], name: &str) -> Table {
    let mut t = Table::new(
        format!("Editing trace {name}: Concord / raw library (same run)"),
        &[
            "scenario",
            "raw row",
            "time (wall)",
            "time (CPU)",
            "peak RSS",
            "cold load time",
            "cold load RSS",
            "db after close / saved",
            "after ack+compact / saved",
        ],
    );
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "-".into()
        }
    };
    for o in outcomes {
        let raw_engine = match o.scenario.engine {
            Engine::ConcordAutomerge => Engine::RawAutomerge,
            Engine::ConcordYrs => Engine::RawYrs,
            _ => continue,
        };
        // Against the raw row with a commit per trace txn, and against the raw row batched
        // as this one is (the library's own cost of the same batching), when there is one.
        let raws = outcomes.iter().filter(|r| {
            r.scenario.engine == raw_engine
                && r.scenario.txns == o.scenario.txns
                && (r.scenario.batch == 1 || r.scenario.batch == o.scenario.batch)
        });
        for raw in raws {
            let (a, r) = (&o.apply, &raw.apply);
            let saved = r.saved_bytes.unwrap_or(0) as f64;
            let kib = |k: Option<u64>| k.unwrap_or(0) as f64;
            t.row(vec![
                o.scenario.name.clone(),
                raw.scenario.name.clone(),
                ratio(a.wall_secs, r.wall_secs),
                ratio(a.cpu_secs.unwrap_or(0.0), r.cpu_secs.unwrap_or(0.0)),
                ratio(kib(a.peak_rss_kib), kib(r.peak_rss_kib)),
                ratio(o.load.load_secs, raw.load.load_secs),
                ratio(kib(o.load.peak_rss_kib), kib(raw.load.peak_rss_kib)),
                ratio(
                    a.disk_closed.map_or(0, |f| f.db + f.wal + f.shm) as f64,
                    saved,
                ),
                ratio(o.load.compacted_bytes.unwrap_or(0) as f64, saved),
            ]);
        }
    }
    t.note(
        "Ratios within this run: Concord row / the raw row of the same library on the same \
         txns. Disk ratios are to the raw library's saved document.",
    );
    t
}
