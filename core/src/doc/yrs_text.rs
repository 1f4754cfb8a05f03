//! Yrs text positions: UTF-16 code units (as Yjs). A position between the two halves of a
//! surrogate pair would split a character, so it is refused; which texts can hold such
//! characters is remembered so the check costs nothing in the common case.

use std::collections::HashMap;

use yrs::types::GetString;
use yrs::{TextRef, TransactionMut};

use crate::error::Result;
use crate::path::Path;

/// Which texts hold characters outside the Basic Multilingual Plane (two UTF-16 units each),
/// as far as this copy of the document knows. A text edit checks its positions against the
/// text's characters only when the text may hold one, so the common case costs nothing; the
/// knowledge is dropped whenever updates from elsewhere are applied.
#[derive(Debug, Default, Clone)]
pub struct AstralTexts {
    known: HashMap<yrs::BranchID, bool>,
}

impl AstralTexts {
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
