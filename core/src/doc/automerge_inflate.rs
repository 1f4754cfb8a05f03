//! Bounds on what compressed Automerge chunks inflate to, checked before Automerge reads
//! them. Automerge inflates a compressed change, and a document chunk's compressed
//! columns, without a limit (and copies the result), so a few MiB of deflated zeros from a
//! peer would take GiBs of a relay's memory. An update's compressed change, or an
//! automerge-repo sync message's chunks, are refused when they would inflate beyond
//! [`MAX_INFLATED`]. The walk follows the chunk layout of automerge 0.12 (`storage/chunk.rs`,
//! `storage/document.rs`); what it cannot follow is left to Automerge, which refuses it.

use std::io::Read;

use super::automerge_doc::{CHUNK_MAGIC, COMPRESSED_CHANGE};
use crate::error::{Error, Result};
use crate::ids::DocKind;

/// The most the compressed parts of one chunk may inflate to, together.
pub const MAX_INFLATED: u64 = 32 * 1024 * 1024;

/// The chunk type of a document (a saved document, or a bundle of changes).
const DOCUMENT: u8 = 0;
/// The chunk type of one uncompressed change.
const CHANGE: u8 = 1;
/// A column spec's flag for deflated data.
const DEFLATE_FLAG: u32 = 0b1000;
/// The length of a change hash.
const HASH_LEN: usize = 32;

fn too_big() -> Error {
    Error::InvalidUpdate {
        kind: DocKind::Automerge,
        reason: format!(
            "a compressed chunk inflates to more than {} MiB",
            MAX_INFLATED >> 20
        ),
    }
}

/// An error when the deflated `data` inflates beyond `budget` (or is not deflate data);
/// otherwise the size it inflates to.
fn inflated_size(data: &[u8], budget: u64) -> Result<u64> {
    let mut inflated = flate2::bufread::DeflateDecoder::new(data).take(budget + 1);
    let size =
        std::io::copy(&mut inflated, &mut std::io::sink()).map_err(|e| Error::InvalidUpdate {
            kind: DocKind::Automerge,
            reason: format!("a compressed chunk does not inflate: {e}"),
        })?;
    if size > budget {
        return Err(too_big());
    }
    Ok(size)
}

/// An error when the body of a compressed change inflates beyond [`MAX_INFLATED`].
pub(super) fn check_inflated(body: &[u8]) -> Result<()> {
    inflated_size(body, MAX_INFLATED).map(|_| ())
}

/// About the memory the chunks of `bytes` take once read: their length, and what their
/// compressed parts inflate to. An error when `bytes` is not a sequence of whole document
/// and change chunks (an automerge-repo sync message's changes, joined: Automerge joins
/// them before it reads them, so a chunk may not be split across them), or when a
/// compressed part of one chunk inflates beyond [`MAX_INFLATED`].
pub fn check_automerge_chunks(bytes: &[u8]) -> Result<u64> {
    let refused = |reason: String| Error::InvalidUpdate {
        kind: DocKind::Automerge,
        reason,
    };
    let mut size = bytes.len() as u64;
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 10 || rest[..4] != CHUNK_MAGIC {
            return Err(refused("not an automerge chunk".into()));
        }
        let kind = rest[8];
        let mut r = Reader { bytes: &rest[9..] };
        let len = r
            .leb()
            .ok_or_else(|| refused("a truncated chunk length".into()))?;
        let header = rest.len() - r.bytes.len();
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(header))
            .filter(|t| *t <= rest.len())
            .ok_or_else(|| refused("a chunk runs past the end of the changes".into()))?;
        let body = &rest[header..total];
        size += match kind {
            CHANGE => 0,
            COMPRESSED_CHANGE => inflated_size(body, MAX_INFLATED)?,
            DOCUMENT => check_document_columns(body)?,
            other => {
                return Err(refused(format!(
                    "chunk type {other} is neither a document nor a change"
                )))
            }
        };
        rest = &rest[total..];
    }
    Ok(size)
}

/// A document chunk's body: actors, heads, the change and op columns' specs and lengths,
/// then their data; the deflated columns together may inflate to [`MAX_INFLATED`]. What
/// they inflate to.
fn check_document_columns(body: &[u8]) -> Result<u64> {
    let mut r = Reader { bytes: body };
    let Some(columns) = r.columns_prefix() else {
        return Ok(0);
    };
    let mut data = r.bytes;
    let mut budget = MAX_INFLATED;
    for (spec, len) in columns {
        let Some(len) = usize::try_from(len).ok().filter(|l| *l <= data.len()) else {
            break;
        };
        let (column, after) = data.split_at(len);
        if spec & DEFLATE_FLAG != 0 {
            budget -= inflated_size(column, budget)?;
        }
        data = after;
    }
    Ok(MAX_INFLATED - budget)
}

