//! The node's current consensus snapshot on disk: one file holding the snapshot's
//! metadata and data (a copy of the relay database), replaced atomically (written to a
//! temporary file, fsynced, renamed, directory fsynced), so it is always whole.
//!
//! The snapshot builder and the installer run concurrently (openraft builds in a task of
//! its own while a snapshot from the leader is being installed), so saves are serialized
//! and never go backwards: a snapshot older than the current one is not saved over it (the
//! log before the current one may already be purged; an older snapshot could not bring a
//! lagging follower up to the log).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::error::ClusterStoreError;
use super::type_config::{LogId, SnapshotMeta};

const FILE: &str = "current.snapshot";

/// The current snapshot of one node (shared by its builder and its state machine).
pub struct SnapshotFile {
    dir: PathBuf,
    /// The position of the snapshot on disk (`None`: none saved yet); also the lock that
    /// serializes saves and loads.
    saved: Mutex<Option<Option<LogId>>>,
}

impl SnapshotFile {
    /// The current snapshot kept in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<SnapshotFile, ClusterStoreError> {
        fs::create_dir_all(dir)?;
        let saved = read_meta(dir)?.map(|meta| meta.last_log_id);
        Ok(SnapshotFile {
            dir: dir.to_path_buf(),
            saved: Mutex::new(saved),
        })
    }

    /// Where scratch copies of the database go (beside the snapshot).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Option<Option<LogId>>> {
        self.saved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `meta` and `data` the current snapshot, unless the current one is at least as
    /// recent (then it stays, and false is returned).
    pub fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<bool, ClusterStoreError> {
        let mut saved = self.lock();
        if matches!(*saved, Some(current) if current >= meta.last_log_id) {
            return Ok(false);
        }
        let bytes = serde_json::to_vec(meta)?;
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        {
            let mut file = File::create(&tmp)?;
            file.write_all(&(bytes.len() as u64).to_le_bytes())?;
            file.write_all(&bytes)?;
            file.write_all(data)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, path(&self.dir))?;
        File::open(&self.dir)?.sync_all()?;
        *saved = Some(meta.last_log_id);
        Ok(true)
    }

    /// The current snapshot's metadata and data, if one was saved.
    pub fn load(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, ClusterStoreError> {
        let _saved = self.lock();
        let mut bytes = match fs::read(path(&self.dir)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let end = meta_end(&self.dir, &bytes)?;
        let meta = serde_json::from_slice(&bytes[8..end])?;
        let data = bytes.split_off(end);
        Ok(Some((meta, data)))
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn cut_short(dir: &Path) -> ClusterStoreError {
    ClusterStoreError::Corrupt(format!("snapshot file in {dir:?} is cut short"))
}

/// Where the metadata ends in a snapshot file starting with `head`.
fn meta_end(dir: &Path, head: &[u8]) -> Result<usize, ClusterStoreError> {
    let len: [u8; 8] = head
        .get(..8)
        .ok_or_else(|| cut_short(dir))?
        .try_into()
        .expect("8 bytes");
    usize::try_from(u64::from_le_bytes(len))
        .ok()
        .and_then(|len| len.checked_add(8))
        .filter(|end| *end <= head.len())
        .ok_or_else(|| cut_short(dir))
}

/// The metadata of the snapshot in `dir`, reading only the file's head.
fn read_meta(dir: &Path) -> Result<Option<SnapshotMeta>, ClusterStoreError> {
    let mut file = match File::open(path(dir)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| cut_short(dir))?;
    // A length past the file's end (a damaged header) is refused before anything is
    // allocated for it.
    let size = file.metadata()?.len();
    let len = u64::from_le_bytes(len);
    if len > size.saturating_sub(8) {
        return Err(cut_short(dir));
    }
    let len = usize::try_from(len).map_err(|_| cut_short(dir))?;
    let mut head = (len as u64).to_le_bytes().to_vec();
    head.resize(8 + len, 0);
    file.read_exact(&mut head[8..])
        .map_err(|_| cut_short(dir))?;
    let end = meta_end(dir, &head)?;
    Ok(Some(serde_json::from_slice(&head[8..end])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::type_config::StoredMembership;
    use openraft::{CommittedLeaderId, LogId as RaftLogId};

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(RaftLogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("s{index}"),
        }
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one_and_reopening_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("dir");
        let file = SnapshotFile::open(dir.path()).expect("open");
        assert!(file.load().expect("load").is_none());
        assert!(file.save(&meta(299), b"newer").expect("save"));
        assert!(!file.save(&meta(53), b"older").expect("save"));
        let (m, data) = file.load().expect("load").expect("a snapshot");
        assert_eq!(
            (m.snapshot_id.as_str(), data.as_slice()),
            ("s299", &b"newer"[..])
        );
        drop(file);
        let file = SnapshotFile::open(dir.path()).expect("reopen");
        assert!(!file.save(&meta(100), b"older").expect("save"));
        assert!(file.save(&meta(300), b"newest").expect("save"));
        let (m, data) = file.load().expect("load").expect("a snapshot");
        assert_eq!(
            (m.snapshot_id.as_str(), data.as_slice()),
            ("s300", &b"newest"[..])
        );
    }

    #[test]
    fn a_damaged_header_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().expect("dir");
        let file = SnapshotFile::open(dir.path()).expect("open");
        assert!(file.save(&meta(7), b"data").expect("save"));
        drop(file);
        for len in [u64::MAX, u64::MAX - 7, 1 << 40, 10_000] {
            let mut bytes = fs::read(path(dir.path())).expect("read");
            bytes[..8].copy_from_slice(&len.to_le_bytes());
            fs::write(path(dir.path()), &bytes).expect("write");
            match SnapshotFile::open(dir.path()) {
                Err(ClusterStoreError::Corrupt(message)) => {
                    assert!(message.contains("cut short"), "{message}")
                }
                Err(other) => panic!("length {len}: {other}"),
                Ok(_) => panic!("length {len}: a damaged snapshot file was taken"),
            }
        }
    }

    #[test]
    fn concurrent_saves_all_succeed() {
        let dir = tempfile::tempdir().expect("dir");
        let file = std::sync::Arc::new(SnapshotFile::open(dir.path()).expect("open"));
        let threads: Vec<_> = (1..=8u64)
            .map(|i| {
                let file = file.clone();
                std::thread::spawn(move || {
                    for round in 0..10 {
                        file.save(&meta(i * 100 + round), &[i as u8; 4096])
                            .expect("a concurrent save succeeds");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let (m, data) = file.load().expect("load").expect("a snapshot");
        assert_eq!(m.snapshot_id, "s809");
        assert_eq!(data, vec![8u8; 4096]);
    }
}
