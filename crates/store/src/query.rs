//! One way to run a statement on either back end, on the pool or in a transaction: the SQL
//! text, its parameters as [`Param`]s, and a function reading a row through [`StoreRow`].
//! Statements then need no bind chain and no error mapping of their own.

use std::borrow::Cow;

use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::{Pool, Store, StoreError, StoreRow};

/// A value bound to a `$n` parameter.
pub(crate) enum Param<'a> {
    Text(Cow<'a, str>),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

impl From<mailzone_records::RrType> for Param<'_> {
    fn from(value: mailzone_records::RrType) -> Self {
        Param::Text(Cow::Borrowed(value.as_str()))
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Param::Text(Cow::Borrowed(value))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(value: &'a String) -> Self {
        Param::Text(Cow::Borrowed(value))
    }
}

impl From<String> for Param<'_> {
    fn from(value: String) -> Self {
        Param::Text(Cow::Owned(value))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Param::OptText(value)
    }
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(value: Option<i64>) -> Self {
        Param::OptInt(value)
    }
}

impl From<bool> for Param<'_> {
    fn from(value: bool) -> Self {
        Param::Bool(value)
    }
}

/// How a statement written at run time marks its parameters. PostgreSQL wants `$n`;
/// SQLite takes plain `?` in order, which binds in constant time where each `$n` costs a
/// walk of the statement's parameter list (`sqlite3_bind_parameter_name`), so that the
/// binding of a long `IN (…)` list would grow with the square of its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marks {
    Numbered,
    InOrder,
}

impl Marks {
    /// The mark of the `n`th parameter (from 1).
    pub(crate) fn mark(self, n: usize) -> String {
        match self {
            Marks::Numbered => format!("${n}"),
            Marks::InOrder => "?".to_string(),
        }
    }

