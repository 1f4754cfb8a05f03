//! Consistent copies of the whole relay database, out and in: what a cluster node sends
//! as a consensus snapshot, and how a node that receives one takes it over.

use std::path::Path;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;

use super::{schema, Result, Storage, StorageError};

impl Storage {
    /// Writes a consistent copy of the database (documents, logs, applied position and
    /// consensus state, all as of the last committed batch) to the new file `dest`.
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        let dest = dest
            .to_str()
            .ok_or_else(|| StorageError::Corrupt(format!("path {dest:?} is not UTF-8")))?;
        self.conn.execute("VACUUM INTO ?1", [dest])?;
        Ok(())
    }

    /// Replaces the database's whole content with the copy in `src` (written by
    /// [`Storage::copy_to`], here or on another node) in one transaction, so a crash leaves
    /// either the old content or the new; then migrates it if it is older and reloads. A
    /// copy of a newer schema (from a node running a newer relay) is refused before
    /// anything is replaced.
    pub fn restore_from(&mut self, src: &Path) -> Result<()> {
        let source = Connection::open(src)?;
        schema::refuse_newer(&source)?;
        {
            let backup = Backup::new(&source, &mut self.conn)?;
            match backup.step(-1)? {
                StepResult::Done => {}
                other => {
                    return Err(StorageError::Corrupt(format!(
                        "restoring from {src:?} stopped: {other:?}"
                    )))
                }
            }
        }
        drop(source);
        schema::prepare(&mut self.conn)?;
        self.reload()
    }
}
