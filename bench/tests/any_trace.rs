//! `concord-bench trace` takes any trace in the editing-traces format: several at once,
//! gzip'd or plain JSON, with transactions of many patches and characters outside the BMP
//! (emoji; positions in code points) and combining marks. Every row of every trace checks
//! its final text against the trace's `endContent` (the run fails otherwise), and the report
//! names each trace.

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// A trace replayed from `start` through `txns` (each a list of (pos, del, insert) in code
/// points), with its `endContent` computed on a plain character array.
fn write_trace(path: &Path, start: &str, txns: &[Vec<(usize, usize, &str)>], gzip: bool) {
    let mut text: Vec<char> = start.chars().collect();
    for txn in txns {
        for (pos, del, ins) in txn {
            text.splice(*pos..*pos + *del, ins.chars());
        }
    }
    let json = serde_json::json!({
        "startContent": start,
        "endContent": text.iter().collect::<String>(),
        "txns": txns.iter().map(|t| serde_json::json!({
            "time": "2026-11-30T00:00:00.000Z",
            "patches": t.iter().map(|(p, d, i)| serde_json::json!([p, d, i])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let file = std::fs::File::create(path).unwrap();
    if gzip {
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(json.as_bytes()).unwrap();
        gz.finish().unwrap();
    } else {
        let mut file = file;
        file.write_all(json.as_bytes()).unwrap();
    }
}

#[test]
fn traces_with_emoji_and_many_patches_per_txn_replay_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    // Typing with emoji, flags (two astral characters each) and combining marks, edits
    // around and across them, several patches per transaction.
    let mut txns: Vec<Vec<(usize, usize, &str)>> = Vec::new();
    let mut len = "start 🙂 ".chars().count();
    let words = ["héllo", "😀", "e\u{301}", "🇫🇷", " ", "𝄞x", "wörld", "👩‍💻"];
    for i in 0..60 {
        let mut txn = Vec::new();
        for j in 0..(1 + i % 5) {
            let word = words[(i + j) % words.len()];
            let pos = (i * 7 + j * 3) % (len + 1);
            let del = if (i + j) % 3 == 0 {
                (len - pos).min(2)
            } else {
                0
            };
            txn.push((pos, del, word));
            len = len - del + word.chars().count();
        }
        txns.push(txn);
    }
    let emoji = dir.path().join("emoji.json.gz");
    write_trace(&emoji, "start 🙂 ", &txns, true);
    // A second trace, plain JSON, starting from content, with deletions only in one txn.
    let plain = dir.path().join("plain.json");
    write_trace(
        &plain,
        "abc😀def",
        &[
            vec![(1, 0, "X")],
            vec![(3, 3, "")],
            vec![(0, 0, "🎉"), (5, 0, "!")],
        ],
        false,
    );

    let out = Command::new(env!("CARGO_BIN_EXE_concord-bench"))
        .args([
            "trace", "--rounds", "1", "--txns", "40", "--batch", "7", "--json",
        ])
        .arg("--trace")
        .arg(&emoji)
        .arg("--trace")
        .arg(&plain)
        .arg("--tmp-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the bench failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let traces = report["traces"].as_array().expect("one report per trace");
    assert_eq!(traces.len(), 2);
    let emoji_report = &traces[0];
    assert!(emoji_report["trace"]
        .as_str()
        .unwrap()
        .ends_with("emoji.json.gz"));
    assert_eq!(emoji_report["trace_txns"], 60);
    let names: Vec<&str> = emoji_report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for engine in [
        "raw-automerge",
        "raw-yrs",
        "concord-automerge",
        "concord-yrs",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(engine)),
            "{engine} ran on the emoji trace: {names:?}"
        );
    }
    // A trace shorter than --txns is replayed whole, and labelled with what ran.
    let plain_report = &traces[1];
    let txns: Vec<u64> = plain_report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["txns"].as_u64().unwrap())
        .collect();
    assert!(
        txns.iter().all(|&t| t == 3),
        "every row ran the 3 txns: {txns:?}"
    );
    assert!(stderr.contains("Editing trace emoji: replay (1-5 patches per trace txn)"));
    assert!(stderr.contains("Editing trace plain: size and cold load"));
}
