//! CRDT documents: one type over the two libraries (Automerge and Yrs).
//!
//! A [`CrdtDoc`] is the in-memory state of one document. Local edits run inside
//! [`CrdtDoc::edit`], which hands out a [`DocTxn`] and returns the encoded update of the
//! edit (one Automerge change, or one Yrs v1 update). Remote updates go through
//! [`CrdtDoc::apply_update`]; [`validate_update`] checks an update decodes without applying it.
//! What conflict policies add (the policy table, stamped writes, every concurrent value)
//! is in `policies.rs`.

mod automerge_create;
mod automerge_doc;
mod automerge_inflate;
mod automerge_policy;
mod creation_id;
mod policies;
mod since;
mod yrs_create;
mod yrs_depth;
mod yrs_diff;
mod yrs_doc;
mod yrs_edit;
mod yrs_local;
mod yrs_nesting;
mod yrs_policy;
mod yrs_roots;
mod yrs_text;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::DocKind;
use crate::policy::register::Payload;
use crate::policy::{ClockState, Hlc, HlcClock, WallClock, DEFAULT_MAX_DRIFT_MS};
use crate::read::{Reader, DEFAULT_READER};
use crate::text_unit::TextUnit;

/// Paths live in [`crate::path`] (the reader uses them too); kept reachable here.
pub use crate::path;
pub use crate::path::{Path, Segment};
pub use automerge_inflate::{check_automerge_chunks, MAX_INFLATED};
pub use yrs_depth::MAX_VALUE_DEPTH;
pub use yrs_doc::decode_yrs_update;
pub use yrs_nesting::MAX_TYPE_DEPTH;

/// The in-memory state of one document.
pub enum CrdtDoc {
    Automerge(Box<automerge::AutoCommit>),
    /// The document, and which of its texts are known to hold characters outside the Basic
    /// Multilingual Plane (see [`yrs_text::AstralTexts`]).
    Yrs(yrs::Doc, yrs_text::AstralTexts),
}

impl CrdtDoc {
    /// An empty document of the given kind; text positions count Unicode scalar values.
    pub fn new(kind: DocKind) -> CrdtDoc {
        CrdtDoc::new_in(kind, TextUnit::default())
    }

    /// An empty document whose text positions and lengths count `unit`.
    pub fn new_in(kind: DocKind, unit: TextUnit) -> CrdtDoc {
        match kind {
            DocKind::Automerge => CrdtDoc::Automerge(Box::new(
                automerge::AutoCommit::new_with_encoding(automerge_doc::encoding(unit)),
            )),
            DocKind::Yrs => CrdtDoc::Yrs(yrs_doc::new_doc(), yrs_text::AstralTexts::new(unit)),
        }
    }

    /// Loads a document from a saved state (as written by [`CrdtDoc::save`]).
    pub fn load(kind: DocKind, saved: &[u8]) -> Result<CrdtDoc> {
        CrdtDoc::load_in(kind, saved, TextUnit::default())
    }

    /// Loads a document from a saved state, its text positions counting `unit`.
    pub fn load_in(kind: DocKind, saved: &[u8], unit: TextUnit) -> Result<CrdtDoc> {
        CrdtDoc::load_checkpoint(kind, saved, None, unit, false)
    }

    /// Loads a checkpoint: a saved state and the root types [`CrdtDoc::root_types`]
    /// recorded with it (`None` when none were: the types then come from the content).
    /// `checked`: these bytes were walked for the nesting depth of their values and found
    /// clean ([`CrdtDoc::saved_state_walks_clean`]) when they were stored, as
    /// `log::write_checkpoint` does, so a Yrs state is not walked again (see
    /// `log::schema::add_checkpoint_checked`); false for anything else.
    pub fn load_checkpoint(
        kind: DocKind,
        saved: &[u8],
        roots: Option<&str>,
        unit: TextUnit,
        checked: bool,
    ) -> Result<CrdtDoc> {
        match kind {
            DocKind::Automerge => Ok(CrdtDoc::Automerge(Box::new(automerge_doc::load(
                saved, unit,
            )?))),
            DocKind::Yrs => {
                let mut doc = CrdtDoc::new_in(kind, unit);
                if let CrdtDoc::Yrs(inner, _) = &mut doc {
                    if let Some(roots) = roots {
                        yrs_roots::declare_roots(inner, roots);
                    }
                    if checked {
                        yrs_doc::apply_checked_update(inner, saved)?;
                        return Ok(doc);
                    }
                }
                doc.merge_saved_state(saved)?;
                Ok(doc)
            }
        }
    }

