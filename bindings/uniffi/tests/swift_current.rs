//! The committed Swift sources (swift/Sources, swift/Headers) are what `uniffi-bindgen`
//! generates from this crate now: regenerate them into a temporary directory and compare.
//! When this fails, run `bindings/uniffi/scripts/generate-swift.sh` and commit the result.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cdylib built next to the `uniffi-bindgen` binary.
fn library() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .parent()
        .expect("the binary has a directory")
        .to_path_buf();
    let name = format!(
        "{}concord_uniffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let lib = dir.join(name);
    if !lib.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "-q", "-p", "concord-uniffi"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(built && lib.exists(), "cannot build {}", lib.display());
    }
    lib
}

#[test]
fn committed_swift_sources_are_current() {
    let out = tempfile::tempdir().expect("temp dir");
    let status = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args([
            "generate",
            "--no-format",
            "--language",
            "swift",
            "--out-dir",
        ])
        .arg(out.path())
        .arg(library())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run uniffi-bindgen");
    assert!(status.success(), "uniffi-bindgen failed");
    let swift = Path::new(env!("CARGO_MANIFEST_DIR")).join("swift");
    for (generated, committed) in [
        ("Concord.swift", "Sources/Concord/Concord.swift"),
        ("ConcordFFI.h", "Headers/ConcordFFI.h"),
        ("ConcordFFI.modulemap", "Headers/module.modulemap"),
    ] {
        let fresh = std::fs::read_to_string(out.path().join(generated)).expect("generated");
        let kept = std::fs::read_to_string(swift.join(committed)).unwrap_or_default();
        assert!(
            fresh == kept,
            "swift/{committed} is stale: run bindings/uniffi/scripts/generate-swift.sh"
        );
    }
}
