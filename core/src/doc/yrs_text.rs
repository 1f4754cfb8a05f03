//! Yrs text positions. Yrs counts UTF-16 code units (`OffsetKind::Utf16`, as Yjs); a store
//! may count Unicode scalar values instead ([`TextUnit`]), converted here. A UTF-16
//! position between the two halves of a surrogate pair would split a character, so it is
//! refused. Which texts can hold such characters is remembered, so the conversion and the
//! check cost nothing in the common case (no character outside the BMP).

use std::collections::HashMap;

use yrs::types::GetString;
use yrs::{TextRef, TransactionMut};

use crate::error::Result;
use crate::path::Path;
use crate::text_unit::TextUnit;

/// Which texts hold characters outside the Basic Multilingual Plane (two UTF-16 units each),
/// as far as this copy of the document knows. A text edit checks its positions against the
/// text's characters only when the text may hold one, so the common case costs nothing; the
/// knowledge is dropped whenever updates from elsewhere are applied.
#[derive(Debug, Default, Clone)]
pub struct AstralTexts {
    known: HashMap<yrs::BranchID, bool>,
    /// What the positions given to edits count.
    unit: TextUnit,
}

impl AstralTexts {
    /// Nothing known yet; edits give positions in `unit`.
    pub(super) fn new(unit: TextUnit) -> AstralTexts {
        AstralTexts {
            known: HashMap::new(),
            unit,
        }
    }

    /// What the positions given to edits count.
    pub(super) fn unit(&self) -> TextUnit {
        self.unit
    }

    /// Whether `text` may hold a character outside the BMP (scans it once, then remembers).
    pub(super) fn may_hold(&mut self, txn: &TransactionMut<'_>, text: &TextRef) -> bool {
        let branch: &yrs::branch::Branch = text.as_ref();
        *self
            .known
            .entry(branch.id())
            .or_insert_with(|| text.get_string(txn).chars().any(|c| c.len_utf16() == 2))
    }

    /// `text` now holds a character outside the BMP.
    pub(super) fn note(&mut self, text: &TextRef) {
        let branch: &yrs::branch::Branch = text.as_ref();
        self.known.insert(branch.id(), true);
    }

    /// Updates from elsewhere were applied: nothing is known any more.
    pub(super) fn forget(&mut self) {
        self.known.clear();
    }
}

/// Refuses a UTF-16 position that falls between the two halves of a surrogate pair (inside
/// one character): Yrs would split the character into two broken halves.
pub(super) fn check_utf16_boundaries(path: &Path, text: &str, positions: &[usize]) -> Result<()> {
    let mut unit = 0usize;
    for c in text.chars() {
        let width = c.len_utf16();
        if width == 2 && positions.contains(&(unit + 1)) {
            return Err(path.error(format!(
                "position {} is inside the character {c:?} (UTF-16 units {unit}..{}): \
                 use {unit} or {}",
                unit + 1,
                unit + 2,
                unit + 2
            )));
        }
        unit += width;
        if positions.iter().all(|p| *p < unit) {
            break;
        }
    }
    Ok(())
}

/// Converts a range in Unicode scalar values of `text` to UTF-16 units; an error when it
/// goes past the end.
pub(super) fn scalar_range_to_utf16(
    path: &Path,
    text: &str,
    index: usize,
    delete: usize,
) -> Result<(usize, usize)> {
    let mut start = None;
    let mut unit = 0usize;
    for (i, c) in text.chars().enumerate() {
        if i == index {
            start = Some(unit);
        }
        if i == index + delete {
            let from = start.expect("index <= index + delete");
            return Ok((from, unit - from));
        }
        unit += c.len_utf16();
    }
    let len = text.chars().count();
    if index + delete == len {
        let from = start.unwrap_or(unit);
        return Ok((from, unit - from));
    }
    Err(path.error(format!(
        "range {index}..{} is outside the text of length {len}",
        index + delete
    )))
}