    /// `$2, $3, $4` (or `?, ?, ?`) for three parameters from the second: an `IN (…)` list.
    pub(crate) fn list(self, first: usize, count: usize) -> String {
        (first..first + count)
            .map(|n| self.mark(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A `SELECT` of the rows of a JSON array of arrays bound as the only parameter
    /// ([`rows_as_json`]), one column per field: a statement over it has one text whatever the
    /// number of rows, so the database parses and plans it once per connection, where a
    /// multi-row `VALUES` is a new text (a new parse) for each count of rows. It ends with
    /// `WHERE true`, which SQLite needs before an upsert's `ON CONFLICT` to read it as the
    /// upsert's and not as part of a join.
    pub(crate) fn json_rows(self, fields: &[JsonField]) -> String {
        let columns = |row: &str| {
            fields
                .iter()
                .enumerate()
                .map(|(i, field)| match (self, field) {
                    (Marks::Numbered, JsonField::Integer) => format!("({row} ->> {i})::bigint"),
                    _ => format!("{row} ->> {i}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Marks::InOrder => format!("SELECT {} FROM json_each(?) WHERE true", columns("value")),
            Marks::Numbered => format!(
                "SELECT {} FROM json_array_elements($1::json) AS r WHERE true",
                columns("r")
            ),
        }
    }
}

/// The type of a field of the rows [`Marks::json_rows`] selects: `->>` gives SQLite the
/// JSON number as an integer, PostgreSQL text that is cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonField {
    Text,
    Integer,
}

/// The parameter of a [`Marks::json_rows`] statement: the rows as a JSON array of arrays
/// (each row a tuple of strings, integers and `None`s, in the order of the fields).
pub(crate) fn rows_as_json<R: serde::Serialize>(rows: &[R]) -> Param<'static> {
    let json = serde_json::to_string(rows).expect("tuples of strings and integers serialize");
    Param::from(json)
}

/// Separates the fields of one row in a [`Store::rows_joined`] text (ASCII's unit
/// separator), and the rows (its record separator): neither occurs in a name or in
/// presentation-format RDATA, which escapes every control character (RFC 1035 §5.1).
pub(crate) const FIELD_SEPARATOR: char = '\u{1f}';
pub(crate) const ROW_SEPARATOR: char = '\u{1e}';

/// Separates a group's key from its [`Store::rows_joined`] text (ASCII's group separator),
/// and the groups of a [`Store::groups_joined`] text (its file separator): control
/// characters too, so never in a name, presentation RDATA or a digest.
pub(crate) const KEY_SEPARATOR: char = '\u{1d}';
pub(crate) const GROUP_SEPARATOR: char = '\u{1c}';

impl Store {
    /// An aggregate expression joining `columns` of every row of a group into one text,
    /// fields by [`FIELD_SEPARATOR`] and rows by [`ROW_SEPARATOR`]: a group read as one row.
    pub(crate) fn rows_joined(&self, columns: &[&str]) -> String {
        let (function, chr) = self.text_aggregate();
        let fields = columns.join(&format!(" || {chr}(31) || "));
        format!("{function}({fields}, {chr}(30))")
    }

    /// An aggregate expression joining, over every group of a grouped subquery, its `key`
    /// column and its `joined` column (a [`Store::rows_joined`] text) into one text: the
    /// groups by [`GROUP_SEPARATOR`], each key from its rows by [`KEY_SEPARATOR`]. A query
    /// over many groups then hands one row to this thread, not one a group: the driver
    /// sends rows one by one between threads, waking the reader for each.
    pub(crate) fn groups_joined(&self, key: &str, joined: &str) -> String {
        let (function, chr) = self.text_aggregate();
        format!("{function}({key} || {chr}(29) || {joined}, {chr}(28))")
    }

    /// This back end's aggregate joining texts with a separator, and its function making
    /// a character of a code.
    fn text_aggregate(&self) -> (&'static str, &'static str) {
        match self.pool {
            Pool::Sqlite(_) => ("group_concat", "char"),
            Pool::Postgres(_) => ("string_agg", "chr"),
        }
    }

    /// How statements written at run time mark their parameters on this back end.
    pub(crate) fn marks(&self) -> Marks {
        match self.pool {
            Pool::Sqlite(_) => Marks::InOrder,
            Pool::Postgres(_) => Marks::Numbered,
        }
    }
}

/// The parameters of a statement, in `$n` order: `params![a, b]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$(crate::query::Param::from($value)),*]
    };
}
pub(crate) use params;

/// Why a row could not be read: the database failed, or the value makes no sense (a
/// `Corrupt` error the row reader chose itself).
pub(crate) enum RowError {
    Database(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for RowError {
    fn from(e: sqlx::Error) -> Self {
        RowError::Database(e)
    }
}

impl From<StoreError> for RowError {
    fn from(e: StoreError) -> Self {
        RowError::Store(e)
    }
}

/// An open transaction; dropped without [`Tx::commit`], it rolls back.
pub(crate) struct Tx<'s> {
    store: &'s Store,
    inner: TxInner,
}

enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Where a statement runs.
enum Conn<'c> {
    Pool(&'c Pool),
    Tx(&'c mut TxInner),
}

/// Runs `$body` with `$exec` bound to the executor behind `$conn`; like `with_pool!`, the
/// body is compiled once per back end (and once more for transactions).
macro_rules! on_conn {
    ($conn:expr, $exec:ident => $body:expr) => {
        match $conn {
            Conn::Pool(Pool::Sqlite($exec)) => $body,
            Conn::Pool(Pool::Postgres($exec)) => $body,
            Conn::Tx(TxInner::Sqlite(tx)) => {
                let $exec = &mut **tx;
                $body
            }
            Conn::Tx(TxInner::Postgres(tx)) => {
                let $exec = &mut **tx;
                $body
            }
        }
    };
}

/// `sqlx::query($sql)` with `$params` bound in order.
macro_rules! bound_query {
    ($sql:expr, $params:expr) => {{
        let mut query = sqlx::query($sql);
        for param in $params {
            query = match param {
                Param::Text(v) => query.bind(v.as_ref()),
                Param::OptText(v) => query.bind(*v),
                Param::Int(v) => query.bind(*v),
                Param::OptInt(v) => query.bind(*v),
                Param::Bool(v) => query.bind(*v),
            };
        }
        query
    }};
}

/// A statement about to run on the pool ([`Store::db`]) or in a transaction ([`Tx::db`]).
pub(crate) struct Db<'c> {
    store: &'c Store,
    conn: Conn<'c>,
}

impl Store {
    pub(crate) fn db(&self) -> Db<'_> {
        Db {
            store: self,
            conn: Conn::Pool(&self.pool),
        }
    }

    /// Starts a transaction.
    pub(crate) async fn begin(&self) -> Result<Tx<'_>, StoreError> {
        self.begin_with(false).await
    }

    /// Starts a transaction that holds SQLite's write lock from its first statement (a
    /// plain transaction on PostgreSQL): racing writers queue on the busy timeout instead
    /// of failing when their read turns into a write.
    pub(crate) async fn begin_immediate(&self) -> Result<Tx<'_>, StoreError> {
        self.begin_with(true).await
    }

