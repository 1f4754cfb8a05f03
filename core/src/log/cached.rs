//! Statements run through the connection's prepared-statement cache.
//!
//! A commit, an intake batch and a load each run the same handful of statements, thousands
//! of times over a store's life; `Connection::execute` and `query_row` parse each one anew
//! (about 2% of a batched trace replay went to SQLite's parser). These two calls take the
//! parsed statement from rusqlite's cache instead ([`STATEMENT_CACHE`] entries per
//! connection).

use rusqlite::{Connection, Params, Row};

/// Prepared statements each connection keeps (the device store and the relay storage each
/// run fewer distinct statements than this on their hot paths).
pub const STATEMENT_CACHE: usize = 64;

/// `execute` and `query_row` through the statement cache (a `Transaction` derefs to a
/// `Connection`, so both work inside one).
pub trait Cached {
    /// [`Connection::execute`], with the statement from the cache.
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    /// [`Connection::query_row`], with the statement from the cache.
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_statements_run_and_are_reused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        for k in 0..3 {
            let n = conn
                .execute_cached("INSERT INTO t (k, v) VALUES (?1, ?2)", (k, "x"))
                .unwrap();
            assert_eq!(n, 1);
        }
        let count: i64 = conn
            .query_row_cached("SELECT COUNT(*) FROM t WHERE v = ?1", ["x"], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
        // A cached statement sees the schema as it is now (SQLite re-prepares it).
        conn.execute_batch("ALTER TABLE t ADD COLUMN w TEXT")
            .unwrap();
        let n = conn
            .execute_cached("INSERT INTO t (k, v) VALUES (?1, ?2)", (9, "x"))
            .unwrap();
        assert_eq!(n, 1);
        let missing = conn.query_row_cached("SELECT v FROM t WHERE k = ?1", [42], |r| {
            r.get::<_, String>(0)
        });
        assert!(matches!(missing, Err(rusqlite::Error::QueryReturnedNoRows)));
    }
}
