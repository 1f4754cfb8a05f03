//! Text positions through the CLI: the same unit for both kinds (Unicode scalar values by
//! default, UTF-16 with `--text-unit utf16`), with an emoji and a combining mark, and the
//! `text` command's length and slices; the edit syncs through a real relay.

mod support;

use serde_json::json;
use support::{Device, Server};

#[test]
fn both_kinds_count_the_same_unit_with_emoji_and_combining_marks() {
    let dir = tempfile::tempdir().unwrap();
    for (unit, after_emoji, len) in [("scalar", "2", 5), ("utf16", "3", 6)] {
        for kind in ["automerge", "yrs"] {
            let d = Device::new(dir.path(), &format!("{kind}-{unit}"));
            let u = ["--text-unit", unit];
            d.ok(&[&u[..], &["create", "d", "--kind", kind]].concat());
            d.ok(&[&u[..], &["insert-text", "d", "t", "0", "a👋e\u{301}b"]].concat());
            let text = d.json(&[&u[..], &["text", "d", "t"]].concat());
            assert_eq!(
                text,
                json!({"text": "a👋e\u{301}b", "len": len}),
                "{kind} {unit}"
            );
            d.ok(&[&u[..], &["insert-text", "d", "t", after_emoji, "|"]].concat());
            let mark = (after_emoji.parse::<usize>().unwrap() + 2).to_string();
            d.ok(&[&u[..], &["delete-text", "d", "t", &mark, "1"]].concat());
            assert_eq!(d.show("d"), json!({"t": "a👋|eb"}), "{kind} {unit}");
            let end = (after_emoji.parse::<usize>().unwrap() + 1).to_string();
            let part = d.ok(&[&u[..], &["text", "d", "t", "0", &end]].concat());
            assert_eq!(part.trim_end(), "a👋|", "{kind} {unit}");
            if unit == "utf16" {
                let (code, stderr) =
                    d.fails(&[&u[..], &["insert-text", "d", "t", "2", "x"]].concat());
                assert_eq!(code, 1);
                assert!(stderr.contains("inside the character"), "{kind}: {stderr}");
                let (_, stderr) = d.fails(&[&u[..], &["text", "d", "t", "0", "2"]].concat());
                assert!(stderr.contains("cuts a character"), "{kind}: {stderr}");
            }
        }
    }
}

#[test]
fn text_edited_in_scalar_units_syncs_to_a_utf16_device() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    let b = Device::new(dir.path(), "b");
    a.ok(&["create", "d", "--kind", "yrs"]);
    a.ok(&["insert-text", "d", "t", "0", "👋👋"]);
    a.ok(&["insert-text", "d", "t", "1", "x"]);
    a.sync(&server);
    b.ok(&["create", "d", "--kind", "yrs"]);
    b.sync(&server);
    assert_eq!(b.show("d"), json!({"t": "👋x👋"}));
    assert_eq!(
        b.json(&["--text-unit", "utf16", "text", "d", "t"])["len"],
        5
    );
    b.ok(&["--text-unit", "utf16", "insert-text", "d", "t", "3", "y"]);
    b.sync(&server);
    a.sync(&server);
    assert_eq!(a.show("d"), json!({"t": "👋xy👋"}));
}