    async fn begin_with(&self, immediate: bool) -> Result<Tx<'_>, StoreError> {
        let inner = match &self.pool {
            Pool::Sqlite(pool) if immediate => pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map(TxInner::Sqlite),
            Pool::Sqlite(pool) => pool.begin().await.map(TxInner::Sqlite),
            Pool::Postgres(pool) => pool.begin().await.map(TxInner::Postgres),
        }
        .map_err(|e| self.database_error(e))?;
        Ok(Tx { store: self, inner })
    }

    /// Runs `statements` (each its SQL and its parameters) as one transaction.
    ///
    /// On SQLite they reach the connection's worker thread as one text, `BEGIN` and
    /// `COMMIT` included: sqlx runs the statements of a text one after the other, hands each
    /// its `?` parameters in order and stops at the first that fails. One round trip to the
    /// worker then carries the whole transaction, where a `Transaction` takes three (BEGIN,
    /// the statements, COMMIT), each a wake-up of two threads. PostgreSQL takes one
    /// statement per message with parameters: there they run one by one in a transaction.
    ///
    /// Each statement must mark its parameters as [`Store::marks`] says (`?` on SQLite,
    /// one per parameter): in a joined text a `$n` would count from the first statement's
    /// parameters and silently bind another statement's values.
    pub(crate) async fn execute_atomically(
        &self,
        mut statements: Vec<(String, Vec<Param<'_>>)>,
    ) -> Result<(), StoreError> {
        if statements.len() <= 1 {
            // One statement is atomic on its own.
            if let Some((sql, params)) = statements.pop() {
                self.db().execute(AssertSqlSafe(sql), &params).await?;
            }
            return Ok(());
        }
        match &self.pool {
            Pool::Sqlite(pool) => self.sqlite_transaction_text(pool, statements).await,
            Pool::Postgres(_) => {
                let mut tx = self.begin().await?;
                for (sql, params) in statements {
                    tx.db().execute(AssertSqlSafe(sql), &params).await?;
                }
                tx.commit().await
            }
        }
    }

    /// [`Store::execute_atomically`] on SQLite: `BEGIN; statements; COMMIT` as one text on
    /// one connection, rolled back there if any of it fails.
    async fn sqlite_transaction_text(
        &self,
        pool: &sqlx::SqlitePool,
        statements: Vec<(String, Vec<Param<'_>>)>,
    ) -> Result<(), StoreError> {
        debug_assert!(
            statements
                .iter()
                .all(|(sql, params)| !sql.contains('$') && sql.matches('?').count() == params.len()),
            "statements joined into one text mark each parameter with a plain `?`"
        );
        let (sql, params): (Vec<String>, Vec<Vec<Param<'_>>>) = statements.into_iter().unzip();
        let text = format!("BEGIN;\n{};\nCOMMIT", sql.join(";\n"));
        let params: Vec<Param<'_>> = params.into_iter().flatten().collect();
        let conn = pool.acquire().await.map_err(|e| self.database_error(e))?;
        let mut conn = ClosedUnlessFinished(Some(conn));
        // Kept in the connection's statement cache like any statement: a text's shape is
        // its number of rows per statement, and a run's groups repeat a few shapes (one
        // zone's changes, two zones', …), so most groups skip SQLite's parser.
        let ran = bound_query!(AssertSqlSafe(text), &params)
            .execute(&mut **conn.get())
            .await;
        if let Err(e) = ran {
            // A statement (or the COMMIT) failed inside the transaction: what ran of it is
            // undone before the connection goes back to the pool. A ROLLBACK that fails
            // leaves the connection in a state not known here: it is closed (the guard).
            if sqlx::query("ROLLBACK")
                .execute(&mut **conn.get())
                .await
                .is_ok()
            {
                conn.finished();
            }
            return Err(self.database_error(e));
        }
        conn.finished();
        Ok(())
    }

    fn row_error(&self, e: RowError) -> StoreError {
        match e {
            RowError::Database(e) => self.database_error(e),
            RowError::Store(e) => e,
        }
    }
}

impl Tx<'_> {
    pub(crate) fn db(&mut self) -> Db<'_> {
        Db {
            store: self.store,
            conn: Conn::Tx(&mut self.inner),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await,
            TxInner::Postgres(tx) => tx.commit().await,
        }
        .map_err(|e| self.store.database_error(e))
    }
}