    /// True when a saved state of `kind` may be loaded with `checked` set (see
    /// [`CrdtDoc::load_checkpoint`]): a Yrs state that the value walk reads whole and
    /// finds nothing in to refuse; an Automerge state is not walked.
    pub fn saved_state_walks_clean(kind: DocKind, saved: &[u8]) -> bool {
        match kind {
            DocKind::Automerge => true,
            DocKind::Yrs => yrs_depth::walks_clean(saved),
        }
    }

    /// What a checkpoint records next to the saved state, for [`CrdtDoc::load_checkpoint`]:
    /// the types of a Yrs document's roots (its saved state names them but does not say
    /// what each is); `None` for Automerge, whose saved state says.
    pub fn root_types(&self) -> Option<String> {
        match self {
            CrdtDoc::Automerge(_) => None,
            CrdtDoc::Yrs(doc, _) => yrs_roots::root_types(doc),
        }
    }

    /// What this document's text positions and lengths count.
    pub fn text_unit(&self) -> TextUnit {
        match self {
            CrdtDoc::Automerge(doc) => automerge_doc::unit_of(doc),
            CrdtDoc::Yrs(_, astral) => astral.unit(),
        }
    }

    /// The length of the text at `path`, in the document's [`TextUnit`]; an error when
    /// the value there is not text.
    pub fn text_len(&self, reader: &Reader, path: &str) -> Result<usize> {
        let text = self.text_at(reader, path)?;
        Ok(self.text_unit().len_of(&text))
    }

    /// The part of the text at `path` from `start` to `end` (positions in the document's
    /// [`TextUnit`]); an error when the range is outside the text or cuts a character.
    pub fn text_slice(
        &self,
        reader: &Reader,
        path: &str,
        start: usize,
        end: usize,
    ) -> Result<String> {
        let text = self.text_at(reader, path)?;
        let unit = self.text_unit();
        unit.slice(&text, start, end)
            .map(str::to_string)
            .ok_or_else(|| {
                Path::parse(path)
                    .map(|p| {
                        p.error(format!(
                            "range {start}..{end} is outside the text of length {} or cuts a \
                             character ({} units)",
                            unit.len_of(&text),
                            unit.as_str()
                        ))
                    })
                    .unwrap_or_else(|e| e)
            })
    }

    fn text_at(&self, reader: &Reader, path: &str) -> Result<String> {
        match self.get_with(reader, path)? {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(Path::parse(path)?.error("the value there is not text")),
            None => Err(Path::parse(path)?.error("nothing there")),
        }
    }

    pub fn kind(&self) -> DocKind {
        match self {
            CrdtDoc::Automerge(_) => DocKind::Automerge,
            CrdtDoc::Yrs(..) => DocKind::Yrs,
        }
    }

    /// Applies one update (a single Automerge change, or a Yrs v1 update). Idempotent.
    pub fn apply_update(&mut self, update: &[u8]) -> Result<()> {
        match self {
            CrdtDoc::Automerge(doc) => automerge_doc::apply_changes(doc, &[update]),
            CrdtDoc::Yrs(doc, astral) => {
                astral.forget();
                yrs_doc::apply_update(doc, update)
            }
        }
    }

    /// Applies several updates at once (much faster than one by one for Automerge, whose
    /// cost per apply call grows with the document). All decode first; if any does not,
    /// nothing is applied.
    pub fn apply_updates(&mut self, updates: &[&[u8]]) -> Result<()> {
        match self {
            CrdtDoc::Automerge(doc) => automerge_doc::apply_changes(doc, updates),
            CrdtDoc::Yrs(doc, astral) => {
                astral.forget();
                yrs_doc::apply_updates(doc, updates)
            }
        }
    }

    /// [`CrdtDoc::apply_updates`] for updates received from a relay: a Yrs update that
    /// nests shared types deeper than 128 levels is refused first (nothing is applied).
    pub fn apply_peer_updates(&mut self, updates: &[&[u8]]) -> Result<()> {
        match self {
            CrdtDoc::Automerge(doc) => automerge_doc::apply_changes(doc, updates),
            CrdtDoc::Yrs(doc, astral) => {
                astral.forget();
                yrs_doc::apply_peer_updates(doc, updates)
            }
        }
    }

