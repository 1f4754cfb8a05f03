//! A document's stored version vector: its `docs` row holds it as of a log index (`vv`
//! as of `vv_upto`), and every update logged after that index advances its origin's entry
//! to the update's seq. So a commit writes only its update rows: rewriting the whole
//! vector at every commit cost O(origins), and a popular document has an origin per
//! device and per foreign client connection (1.5 MiB at 50,000 origins, a third of a
//! commit).
//!
//! The whole vector is written ([`write_version`]) when it changes other than by logging
//! updates: a checkpoint (which may hold updates it does not log), an origin renamed or
//! cut back. `vv_upto` is then the highest log index ever given ([`LAST_INDEX_EVER`]), so
//! every row after it is a later append, and it is never below the checkpoint's
//! `snapshot_upto`: the rows a read folds in are at most the checkpoint's tail.

use rusqlite::{params, Connection};

use super::cached::Cached;
use super::codec::encode_version;
use crate::error::Result;
use crate::ids::Origin;
use crate::vv::VersionVector;

/// The highest log index ever given, as an SQL expression (`updates.idx` is an
/// AUTOINCREMENT key: no later row gets an index at or below it).
pub const LAST_INDEX_EVER: &str =
    "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'updates'), 0)";

/// Writes `version` whole as the document's stored version vector.
pub fn write_version(conn: &Connection, doc_id: &str, version: &VersionVector) -> Result<()> {
    conn.execute_cached(
        &format!("UPDATE docs SET vv = ?1, vv_upto = {LAST_INDEX_EVER} WHERE id = ?2"),
        params![encode_version(version), doc_id],
    )?;
    Ok(())
}

/// Folds an update logged after the stored vector's index into it.
pub fn fold_logged(version: &mut VersionVector, origin: String, seq: u64) {
    let origin = Origin::from(origin);
    if seq > version.get(&origin) {
        version.set(origin, seq);
    }
}

/// Debug builds: panics unless the document's stored version vector is `version` (what
/// its owner holds in memory after a write). Every write path runs under the tests, so a
/// path that changes the vector without logging an update or writing it whole fails
/// there. Release builds check nothing.
pub fn debug_check(conn: &Connection, doc_id: &str, version: &VersionVector) {
    if cfg!(debug_assertions) {
        let stored = super::load::read_version(conn, doc_id)
            .expect("the stored version vector reads back")
            .expect("the document has a row");
        assert_eq!(
            &stored, version,
            "the stored version vector of {doc_id:?} differs from the one in memory"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DocKind;
    use crate::log::{append, create_doc, read_version, schema};
    use crate::update::UpdateRecord;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE docs (id TEXT PRIMARY KEY, {});{}",
            schema::DOC_LOG_COLUMNS,
            schema::UPDATES_TABLE
        ))
        .unwrap();
        schema::add_version_index(&conn).unwrap();
        conn
    }

    fn record(origin: &str, seq: u64) -> UpdateRecord {
        UpdateRecord {
            origin: Origin::from(origin),
            seq,
            data: vec![seq as u8],
        }
    }

    fn vv(entries: &[(&str, u64)]) -> VersionVector {
        entries
            .iter()
            .map(|(o, s)| (Origin::from(*o), *s))
            .collect()
    }

    #[test]
    fn appended_updates_advance_the_stored_vector_and_a_whole_write_replaces_it() {
        let conn = conn();
        create_doc(&conn, "d", DocKind::Yrs).unwrap();
        create_doc(&conn, "e", DocKind::Yrs).unwrap();
        assert_eq!(read_version(&conn, "d").unwrap(), Some(vv(&[])));
        for r in [record("a", 1), record("b", 1), record("a", 2)] {
            append(&conn, "d", &r).unwrap();
        }
        append(&conn, "e", &record("c", 1)).unwrap();
        assert_eq!(
            read_version(&conn, "d").unwrap(),
            Some(vv(&[("a", 2), ("b", 1)]))
        );
        assert_eq!(read_version(&conn, "e").unwrap(), Some(vv(&[("c", 1)])));

        // Written whole below what is logged: the rows before the whole write no longer
        // count (a:2 is still a row), only those after it.
        write_version(&conn, "d", &vv(&[("a", 1), ("b", 1), ("z", 7)])).unwrap();
        assert_eq!(
            read_version(&conn, "d").unwrap(),
            Some(vv(&[("a", 1), ("b", 1), ("z", 7)]))
        );
        conn.execute(
            "DELETE FROM updates WHERE doc_id = 'd' AND origin = 'a' AND seq = 2",
            [],
        )
        .unwrap();
        append(&conn, "d", &record("a", 2)).unwrap();
        append(&conn, "d", &record("z", 8)).unwrap();
        assert_eq!(
            read_version(&conn, "d").unwrap(),
            Some(vv(&[("a", 2), ("b", 1), ("z", 8)]))
        );
        assert_eq!(read_version(&conn, "nope").unwrap(), None);
    }
}
