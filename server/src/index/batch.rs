//! Statements of a write transaction sent together ([`Batch`]), and the rows
//! they return ([`Row`]).
//!
//! A transaction's statements that need no answer from each other are
//! collected and sent at once ([`super::write::WriteTx::run`]): on SQLite to
//! the writer's own connection, which runs them in the calling thread
//! (`index/direct.rs`), or, for an in-memory database, through sqlx as one
//! multi-statement query — one round trip to the connection's thread — with
//! each statement's `$n` numbered on into one list of values ([`run_sqlx`]).
//! PostgreSQL's extended protocol takes one statement per query: there they
//! run one after another, as they would have one by one. Either way they run
//! in the order pushed, in the caller's transaction.

use std::sync::Arc;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, Arguments, Column, Row as _};

use super::{Backend, IndexError};

/// A value bound to a statement's `$n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    /// An integer, or an integer column's NULL.
    Int(Option<i64>),
    /// A text, or a text column's NULL.
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(value: i64) -> Value {
        Value::Int(Some(value))
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Value {
        Value::Int(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Value {
        Value::Text(Some(value.to_owned()))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Value {
        Value::Text(Some(value))
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Value {
        Value::Text(Some(value.clone()))
    }
}

impl From<Option<&str>> for Value {
    fn from(value: Option<&str>) -> Value {
        Value::Text(value.map(str::to_owned))
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Value {
        Value::Text(value)
    }
}

impl From<&Option<String>> for Value {
    fn from(value: &Option<String>) -> Value {
        Value::Text(value.clone())
    }
}

/// One statement of a batch: its SQL (placeholders `$1`…`$n`, each used at
/// least once) and its values, bound in order.
#[derive(Debug)]
pub(super) struct Statement {
    sql: String,
    values: Vec<Value>,
}

/// A statement of `sql`, its values to be bound with [`Statement::bind`].
pub(super) fn statement(sql: impl Into<String>) -> Statement {
    Statement {
        sql: sql.into(),
        values: Vec::new(),
    }
}

impl Statement {
    /// Binds the next `$n`.
    pub(super) fn bind(mut self, value: impl Into<Value>) -> Statement {
        self.values.push(value.into());
        self
    }

    /// Its SQL.
    pub(super) fn sql(&self) -> &str {
        &self.sql
    }

    /// Its values, `$1` first.
    pub(super) fn values(&self) -> &[Value] {
        &self.values
    }
}

/// A row a write returned: its columns' names and values.
#[derive(Debug, Clone)]
pub(super) struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// A row of `values`, named by `columns` in order.
    pub(super) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { columns, values }
    }

    /// The same row read from sqlx: each value an integer or a text (or NULL).
    fn of_any(row: &AnyRow) -> Result<Row, IndexError> {
        let columns: Arc<[String]> = row.columns().iter().map(|c| c.name().to_owned()).collect();
        let values = (0..columns.len())
            .map(|i| {
                if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                    Ok(Value::Int(v))
                } else {
                    Ok(Value::Text(row.try_get::<Option<String>, _>(i)?))
                }
            })
            .collect::<Result<_, IndexError>>()?;
        Ok(Row { columns, values })
    }

    /// The value of column `name` as a `T`.
    pub(super) fn try_get<T: Field>(&self, name: &str) -> Result<T, IndexError> {
        let at = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| IndexError::Db(sqlx::Error::ColumnNotFound(name.to_owned())))?;
        T::of(&self.values[at])
            .ok_or_else(|| IndexError::Corrupt(format!("column {name}: {:?}", self.values[at])))
    }
}

/// What a column's value is read as: an integer or a text, either of them
/// maybe NULL.
pub(super) trait Field: Sized + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> {
    /// `value` as this type, if it is one.
    fn of(value: &Value) -> Option<Self>;
}

impl Field for i64 {
    fn of(value: &Value) -> Option<i64> {
        match value {
            Value::Int(v) => *v,
            Value::Text(_) => None,
        }
    }
}

impl Field for Option<i64> {
    fn of(value: &Value) -> Option<Option<i64>> {
        match value {
            Value::Int(v) => Some(*v),
            Value::Text(None) => Some(None),
            Value::Text(Some(_)) => None,
        }
    }
}

impl Field for String {
    fn of(value: &Value) -> Option<String> {
        match value {
            Value::Text(v) => v.clone(),
            Value::Int(_) => None,
        }
    }
}

impl Field for Option<String> {
    fn of(value: &Value) -> Option<Option<String>> {
        match value {
            Value::Text(v) => Some(v.clone()),
            Value::Int(None) => Some(None),
            Value::Int(Some(_)) => None,
        }
    }
}

/// A row's fields by column name: a write's [`Row`], or a read's sqlx row.
pub(super) trait Fields {
    /// The value of column `name` as a `T`.
    fn field<T: Field>(&self, name: &str) -> Result<T, IndexError>;
}

impl Fields for Row {
    fn field<T: Field>(&self, name: &str) -> Result<T, IndexError> {
        self.try_get(name)
    }
}

impl Fields for AnyRow {
    fn field<T: Field>(&self, name: &str) -> Result<T, IndexError> {
        Ok(self.try_get(name)?)
    }
}

/// Statements to run in order in one transaction; on SQLite in one round trip.
#[derive(Debug)]
pub(super) struct Batch {
    backend: Backend,
    statements: Vec<Statement>,
}

impl Batch {
    /// An empty batch for `backend`.
    pub(super) fn new(backend: Backend) -> Batch {
        Batch {
            backend,
            statements: Vec::new(),
        }
    }

    /// Adds `statement` after those pushed before.
    pub(super) fn push(&mut self, statement: Statement) {
        self.statements.push(statement);
    }

    /// Moves the statements of `other` after those pushed here.
    pub(super) fn append(&mut self, other: &mut Batch) {
        self.statements.append(&mut other.statements);
    }

    /// The backend it is for.
    pub(super) fn backend(&self) -> Backend {
        self.backend
    }

    /// The statements pushed so far, in order; the batch is left empty.
    pub(super) fn take(&mut self) -> Vec<Statement> {
        std::mem::take(&mut self.statements)
    }
}

/// Runs `statements` in order on `conn` through sqlx, in the caller's
/// transaction: the rows they return, in order (a statement that fails stops
/// the rest, and the transaction is not to be committed). On SQLite as one
/// multi-statement query, one round trip to the connection's thread;
/// PostgreSQL's extended protocol takes one statement per query.
pub(super) async fn run_sqlx(
    backend: Backend,
    conn: &mut AnyConnection,
    statements: Vec<Statement>,
) -> Result<Vec<Row>, IndexError> {
    if statements.is_empty() {
        return Ok(Vec::new());
    }
    let rows = match backend {
        Backend::Sqlite => {
            let (sql, args) = joined(statements)?;
            sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            let mut rows = Vec::new();
            for statement in statements {
                let (sql, args) = joined(vec![statement])?;
                let query = sqlx::query_with(sqlx::AssertSqlSafe(sql), args);
                rows.extend(query.fetch_all(&mut *conn).await?);
            }
            rows
        }
    };
    rows.iter().map(Row::of_any).collect()
}

/// The rows sqlx returned for a write outside a [`Batch`], as [`Row`]s.
pub(super) fn rows_of(rows: &[AnyRow]) -> Result<Vec<Row>, IndexError> {
    rows.iter().map(Row::of_any).collect()
}

/// The statements as one query: each statement's `$n` numbered on after the
/// values of those before it, the values in one list.
fn joined(statements: Vec<Statement>) -> Result<(String, AnyArguments), IndexError> {
    let mut sql = String::new();
    let mut args = AnyArguments::default();
    for statement in statements {
        let offset = args.len();
        let (renumbered, highest) = renumbered(&statement.sql, offset);
        // SQLite would bind NULL to a `$n` without a value: refuse instead.
        if highest != statement.values.len() {
            return Err(IndexError::Db(sqlx::Error::InvalidArgument(format!(
                "statement takes {highest} values, {} bound: {}",
                statement.values.len(),
                statement.sql
            ))));
        }
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&renumbered);
        for value in statement.values {
            let added = match value {
                Value::Int(v) => args.add(v),
                Value::Text(v) => args.add(v),
            };
            added.map_err(sqlx::Error::Encode)?;
        }
    }
    Ok((sql, args))
}

