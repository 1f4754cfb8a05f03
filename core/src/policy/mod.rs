//! Conflict policies on top of the CRDTs: per document and path, last-writer-wins by
//! hybrid logical clock, an application merge function, or keep-all-values
//! (docs/conflicts.md).
//!
//! Pure parts only: clocks (`hlc`), the policy table (`table`), the stamped-write
//! registers kept inside documents and their resolution (`register`), merge functions
//! (`merge`) and their plain value type (`value`), and reading that data out of
//! documents (`automerge_meta`, `yrs_meta`). Reading applies them
//! ([`crate::read`]); editing writes them ([`crate::doc`]); the store persists the clock.

pub mod automerge_meta;
pub mod hlc;
pub mod merge;
pub mod register;
pub mod table;
pub mod value;
pub mod yrs_meta;

pub use hlc::{ClockState, Hlc, HlcClock, WallClock, DEFAULT_MAX_DRIFT_MS};
pub use merge::{builtin, ConcurrentValue, MergeFunction};
pub use table::{Pattern, Policy, PolicyTable};
pub use value::{MapEntry, PlainValue};