/// Reads the chunk layout's pieces (`None` when the bytes run out).
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn leb(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for (i, byte) in self.bytes.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let n = usize::try_from(n).ok().filter(|n| *n <= self.bytes.len())?;
        self.bytes = &self.bytes[n..];
        Some(())
    }

    /// Actors, heads and both column lists: the columns' (spec, length), in order.
    fn columns_prefix(&mut self) -> Option<Vec<(u32, u64)>> {
        let actors = self.leb()?;
        for _ in 0..actors {
            let len = self.leb()?;
            self.skip(len)?;
        }
        let heads = self.leb()?;
        self.skip(heads.checked_mul(HASH_LEN as u64)?)?;
        let mut columns = Vec::new();
        for _ in 0..2 {
            let count = self.leb()?;
            for _ in 0..count {
                let spec = u32::try_from(self.leb()?).ok()?;
                let len = self.leb()?;
                columns.push((spec, len));
            }
        }
        Some(columns)
    }
}

/// Appends `n` as an unsigned LEB128 (tests build chunks by hand).
#[cfg(test)]
pub(super) fn push_leb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
}

/// A chunk of type `kind` around `body` (its checksum zero: not checked this early).
#[cfg(test)]
pub(super) fn test_chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut chunk = CHUNK_MAGIC.to_vec();
    chunk.extend([0, 0, 0, 0, kind]);
    push_leb(&mut chunk, body.len() as u64);
    chunk.extend(body);
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    #[test]
    fn real_documents_and_changes_pass_and_are_measured_where_compressed() {
        let mut doc = AutoCommit::new();
        let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, &"a long text that compresses ".repeat(400))
            .unwrap();
        doc.commit();
        let saved = doc.save();
        assert_eq!(saved[8], DOCUMENT);
        let mut r = Reader { bytes: &saved[9..] };
        r.leb().unwrap();
        let columns = r.columns_prefix().expect("the layout is followed");
        assert!(
            columns.iter().any(|(spec, _)| spec & DEFLATE_FLAG != 0),
            "a saved text this long has a deflated column: {columns:?}"
        );
        // Measured as read: the text's 11,200 bytes whatever the chunk's compression.
        let text_len = 28 * 400;
        assert!(saved.len() < text_len);
        assert!(check_automerge_chunks(&saved).unwrap() > text_len as u64);
        let mut change = doc.get_last_local_change().unwrap().clone();
        let compressed = change.bytes().to_vec();
        assert!(compressed.len() < change.raw_bytes().len());
        assert!(check_automerge_chunks(&compressed).unwrap() >= change.raw_bytes().len() as u64);
        assert_eq!(
            check_automerge_chunks(change.raw_bytes()).unwrap(),
            change.raw_bytes().len() as u64
        );
    }

    #[test]
    fn only_whole_document_and_change_chunks_pass() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "k", "v").unwrap();
        doc.commit();
        let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let two = [change.clone(), change.clone()].concat();
        assert_eq!(check_automerge_chunks(&two).unwrap(), two.len() as u64);
        assert_eq!(check_automerge_chunks(&[]).unwrap(), 0);
        // A chunk cut short (its rest would come in the next entry of a sync message).
        let cut = check_automerge_chunks(&change[..change.len() - 1]).unwrap_err();
        assert!(cut.to_string().contains("runs past the end"), "{cut}");
        // Bytes after the chunks that are not a chunk.
        let tail = check_automerge_chunks(&[change.clone(), vec![1, 2, 3]].concat()).unwrap_err();
        assert!(
            tail.to_string().contains("not an automerge chunk"),
            "{tail}"
        );
        // A bundle (type 3), whose columns this walk does not bound.
        let bundle = check_automerge_chunks(&test_chunk(3, &[0; 8])).unwrap_err();
        assert!(bundle.to_string().contains("chunk type 3"), "{bundle}");
    }

    #[test]
    fn a_document_chunk_whose_column_inflates_too_far_is_refused() {
        use std::io::Write;
        let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        deflated
            .write_all(&vec![0u8; MAX_INFLATED as usize + 1])
            .unwrap();
        let column = deflated.finish().unwrap();
        // No actors, no heads, one change column (deflated), no op columns.
        let mut body = vec![0, 0, 1];
        body.push((1 << 4 | DEFLATE_FLAG) as u8);
        push_leb(&mut body, column.len() as u64);
        body.push(0);
        body.extend(&column);
        let err = check_automerge_chunks(&test_chunk(DOCUMENT, &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("inflates to more than"), "{err}");
    }
}
