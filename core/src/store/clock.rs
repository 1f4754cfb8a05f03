//! The device's hybrid logical clock, persisted in the `hlc` table (one row) and moved in
//! the same transaction as the edit that stamps with it or the remote updates it saw.

use crate::log::Cached;
use rusqlite::{params, Connection, OptionalExtension};

use super::StoreOptions;
use crate::doc::CrdtDoc;
use crate::error::Result;
use crate::ids::Origin;
use crate::policy::{ClockState, HlcClock};

/// The persisted position (zero in a store that never stamped).
pub(super) fn read(conn: &Connection) -> Result<ClockState> {
    Ok(conn
        .query_row_cached("SELECT ms, counter FROM hlc WHERE id = 0", [], |r| {
            Ok(ClockState {
                ms: r.get::<_, i64>(0)? as u64,
                counter: r.get::<_, i64>(1)? as u32,
            })
        })
        .optional()?
        .unwrap_or_default())
}

fn write(conn: &Connection, state: ClockState) -> Result<()> {
    conn.execute_cached(
        "INSERT INTO hlc (id, ms, counter) VALUES (0, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET ms = excluded.ms, counter = excluded.counter",
        params![state.ms as i64, i64::from(state.counter)],
    )?;
    Ok(())
}

/// The device's clock for one write transaction.
pub(super) fn load(conn: &Connection, device: &Origin, options: &StoreOptions) -> Result<HlcClock> {
    Ok(HlcClock::new(
        read(conn)?,
        options.wall_clock.now_ms(),
        options.max_drift_ms,
        device.to_string(),
    ))
}

/// Persists the clock if it moved.
pub(super) fn save(conn: &Connection, clock: &HlcClock) -> Result<()> {
    if clock.changed() {
        write(conn, clock.state())?;
    }
    Ok(())
}

/// Advances the persisted clock past the newest stamp in `doc` (clamped to the drift
/// bound), after remote updates were applied to it.
pub(super) fn observe_doc(
    conn: &Connection,
    doc: &CrdtDoc,
    device: &Origin,
    options: &StoreOptions,
) -> Result<()> {
    let Some(newest) = doc.newest_stamp() else {
        return Ok(());
    };
    let mut clock = load(conn, device, options)?;
    clock.observe(newest);
    save(conn, &clock)
}
