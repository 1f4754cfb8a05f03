//! Reading documents: values as JSON (through the store's [`crate::read::Reader`]), saved
//! states, version vectors, the list of documents and their sync status.

use crate::log::Cached;
use serde_json::Value;

use super::{sql, DocInfo, DocStatus, Store};
use crate::error::Result;
use crate::ids::DocKind;
use crate::vv::VersionVector;

impl Store {
    /// The kind of a document, or `None` if the store does not have it.
    pub fn doc_kind(&self, id: &str) -> Result<Option<DocKind>> {
        sql::kind_of(&self.lock().conn, id)
    }

    pub fn list_docs(&self) -> Result<Vec<DocInfo>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare("SELECT id, kind FROM docs ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (id, kind) = row?;
            Ok(DocInfo {
                id,
                kind: kind.parse()?,
            })
        })
        .collect()
    }

    /// The value at `path` (`""` for the whole document) as JSON.
    pub fn get(&self, id: &str, path: &str) -> Result<Option<Value>> {
        self.with_loaded(id, |doc, options| doc.crdt.get_with(&options.reader, path))
    }

    /// The length of the text at `path`, counted in [`StoreOptions::text_unit`](super::StoreOptions::text_unit).
    pub fn text_len(&self, id: &str, path: &str) -> Result<usize> {
        self.with_loaded(id, |doc, options| doc.crdt.text_len(&options.reader, path))
    }

    /// The text at `path` from position `start` up to `end` (in
    /// [`StoreOptions::text_unit`](super::StoreOptions::text_unit)); an error when the
    /// range is outside the text or cuts a character.
    pub fn text_slice(&self, id: &str, path: &str, start: usize, end: usize) -> Result<String> {
        self.with_loaded(id, |doc, options| {
            doc.crdt.text_slice(&options.reader, path, start, end)
        })
    }

    /// The whole document as JSON.
    pub fn to_json(&self, id: &str) -> Result<Value> {
        Ok(self.get(id, "")?.unwrap_or(Value::Null))
    }

    /// The document's saved state: its full state as the CRDT saves it (Automerge save /
    /// Yrs v1 state update).
    pub fn saved_state(&self, id: &str) -> Result<Vec<u8>> {
        self.with_loaded(id, |doc, _| Ok(doc.crdt.save()))
    }

    /// Which updates of the document this device holds.
    pub fn version_vector(&self, id: &str) -> Result<VersionVector> {
        self.with_loaded(id, |doc, _| Ok(VersionVector::clone(&doc.version)))
    }

    /// Number of local updates of `id` the relay has not acknowledged.
    pub fn pending(&self, id: &str) -> Result<usize> {
        // One statement, so one snapshot: another process folding the outbox between two
        // reads would have its rows counted twice or not at all.
        let inner = self.lock();
        let n: i64 = inner.conn.query_row_cached(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE doc_id = ?1)
                  + COALESCE((SELECT commits FROM outbox_fold WHERE doc_id = ?1), 0)",
            [id],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// The highest seq up to which the relay has acknowledged this device's own updates of
    /// `id` (every own update up to it left the outbox): the device's whole history of the
    /// document when nothing waits, 0 when nothing was acknowledged. Reads no update data.
    pub fn acknowledged_upto(&self, id: &str) -> Result<u64> {
        // The version first: anything committed by then is in the outbox read next, or
        // acknowledged.
        let device = self.device_id();
        let committed = self.version_vector(id)?.get(&device);
        let inner = self.lock();
        let waiting: Option<i64> = inner.conn.query_row_cached(
            "SELECT MIN(seq) FROM (
                 SELECT seq FROM outbox WHERE doc_id = ?1 AND origin = ?2
                 UNION ALL
                 SELECT first_seq FROM outbox_fold WHERE doc_id = ?1 AND origin = ?2)",
            rusqlite::params![id, device.as_str()],
            |r| r.get(0),
        )?;
        Ok(waiting.map_or(committed, |first| (first as u64).saturating_sub(1)))
    }

    /// Sync state of every document.
    pub fn status(&self) -> Result<Vec<DocStatus>> {
        let docs = self.list_docs()?;
        docs.into_iter()
            .map(|d| {
                Ok(DocStatus {
                    version: self.version_vector(&d.id)?,
                    pending: self.pending(&d.id)?,
                    id: d.id,
                    kind: d.kind,
                })
            })
            .collect()
    }
}
