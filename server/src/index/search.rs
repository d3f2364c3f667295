//! Report search: the conditions the report search and the issue list share
//! (an issue matches when one of its reports does), as SQL over the indexed
//! columns of `reports` and the annotation tags.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use super::reports::{REPORT_COLUMNS, report_from_row};
use super::{Index, IndexError, ReportRow};

/// What reports must match; every condition given must hold.
// Not shared with `triage::search::ReportSelection`, though its fields are alike:
// that one is the query string as typed (days, `min_version`, `key=value`), this
// one the values it resolves to (Unix ms, a version's sort key, an annotation's
// tag), and the index cannot import the layer above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportConditions {
    /// Received at or after this time, Unix ms.
    pub since: Option<i64>,
    /// Received before this time, Unix ms.
    pub until: Option<i64>,
    /// This product.
    pub product: Option<String>,
    /// This version, exactly.
    pub version: Option<String>,
    /// This version or a later one: its `crate::version::sort_key`.
    pub min_version_key: Option<String>,
    /// This OS family.
    pub os: Option<String>,
    /// This OS version, exactly.
    pub os_version: Option<String>,
    /// This crash reason, exactly.
    pub crash_reason: Option<String>,
    /// This crashing module (file name), exactly.
    pub module: Option<String>,
    /// An annotation whose tag (`crate::crypto::SearchKey::tag`) is this.
    pub annotation_tag: Option<String>,
}

/// How an annotation condition is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagLookup {
    /// Each report read (newest first) is probed for the tag: for a common tag,
    /// whose newest reports come soon.
    Probe,
    /// The tag's own reports are read: for a rare one, which a scan in time
    /// order would look for through the whole index.
    Drive,
}

/// A tag with fewer reports than this is rare ([`TagLookup::Drive`]).
const RARE_TAG: i64 = 5_000;

/// A value bound to a search's SQL.
#[derive(Debug, Clone)]
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

impl ReportConditions {
    /// Whether no condition is given.
    pub fn is_empty(&self) -> bool {
        *self == ReportConditions::default()
    }

    /// The conditions on the reports row aliased `r`, as SQL, an annotation
    /// looked up as `tags` says; their values are appended to `binds`, whose
    /// length numbers the placeholders.
    pub(super) fn sql(&self, binds: &mut Vec<Bind>, tags: TagLookup) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |sql: &str, value: Bind| {
            binds.push(value);
            out.push(sql.replace('?', &format!("${}", binds.len())));
        };
        if let Some(at) = self.since {
            push("r.received_at >= ?", Bind::Int(at));
        }
        if let Some(at) = self.until {
            push("r.received_at < ?", Bind::Int(at));
        }
        for (sql, value) in [
            ("r.product = ?", &self.product),
            ("r.version = ?", &self.version),
            ("r.version_key >= ?", &self.min_version_key),
            ("r.os = ?", &self.os),
            ("r.os_version = ?", &self.os_version),
            ("r.crash_reason = ?", &self.crash_reason),
            ("r.crash_module = ?", &self.module),
            (
                match tags {
                    TagLookup::Probe => {
                        "EXISTS (SELECT 1 FROM report_annotations a WHERE a.report_id = r.id \
                         AND a.tag = ?)"
                    }
                    TagLookup::Drive => {
                        "r.id IN (SELECT a.report_id FROM report_annotations a WHERE a.tag = ?)"
                    }
                },
                &self.annotation_tag,
            ),
        ] {
            if let Some(value) = value {
                push(sql, Bind::Text(value.clone()));
            }
        }
        out
    }
}

/// Binds `binds` to `query` in order.
pub(super) fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments>,
    binds: &'q [Bind],
) -> Query<'q, Any, AnyArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text.as_str()),
            Bind::Int(n) => query.bind(*n),
        };
    }
    query
}

/// A page of matching reports, newest first.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// What they must match.
    pub conditions: ReportConditions,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

impl ReportFilter {
    /// The search as SQL, its annotation looked up as `tags` says, and the
    /// values to bind to it in order.
    fn sql(&self, tags: TagLookup) -> (String, Vec<Bind>) {
        let mut binds = Vec::new();
        let conditions = self.conditions.sql(&mut binds, tags);
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        binds.push(Bind::Int(self.limit));
        binds.push(Bind::Int(self.offset));
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM reports r {where_clause} \
             ORDER BY r.received_at DESC, r.id LIMIT ${} OFFSET ${}",
            binds.len() - 1,
            binds.len()
        );
        (sql, binds)
    }
}

