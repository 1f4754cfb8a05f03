//! SQLite on OPFS: installs the `opfs-sahpool` VFS (sqlite-wasm-vfs) as SQLite's default, so
//! a store opened by name lives in the origin private file system. Only a dedicated Worker
//! has OPFS sync access handles, and only one Worker of an origin holds a pool at a time:
//! a second tab's Worker gets an error here (the page then falls back to memory and says so).

use wasm_bindgen::prelude::*;

/// Installs the OPFS pool in `directory` (one directory per app) as SQLite's default VFS.
/// Fails where OPFS is missing (no Worker, an old browser) or another tab holds the pool.
#[wasm_bindgen(js_name = installOpfs)]
pub async fn install_opfs(directory: String) -> Result<(), JsError> {
    let cfg = sqlite_wasm_vfs::sahpool::OpfsSAHPoolCfgBuilder::new()
        .directory(&directory)
        .build();
    sqlite_wasm_vfs::sahpool::install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, true)
        .await
        .map(|_| ())
        .map_err(|e| JsError::new(&format!("OPFS unavailable: {e}")))
}
