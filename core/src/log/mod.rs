//! The update log: what the device store and the relay storage both keep of a document.
//!
//! A document's log is its rows in the `updates` table (one per update, in log order by
//! `idx`), columns of its owner's `docs` row: the version vector as of a log index (`vv`,
//! `vv_upto`; the updates logged after it advance it, see [`version`]) and the log index
//! its checkpoint covers up to (`snapshot_upto`; the updates logged after it are the
//! tail), and its row in the `checkpoints` table (the CRDT's saved state covering every
//! update up to `snapshot_upto`). The pieces here are plain functions over a
//! `rusqlite::Connection` (a `Transaction` derefs to one), with that fixed shared schema
//! ([`schema`]) and nothing of either owner (a table of updates to keep when pruning, such
//! as the device's unsent ones, is passed in: [`Keep`]):
//!
//! - [`schema`]: the SQL of the shared tables and columns, for the owner's migrations;
//! - [`codec`]: the stored form of a version vector;
//! - [`rows`]: creating a document's row, appending, reading records back;
//! - [`load`]: a document as committed (checkpoint + tail, applied in one batch);
//! - [`version`]: the stored version vector, advanced by the updates logged after it;
//! - [`checkpoint`]: when to take one, storing it, pruning the updates it covers;
//! - [`contiguity`]: which updates of a batch are new, held, or past a gap;
//! - [`cached`]: running statements through the connection's prepared-statement cache.
//!
//! Words, one meaning each: the **saved state** is the CRDT's compact full state
//! (`CrdtDoc::save`); a **checkpoint** is a saved state stored in the `checkpoints` table
//! that loading starts from; a **catch-up snapshot** is a saved state the relay sends to a
//! client that lacks much (`protocol::CatchupSnapshot`).

pub mod cached;
pub mod checkpoint;
pub mod codec;
pub mod contiguity;
pub mod digest;
pub mod load;
pub mod rows;
pub mod schema;
pub mod version;

pub use cached::{Cached, STATEMENT_CACHE};
pub use checkpoint::{checkpoint_due, prune, write_checkpoint, Keep, LogSpan};
pub use codec::{decode_version, encode_version};
pub use contiguity::{admit, nothing_new, Admitted};
pub use load::{
    load, load_in, read_checkpoint, read_head, read_heads, read_version, LoadedLog, LogHead,
};
pub use rows::{
    append, create_doc, indexed, last_index, missing_from, record_from_row, stored_update,
};
pub use version::{debug_check, write_version};
