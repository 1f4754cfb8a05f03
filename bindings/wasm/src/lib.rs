//! Concord in the browser (wasm-bindgen): the engine compiled to WASM with SQLite on OPFS.
//!
//! Run it in a dedicated module Worker (OPFS sync access handles exist only there): call
//! [`opfs::install_opfs`] once, then open a [`store::Store`] by name. The page talks to the
//! Worker (`js/worker.js`, `js/concord.js` in the npm package). Sync is the browser
//! WebSocket as a thin shell around core's sans-IO `ClientDriver` (`sync_shell.rs`).
//!
//! The API has the shape of the uniffi binding (issue 9): open a store, documents of both
//! kinds, edits by path, transactions, subscribe, status, `startSync(urls, token)`, conflict
//! policies with merge functions written in JS, `getAll` and `resolve`.
#![cfg(target_arch = "wasm32")]

mod convert;
mod merge;
pub mod opfs;
pub mod store;
mod sync_shell;
mod txn;