impl Index {
    /// How `conditions`' annotation is best looked up: whether its tag has
    /// fewer than [`RARE_TAG`] reports (counting stops there).
    pub(super) async fn tag_lookup(
        &self,
        conditions: &ReportConditions,
    ) -> Result<TagLookup, IndexError> {
        let Some(tag) = &conditions.annotation_tag else {
            return Ok(TagLookup::Probe);
        };
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM report_annotations WHERE tag = $1 LIMIT $2) t",
        )
        .bind(tag)
        .bind(RARE_TAG)
        .fetch_one(&self.pool)
        .await?;
        Ok(if found < RARE_TAG {
            TagLookup::Drive
        } else {
            TagLookup::Probe
        })
    }

    /// The reports `filter` matches, newest first.
    pub async fn search_reports(
        &self,
        filter: &ReportFilter,
    ) -> Result<Vec<ReportRow>, IndexError> {
        let tags = self.tag_lookup(&filter.conditions).await?;
        self.search_reports_looking_up(filter, tags).await
    }

    /// [`Index::search_reports`] with its annotation looked up as `tags` says.
    async fn search_reports_looking_up(
        &self,
        filter: &ReportFilter,
        tags: TagLookup,
    ) -> Result<Vec<ReportRow>, IndexError> {
        let (sql, binds) = filter.sql(tags);
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(report_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testing::query_plan;
    use crate::report_id::ReportId;

    /// A search on a fact only processing gives a report (OS, OS version,
    /// crash reason, crashing module) reads that fact's index, which holds only
    /// the reports that have it (partial, migration 0012): an equality never
    /// matches the NULL of a report not processed yet.
    #[tokio::test]
    async fn processing_facts_are_searched_through_their_partial_indexes() {
        let index = Index::connect("sqlite::memory:").await.unwrap();
        let fact = |set: fn(&mut ReportConditions)| {
            let mut conditions = ReportConditions::default();
            set(&mut conditions);
            conditions
        };
        for (conditions, expected) in [
            (fact(|c| c.os = Some("Linux".into())), "reports_search_os"),
            (
                fact(|c| c.os_version = Some("6.1".into())),
                "reports_search_os_version",
            ),
            (
                fact(|c| c.crash_reason = Some("SIGSEGV".into())),
                "reports_search_crash_reason",
            ),
            (
                fact(|c| c.module = Some("libxul.so".into())),
                "reports_search_crash_module",
            ),
        ] {
            let partial: i64 = sqlx::query_scalar(
                "SELECT partial FROM pragma_index_list('reports') WHERE name = $1",
            )
            .bind(expected)
            .fetch_one(&index.pool)
            .await
            .unwrap();
            assert_eq!(
                partial, 1,
                "{expected} holds only the reports that have the fact"
            );
            let filter = ReportFilter {
                conditions,
                limit: 10,
                offset: 0,
            };
            let (sql, binds) = filter.sql(TagLookup::Probe);
            let steps = query_plan(&index.pool, &sql, &binds).await;
            assert!(
                steps
                    .iter()
                    .any(|s| s.starts_with("SEARCH") && s.contains(&format!("INDEX {expected} "))),
                "{expected}: {steps:?}"
            );
        }
    }

    /// Both ways of looking up an annotation find the same reports, newest first,
    /// with other conditions; a tag's lookup follows how many reports have it.
    #[tokio::test]
    async fn both_tag_lookups_find_the_same_reports() {
        let index = Index::connect("sqlite::memory:").await.unwrap();
        let mut ids = Vec::new();
        for n in 0..40_i64 {
            let id = ReportId::new();
            sqlx::query(
                "INSERT INTO reports (id, received_at, product, state, deletion_token_hash, \
                 raw_key, meta_key) VALUES ($1, $2, $3, 'queued', 'h', 'r', 'm')",
            )
            .bind(id.to_string())
            .bind(1_000 + n)
            .bind(if n % 2 == 0 { "Even" } else { "Odd" })
            .execute(&index.writer)
            .await
            .unwrap();
            for tag in [Some("every"), (n % 3 == 0).then_some("third")]
                .into_iter()
                .flatten()
            {
                sqlx::query("INSERT INTO report_annotations (tag, report_id) VALUES ($1, $2)")
                    .bind(tag)
                    .bind(id.to_string())
                    .execute(&index.writer)
                    .await
                    .unwrap();
            }
            ids.push(id);
        }
        let filter = |tag: &str, product: Option<&str>| ReportFilter {
            conditions: ReportConditions {
                annotation_tag: Some(tag.to_owned()),
                product: product.map(str::to_owned),
                ..Default::default()
            },
            limit: 5,
            offset: 1,
        };
        for (tag, product) in [
            ("third", None),
            ("third", Some("Even")),
            ("every", Some("Odd")),
        ] {
            let filter = filter(tag, product);
            let mut found = Vec::new();
            for tags in [TagLookup::Probe, TagLookup::Drive] {
                let rows = index
                    .search_reports_looking_up(&filter, tags)
                    .await
                    .unwrap();
                found.push(rows.iter().map(|r| r.id).collect::<Vec<_>>());
            }
            let expected: Vec<ReportId> = (0..40)
                .rev()
                .filter(|n| tag == "every" || n % 3 == 0)
                .filter(|n| match product {
                    Some("Even") => n % 2 == 0,
                    Some(_) => n % 2 == 1,
                    None => true,
                })
                .map(|n| ids[n as usize])
                .skip(1)
                .take(5)
                .collect();
            assert_eq!(found[0], expected, "{tag} {product:?}");
            assert_eq!(found[1], expected, "{tag} {product:?}");
        }
        let conditions = filter("third", None).conditions;
        assert_eq!(
            index.tag_lookup(&conditions).await.unwrap(),
            TagLookup::Drive
        );
        assert_eq!(
            index
                .tag_lookup(&ReportConditions::default())
                .await
                .unwrap(),
            TagLookup::Probe
        );
    }
}
