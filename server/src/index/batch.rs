//! Statements of a write transaction sent together ([`Batch`]).
//!
//! On SQLite every statement is a round trip to the thread that owns the
//! connection: two thread wake-ups that cost more than the statement's own work
//! there. A transaction's statements that need no answer from each other are
//! therefore collected and sent as one multi-statement query — one round trip —
//! with each statement's `$n` numbered on into one list of values. PostgreSQL's
//! extended protocol takes one statement per query: there they run one after
//! another, as they would have one by one. Either way they run in the order
//! pushed, in the caller's transaction.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{AnyConnection, Arguments};

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

    /// Runs the statements pushed so far in `tx`, in order, and empties the
    /// batch: the rows they return, in order (a statement that fails stops the
    /// rest, and the caller's transaction is not to be committed).
    pub(super) async fn run(&mut self, tx: &mut AnyConnection) -> Result<Vec<AnyRow>, IndexError> {
        let statements = std::mem::take(&mut self.statements);
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        match self.backend {
            Backend::Sqlite => {
                let (sql, args) = joined(statements)?;
                Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                    .fetch_all(&mut *tx)
                    .await?)
            }
            Backend::Postgres => {
                let mut rows = Vec::new();
                for statement in statements {
                    let (sql, args) = joined(vec![statement])?;
                    let query = sqlx::query_with(sqlx::AssertSqlSafe(sql), args);
                    rows.extend(query.fetch_all(&mut *tx).await?);
                }
                Ok(rows)
            }
        }
    }
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
    use sqlx::Row;

    use super::*;
    use crate::index::Index;

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
    /// order, and a failing statement stops the rest: on SQLite in one query.
    #[tokio::test]
    async fn a_batch_runs_in_order_with_its_own_values() {
        let index = Index::connect("sqlite::memory:").await.unwrap();
        let mut tx = index.writer.begin().await.unwrap();
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
        let rows = batch.run(&mut tx).await.unwrap();
        // Run, the batch is empty.
        assert!(batch.run(&mut tx).await.unwrap().is_empty());
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
        assert!(batch.run(&mut tx).await.is_err());
        batch.push(statement("SELECT COUNT(*) AS n FROM t WHERE id = $1").bind(2_i64));
        let rows = batch.run(&mut tx).await.unwrap();
        assert_eq!(rows[0].try_get::<i64, _>("n").unwrap(), 1);
    }
}