/// `sql` with every placeholder `$n` outside quotes made `$(n + offset)`, and
/// the highest `n` it holds (0: none).
fn renumbered(sql: &str, offset: usize) -> (String, usize) {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut highest = 0;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '$' => {
                let mut n = 0usize;
                let mut digits = 0;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    digits += 1;
                    chars.next();
                }
                if digits > 0 {
                    highest = highest.max(n);
                    out.push_str(&(n + offset).to_string());
                }
            }
            None => {}
        }
    }
    (out, highest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Commit, Index};

    #[test]
    fn placeholders_are_numbered_on_outside_quotes() {
        assert_eq!(
            renumbered("UPDATE t SET a = $2, b = '$1' WHERE id = $1 AND c = $10", 3),
            (
                "UPDATE t SET a = $5, b = '$1' WHERE id = $4 AND c = $13".to_owned(),
                10
            )
        );
        assert_eq!(
            renumbered("SELECT \"$1\", value ->> 0 FROM x", 7),
            ("SELECT \"$1\", value ->> 0 FROM x".to_owned(), 0)
        );
        assert_eq!(renumbered("SELECT $", 2), ("SELECT $".to_owned(), 0));
    }

    #[test]
    fn values_must_match_the_placeholders() {
        let short = statement("UPDATE t SET a = $1 WHERE id = $2").bind(1_i64);
        assert!(joined(vec![short]).is_err());
        let long = statement("DELETE FROM t WHERE id = $1")
            .bind(1_i64)
            .bind(2_i64);
        assert!(joined(vec![long]).is_err());
        let (sql, args) = joined(vec![
            statement("UPDATE t SET a = $2 WHERE id = $1")
                .bind(1_i64)
                .bind("x"),
            statement("DELETE FROM u WHERE id = $1").bind(Option::<i64>::None),
        ])
        .unwrap();
        assert_eq!(
            sql,
            "UPDATE t SET a = $2 WHERE id = $1;\nDELETE FROM u WHERE id = $3"
        );
        assert_eq!(args.len(), 3);
    }

    /// The statements run in order with their own values, rows come back in
    /// order, and a failing statement stops the rest: on SQLite in one query
    /// through sqlx (in memory), or on the writer's own connection (a file).
    #[tokio::test]
    async fn a_batch_runs_in_order_with_its_own_values() {
        let dir = tempfile::tempdir().unwrap();
        for index in [
            Index::connect("sqlite::memory:").await.unwrap(),
            crate::index::testing::sqlite_index(dir.path()).await,
        ] {
            a_batch_runs_in_order_in(&index).await;
        }
    }

    async fn a_batch_runs_in_order_in(index: &Index) {
        let mut tx = index.begin(Commit::Durable).await.unwrap();
        let mut batch = Batch::new(index.backend);
        for (sql, values) in [
            ("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)", vec![]),
            (
                "INSERT INTO t (id, v) VALUES ($1, $2), ($3, $2)",
                vec![Value::from(1_i64), Value::from("one"), Value::from(2_i64)],
            ),
            (
                "UPDATE t SET v = $2 WHERE id = $1",
                vec![Value::from(2_i64), Value::from(Some("two".to_owned()))],
            ),
            (
                "SELECT id, v FROM t WHERE id >= $1 ORDER BY id",
                vec![Value::from(1_i64)],
            ),
            (
                "INSERT INTO t (id, v) VALUES ($1, $2) RETURNING v",
                vec![Value::from(3_i64), Value::from(Option::<&str>::None)],
            ),
        ] {
            let mut s = statement(sql);
            for v in values {
                s = s.bind(v);
            }
            batch.push(s);
        }
        let rows = tx.run(&mut batch).await.unwrap();
        // Run, the batch is empty.
        assert!(tx.run(&mut batch).await.unwrap().is_empty());
        let got: Vec<(Option<i64>, Option<String>)> = rows
            .iter()
            .map(|r| (r.try_get("id").ok(), r.try_get("v").unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(1), Some("one".to_owned())),
                (Some(2), Some("two".to_owned())),
                (None, None),
            ]
        );

        // A failing statement (a duplicate key) stops those after it.
        batch.push(statement("INSERT INTO t (id, v) VALUES ($1, 'x')").bind(1_i64));
        batch.push(statement("DELETE FROM t WHERE id = $1").bind(2_i64));
        assert!(tx.run(&mut batch).await.is_err());
        batch.push(statement("SELECT COUNT(*) AS n FROM t WHERE id = $1").bind(2_i64));
        let rows = tx.run(&mut batch).await.unwrap();
        assert_eq!(rows[0].try_get::<i64>("n").unwrap(), 1);
    }
}