impl Db<'_> {
    /// Runs a statement that returns no rows; how many rows it changed.
    pub(crate) async fn execute(
        self,
        sql: impl SqlSafeStr,
        params: &[Param<'_>],
    ) -> Result<u64, StoreError> {
        on_conn!(self.conn, exec => bound_query!(sql, params)
            .execute(exec)
            .await
            .map(|done| done.rows_affected()))
        .map_err(|e| self.store.database_error(e))
    }

    /// The one row the statement returns, read by `read`.
    pub(crate) async fn fetch_one<T>(
        self,
        sql: impl SqlSafeStr,
        params: &[Param<'_>],
        read: impl Fn(&dyn StoreRow) -> Result<T, RowError>,
    ) -> Result<T, StoreError> {
        let mut rows = self.fetch(sql, params, Rows::One, read).await?;
        Ok(rows.remove(0))
    }

    /// The row the statement returns, if any, read by `read`.
    pub(crate) async fn fetch_optional<T>(
        self,
        sql: impl SqlSafeStr,
        params: &[Param<'_>],
        read: impl Fn(&dyn StoreRow) -> Result<T, RowError>,
    ) -> Result<Option<T>, StoreError> {
        let rows = self.fetch(sql, params, Rows::AtMostOne, read).await?;
        Ok(rows.into_iter().next())
    }

    /// Every row the statement returns, each read by `read`.
    pub(crate) async fn fetch_all<T>(
        self,
        sql: impl SqlSafeStr,
        params: &[Param<'_>],
        read: impl Fn(&dyn StoreRow) -> Result<T, RowError>,
    ) -> Result<Vec<T>, StoreError> {
        self.fetch(sql, params, Rows::All, read).await
    }

    async fn fetch<T>(
        self,
        sql: impl SqlSafeStr,
        params: &[Param<'_>],
        rows: Rows,
        read: impl Fn(&dyn StoreRow) -> Result<T, RowError>,
    ) -> Result<Vec<T>, StoreError> {
        let store = self.store;
        on_conn!(self.conn, exec => {
            let query = bound_query!(sql, params);
            let fetched = match rows {
                Rows::One => query.fetch_one(exec).await.map(|row| vec![row]),
                Rows::AtMostOne => query.fetch_optional(exec).await.map(Vec::from_iter),
                Rows::All => query.fetch_all(exec).await,
            }
            .map_err(|e| store.database_error(e))?;
            fetched
                .iter()
                .map(|row| read(row).map_err(|e| store.row_error(e)))
                .collect()
        })
    }
}

/// A connection running a transaction sent as one text. Dropped before
/// [`ClosedUnlessFinished::finished`] (its caller gave up while SQLite's worker ran the
/// text: the worker stops once the statement it is running is done, inside the
/// transaction, unless it had reached the COMMIT), the connection is closed, which rolls
/// an open transaction back, instead of going back to the pool with it open.
struct ClosedUnlessFinished(Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>);

impl ClosedUnlessFinished {
    fn get(&mut self) -> &mut sqlx::pool::PoolConnection<sqlx::Sqlite> {
        self.0
            .as_mut()
            .expect("the connection is held until finished")
    }

    /// The transaction is committed or rolled back: the connection may be reused.
    fn finished(mut self) {
        self.0.take();
    }
}

impl Drop for ClosedUnlessFinished {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.0 {
            conn.close_on_drop();
        }
    }
}

/// How many rows a statement must return: sqlx's `fetch_one` fails on none, and
/// `fetch_optional` reads no further than the first.
enum Rows {
    One,
    AtMostOne,
    All,
}

#[cfg(test)]
mod marks_tests {
    use super::Marks;

    #[test]
    fn parameters_are_numbered_for_postgresql_and_plain_in_order_for_sqlite() {
        assert_eq!(
            format!(
                "{} IN ({})",
                Marks::Numbered.mark(1),
                Marks::Numbered.list(2, 3)
            ),
            "$1 IN ($2, $3, $4)"
        );
        assert_eq!(Marks::InOrder.list(2, 3), "?, ?, ?");
    }
}

#[cfg(test)]
mod transaction_tests {
    use super::Param;
    use crate::Store;

    /// A zone state row: a statement [`Store::execute_atomically`] takes.
    fn state_of(zone: &str) -> (String, Vec<Param<'static>>) {
        (
            "INSERT INTO zone_state (zone, dns_server, serial, desired_digest, checked_at) \
             VALUES (?, 'primary', 1, 'digest', 0)"
                .to_string(),
            vec![Param::from(zone.to_string())],
        )
    }

    async fn zones_with_state(store: &Store) -> Vec<String> {
        let mut zones: Vec<String> = store
            .zone_states()
            .await
            .unwrap()
            .into_keys()
            .map(|(zone, _)| zone)
            .collect();
        zones.sort();
        zones
    }

    #[tokio::test]
    async fn a_statement_failing_midway_undoes_the_whole_transaction_and_the_store_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        // The third statement breaks a NOT NULL constraint when it runs, after the first
        // two have written their rows.
        let missing_serial = (
            "INSERT INTO zone_state (zone, dns_server, desired_digest, checked_at) \
             VALUES ('c.test.', 'primary', 'digest', 0)"
                .to_string(),
            Vec::new(),
        );
        let failed = store
            .execute_atomically(vec![
                state_of("a.test."),
                state_of("b.test."),
                missing_serial,
            ])
            .await;
        assert!(failed.is_err(), "the NOT NULL constraint holds");
        assert!(zones_with_state(&store).await.is_empty());

        store
            .execute_atomically(vec![state_of("d.test."), state_of("e.test.")])
            .await
            .unwrap();
        // Committed, not left in a transaction the failure kept open: another connection
        // sees the rows.
        let other = Store::open_sqlite(dir.path()).await.unwrap();
        assert_eq!(zones_with_state(&other).await, ["d.test.", "e.test."]);
    }

    #[tokio::test]
    async fn a_transaction_given_up_midway_leaves_no_half_of_it_and_no_open_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        let other = Store::open_sqlite(dir.path()).await.unwrap();
        // Another connection holds the write lock: the transaction below begins, then its
        // first INSERT waits in SQLite's busy handler, and is given up there.
        let lock = other.begin_immediate().await.unwrap();
        let given_up = tokio::spawn({
            let store = store.clone();
            async move {
                let group = vec![state_of("a.test."), state_of("b.test.")];
                store.execute_atomically(group).await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        given_up.abort();
        assert!(given_up.await.unwrap_err().is_cancelled());
        // The lock let go, the first INSERT runs, and the worker stops inside the
        // transaction (nobody waits for its result any more).
        drop(lock);

        store
            .execute_atomically(vec![state_of("c.test."), state_of("d.test.")])
            .await
            .expect("no transaction is left open on the connection");
        // Committed, and nothing of the given-up transaction: seen from another connection.
        assert_eq!(zones_with_state(&other).await, ["c.test.", "d.test."]);
    }

    #[tokio::test]
    async fn a_failing_single_statement_is_an_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        store
            .execute_atomically(vec![state_of("a.test.")])
            .await
            .unwrap();
        // The same primary key again.
        assert!(
            store
                .execute_atomically(vec![state_of("a.test.")])
                .await
                .is_err()
        );
        assert_eq!(zones_with_state(&store).await, ["a.test."]);
    }
}
