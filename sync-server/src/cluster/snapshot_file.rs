//! The node's current consensus snapshot on disk: one file holding the snapshot's
//! metadata and data (a copy of the relay database), replaced atomically (written to a
//! temporary file, fsynced, renamed, directory fsynced), so it is always whole.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::ClusterStoreError;
use super::type_config::SnapshotMeta;

const FILE: &str = "current.snapshot";

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Replaces the current snapshot with `meta` and `data`.
pub fn save(dir: &Path, meta: &SnapshotMeta, data: &[u8]) -> Result<(), ClusterStoreError> {
    let meta = serde_json::to_vec(meta)?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(&(meta.len() as u64).to_le_bytes())?;
        file.write_all(&meta)?;
        file.write_all(data)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path(dir))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// The current snapshot's metadata and data, if one was saved.
pub fn load(dir: &Path) -> Result<Option<(SnapshotMeta, Vec<u8>)>, ClusterStoreError> {
    let mut bytes = match fs::read(path(dir)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = || ClusterStoreError::Corrupt(format!("snapshot file in {dir:?} is cut short"));
    let len: [u8; 8] = bytes
        .get(..8)
        .ok_or_else(corrupt)?
        .try_into()
        .expect("8 bytes");
    let end = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .and_then(|len| len.checked_add(8))
        .filter(|end| *end <= bytes.len())
        .ok_or_else(corrupt)?;
    let meta = serde_json::from_slice(&bytes[8..end])?;
    let data = bytes.split_off(end);
    Ok(Some((meta, data)))
}
