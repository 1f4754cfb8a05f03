//! Opening the store, one `concord` process at a time.
//!
//! A [`Store`] keeps the documents it has loaded in memory and assumes it is the only
//! writer of its SQLite file. Two processes writing one file could each extend a document
//! from a stale copy, so every `concord` process that writes (edits, `sync`, `edit-loop`)
//! holds an exclusive lock on `<db>.lock` (an OS file lock, released even if the process
//! is killed) while it has the store open. Another writer waits for it a little while,
//! then gives up with a clear message. Readers (`get`, `show`, `list`, `status`) take no
//! lock: they load fresh from the file and SQLite isolates them from the writer.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use concord_core::Store;

/// How long a command waits for another `concord` process to release the store.
const WAIT: Duration = Duration::from_secs(10);
/// After this long, say that we are waiting.
const NOTICE_AFTER: Duration = Duration::from_secs(1);

/// An open store and the lock that keeps other `concord` processes off it.
pub struct LockedStore {
    // Field order matters: the store closes before the lock is released.
    pub store: Store,
    _lock: Option<File>,
}

/// What a command does with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Opens (or creates) the store in `db`; for [`Access::Write`], locks `<db>.lock` first.
pub fn open(db: &Path, access: Access) -> anyhow::Result<LockedStore> {
    let lock = match access {
        Access::Write => Some(lock(db)?),
        Access::Read => None,
    };
    let store =
        Store::open(db).with_context(|| format!("cannot open the store {}", db.display()))?;
    Ok(LockedStore { store, _lock: lock })
}

/// Takes the exclusive lock on `<db>.lock`, waiting up to [`WAIT`] for another process.
fn lock(db: &Path) -> anyhow::Result<File> {
    let lock_path = lock_path(db);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open the store {}", db.display()))?;
    let start = Instant::now();
    let mut noticed = false;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if start.elapsed() >= WAIT {
                    anyhow::bail!(
                        "the store {} is in use by another concord process (a `sync --watch`?); \
                         stop it and try again",
                        db.display()
                    );
                }
                if !noticed && start.elapsed() >= NOTICE_AFTER {
                    eprintln!(
                        "waiting for another concord process to release {} ...",
                        db.display()
                    );
                    noticed = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
            }
        }
    }
    Ok(lock)
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