    /// Applies one update received from a peer and proves it fits: it decodes, its causal
    /// dependencies are all present (nothing is left pending), and (Yrs) it does not use a
    /// type as another kind (map entries in a text or array, items in a map). On error the
    /// document may hold part of the update: the caller must discard this copy.
    pub fn integrate(&mut self, update: &[u8]) -> Result<()> {
        self.integrate_all(&[update])
    }

    /// [`CrdtDoc::integrate`] for several updates at once, in order (one Automerge apply
    /// for all of them). On error the document may hold some of them.
    pub fn integrate_all(&mut self, updates: &[&[u8]]) -> Result<()> {
        let kind = self.kind();
        match self {
            CrdtDoc::Automerge(doc) => automerge_doc::apply_changes(doc, updates)?,
            CrdtDoc::Yrs(doc, astral) => {
                astral.forget();
                for update in updates {
                    yrs_doc::integrate(doc, update)?
                }
            }
        }
        if self.has_pending() {
            return Err(Error::MissingDependencies {
                kind,
                detail: match self {
                    CrdtDoc::Automerge(doc) => format!(
                        "it depends on changes this document does not have: {}",
                        doc.get_missing_deps(&[])
                            .iter()
                            .map(|h| h.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    CrdtDoc::Yrs(..) => {
                        "it refers to items this document does not have".to_string()
                    }
                },
            });
        }
        Ok(())
    }

    /// Merges a saved state ([`CrdtDoc::save`]) of the same document into this one.
    /// Idempotent.
    pub fn merge_saved_state(&mut self, saved: &[u8]) -> Result<()> {
        match self {
            CrdtDoc::Automerge(doc) => automerge_doc::merge_saved_state(doc, saved),
            CrdtDoc::Yrs(doc, astral) => {
                astral.forget();
                yrs_doc::apply_update(doc, saved)
            }
        }
    }

    /// The full state, compact, loadable with [`CrdtDoc::load`].
    pub fn save(&mut self) -> Vec<u8> {
        match self {
            CrdtDoc::Automerge(doc) => doc.save(),
            CrdtDoc::Yrs(doc, _) => yrs_doc::save(doc),
        }
    }

    /// The whole document as one update, which any replica integrates (what it already
    /// holds is skipped): for Automerge every change, for Yrs the full state. Sent to
    /// restore a relay that lost part of this device's history.
    pub fn whole_update(&mut self) -> Vec<u8> {
        match self {
            CrdtDoc::Automerge(doc) => doc.save_after(&[]),
            CrdtDoc::Yrs(doc, _) => yrs_doc::save(doc),
        }
    }

    /// True when the document holds updates it cannot integrate yet (missing causal
    /// dependencies). A saved state taken now would not contain them.
    pub fn has_pending(&mut self) -> bool {
        match self {
            CrdtDoc::Automerge(doc) => !doc.get_missing_deps(&[]).is_empty(),
            CrdtDoc::Yrs(doc, _) => yrs_doc::has_pending(doc),
        }
    }

    /// Runs a local edit. Returns the closure's result and the encoded update, or `None`
    /// when the edit changed nothing. If the closure fails the document may hold part of
    /// the edit: callers must discard this in-memory copy and reload it from storage.
    pub fn edit<R>(
        &mut self,
        f: impl FnOnce(&mut DocTxn<'_>) -> Result<R>,
    ) -> Result<(R, Option<Vec<u8>>)> {
        self.edit_with(&DEFAULT_READER, f)
    }

    /// [`CrdtDoc::edit`], with reads inside the edit ([`DocTxn::get`]) going through
    /// `reader`. Writes under a policy are stamped by a clock of their own (origin
    /// `local`, the system time); a store passes its device's clock instead
    /// ([`CrdtDoc::edit_stamped`]).
    pub fn edit_with<R>(
        &mut self,
        reader: &Reader,
        f: impl FnOnce(&mut DocTxn<'_>) -> Result<R>,
    ) -> Result<(R, Option<Vec<u8>>)> {
        let mut clock = HlcClock::new(
            ClockState::default(),
            WallClock::system().now_ms(),
            DEFAULT_MAX_DRIFT_MS,
            "local".into(),
        );
        self.edit_stamped(reader, &mut clock, f)
    }

    /// [`CrdtDoc::edit_with`], stamping writes under last-writer-wins, merge or keep-all
    /// policies with `clock` (which observes every stamp it sees; persist it afterwards).
    pub fn edit_stamped<R>(
        &mut self,
        reader: &Reader,
        clock: &mut HlcClock,
        f: impl FnOnce(&mut DocTxn<'_>) -> Result<R>,
    ) -> Result<(R, Option<Vec<u8>>)> {
        match self {
            CrdtDoc::Automerge(doc) => {
                let heads_before = doc.get_heads();
                let mut txn = DocTxn {
                    inner: TxnInner::Automerge(doc),
                    reader,
                    clock,
                    last_stamp: None,
                    last_splice: None,
                    spliced_path: None,
                };
                let out = f(&mut txn);
                let TxnInner::Automerge(doc) = txn.inner else {
                    unreachable!()
                };
                match out {
                    Ok(r) => Ok((r, automerge_doc::commit(doc, &heads_before))),
                    Err(e) => {
                        doc.rollback();
                        Err(e)
                    }
                }
            }
            CrdtDoc::Yrs(doc, astral) => {
                let mut txn = DocTxn {
                    inner: TxnInner::Yrs(yrs_local::YrsEdit::new(doc, astral)),
                    reader,
                    clock,
                    last_stamp: None,
                    last_splice: None,
                    spliced_path: None,
                };
                let r = f(&mut txn)?;
                let TxnInner::Yrs(edit) = txn.inner else {
                    unreachable!()
                };
                Ok((r, edit.finish()))
            }
        }
    }

    /// The value at `path` (the whole document for the empty path), as JSON, showing the
    /// CRDT's own winner where a key holds concurrent values.
    pub fn get(&self, path: &str) -> Result<Option<Value>> {
        self.get_with(&DEFAULT_READER, path)
    }

    /// The value at `path` as `reader` shows it.
    pub fn get_with(&self, reader: &Reader, path: &str) -> Result<Option<Value>> {
        let path = Path::parse(path)?;
        match self {
            CrdtDoc::Automerge(doc) => reader.automerge(doc.as_ref(), &path),
            CrdtDoc::Yrs(doc, _) => reader.yrs(&yrs_doc::read_txn(doc), &path),
        }
    }

    /// The whole document as JSON (`null` when it does not read: see [`CrdtDoc::get`]).
    pub fn to_json(&self) -> Value {
        self.get("").ok().flatten().unwrap_or(Value::Null)
    }
}

/// Checks that `update` decodes as an update of the given kind, without applying it.
pub fn validate_update(kind: DocKind, update: &[u8]) -> Result<()> {
    match kind {
        DocKind::Automerge => automerge_doc::decode_changes(update).map(|_| ()),
        DocKind::Yrs => yrs_doc::decode_update(update).map(|_| ()),
    }
}

/// A local edit in progress. Paths are `/`-separated (see [`Path`]).
pub struct DocTxn<'a> {
    inner: TxnInner<'a>,
    reader: &'a Reader,
    clock: &'a mut HlcClock,
    last_stamp: Option<Hlc>,
    /// Automerge: the text the last splice worked on (see `automerge_doc::LastSplice`),
    /// valid for `spliced_path` only.
    last_splice: Option<automerge_doc::LastSplice>,
    /// The path the last splice named, parsed: a run of splices (typing) names one text
    /// thousands of times, and parsing it each time allocated more than the splice itself.
    spliced_path: Option<Path>,
}

enum TxnInner<'a> {
    Automerge(&'a mut automerge::AutoCommit),
    Yrs(yrs_local::YrsEdit<'a>),
}

impl<'a> DocTxn<'a> {
    /// The document, for any write but a text splice. A run of splices' remembered text
    /// ([`automerge_doc::LastSplice`]) is forgotten: the write may replace, delete or
    /// shorten it, and may commit Automerge's open transaction (creating a shared
    /// container does), after which its operation count no longer tells.
    fn inner_for_write(&mut self) -> &mut TxnInner<'a> {
        self.last_splice = None;
        &mut self.inner
    }
}

impl DocTxn<'_> {
    /// Sets the value at `path` (a map key, or a list index to replace). JSON objects and
    /// arrays become nested maps and lists.
    pub fn put(&mut self, path: &str, value: impl Into<Value>) -> Result<()> {
        let path = Path::parse(path)?;
        let value = value.into();
        match self.inner_for_write() {
            TxnInner::Automerge(doc) => automerge_doc::put(doc, &path, &value)?,
            TxnInner::Yrs(edit) => edit.step(|txn, _| yrs_edit::put(txn, &path, &value))?,
        }
        self.stamp_if_governed(&path, &Payload::of(&value))
    }

    /// Inserts `value` into the list at `path`'s parent, before index `path`'s last segment.
    pub fn insert(&mut self, path: &str, value: impl Into<Value>) -> Result<()> {
        let path = Path::parse(path)?;
        let value = value.into();
        match self.inner_for_write() {
            TxnInner::Automerge(doc) => automerge_doc::insert(doc, &path, &value),
            TxnInner::Yrs(edit) => edit.step(|txn, _| yrs_edit::insert(txn, &path, &value)),
        }
    }

    /// Appends `value` to the list at `path`, creating the list if absent.
    pub fn push(&mut self, path: &str, value: impl Into<Value>) -> Result<()> {
        let path = Path::parse(path)?;
        let value = value.into();
        match self.inner_for_write() {
            TxnInner::Automerge(doc) => automerge_doc::push(doc, &path, &value),
            TxnInner::Yrs(edit) => edit.step(|txn, _| yrs_edit::push(txn, &path, &value)),
        }
    }

    /// Removes a map key or a list element.
    pub fn delete(&mut self, path: &str) -> Result<()> {
        let parsed = Path::parse(path)?;
        let removed = match self.inner_for_write() {
            TxnInner::Automerge(doc) => automerge_doc::delete(doc, &parsed),
            TxnInner::Yrs(edit) => edit.step(|txn, _| yrs_edit::delete(txn, &parsed)),
        };
        if let Err(e) = removed {
            // Under a conflict policy a read shows the policy's value, which may stand
            // while the plain key is gone (a concurrent delete that lost to a later
            // write): deleting what a read shows stamps the deletion.
            if !matches!(e, Error::InvalidPath { .. }) || self.get(path)?.is_none() {
                return Err(e);
            }
            // Only this delete's own stamp counts, not one of an earlier write.
            let earlier = self.last_stamp.take();
            if let Err(stamping) = self.stamp_if_governed(&parsed, &Payload::Deleted) {
                self.last_stamp = earlier;
                return Err(stamping);
            }
            return match self.last_stamp {
                Some(_) => Ok(()),
                None => {
                    self.last_stamp = earlier;
                    Err(e)
                }
            };
        }
        self.stamp_if_governed(&parsed, &Payload::Deleted)
    }

    /// Inserts `text` into the collaborative text at `path` (created if absent).
    /// Positions count the document's [`TextUnit`] (Unicode scalar values by default, or
    /// UTF-16 code units), the same for both kinds.
    pub fn insert_text(&mut self, path: &str, index: usize, text: &str) -> Result<()> {
        self.splice_text(path, index, 0, text)
    }

    /// Deletes `len` characters of the text at `path` from `index`.
    pub fn delete_text(&mut self, path: &str, index: usize, len: usize) -> Result<()> {
        self.splice_text(path, index, len, "")
    }

    /// Deletes `delete` characters at `index` then inserts `text` there.
    pub fn splice_text(
        &mut self,
        path: &str,
        index: usize,
        delete: usize,
        text: &str,
    ) -> Result<()> {
        let path = match self.spliced_path.take() {
            Some(same) if same.raw == path => same,
            _ => {
                // Another text: what the last splice remembered is not about it.
                self.last_splice = None;
                Path::parse(path)?
            }
        };
        let out = match &mut self.inner {
            TxnInner::Automerge(doc) => {
                automerge_doc::splice_text(doc, &mut self.last_splice, &path, index, delete, text)
            }
            TxnInner::Yrs(edit) => edit
                .step(|txn, astral| yrs_edit::splice_text(txn, astral, &path, index, delete, text)),
        };
        self.spliced_path = Some(path);
        out
    }

    /// Adds `by` to the counter at `path` (created at 0 if absent). Concurrent increments
    /// add up. Automerge documents only.
    pub fn increment(&mut self, path: &str, by: i64) -> Result<()> {
        let path = Path::parse(path)?;
        match self.inner_for_write() {
            TxnInner::Automerge(doc) => automerge_doc::increment(doc, &path, by),
            TxnInner::Yrs(..) => Err(Error::InvalidEdit(
                "counters exist only in automerge documents".into(),
            )),
        }
    }

    /// Reads inside the edit, seeing its own writes.
    pub fn get(&self, path: &str) -> Result<Option<Value>> {
        let path = Path::parse(path)?;
        match &self.inner {
            TxnInner::Automerge(doc) => self.reader.automerge(*doc, &path),
            TxnInner::Yrs(edit) => self.reader.yrs(&edit.read(), &path),
        }
    }
}
