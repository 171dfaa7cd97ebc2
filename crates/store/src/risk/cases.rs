//! Storage of the analysts' case queue: cases, their audit trail, a page of the queue and
//! the moves of a case (with a confirmed stolen account's block and the consortium
//! publications stored in the move's transaction).

use super::publications::insert_publication;
use super::{insert_case, insert_list_entry, insert_log, ListEntryRow, PublicationRow, RiskStore};
use crate::credit::on_pool;
use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub kind: String,
    pub priority: i64,
    pub status: String,
    pub customer: String,
    pub event_sequence: Option<i64>,
    pub summary: String,
    pub assignee: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseLogRow {
    pub id: String,
    pub case_id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub note: String,
}

/// Which cases one page of the queue shows: a status, optionally a kind and the key that
/// claimed them, and the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseQueue {
    pub status: String,
    pub kind: Option<String>,
    pub assignee_key: Option<String>,
    pub limit: i64,
    pub offset: i64,
    /// A sort of [`crate::lists::CASE_SORTS`] and its direction (its own offset and limit
    /// are not used); `None`: by priority, then oldest first.
    pub sort: Option<crate::lists::ListPage>,
}

impl CaseQueue {
    /// The queue's `ORDER BY`, from a fixed set of columns, ending with the id.
    fn order(&self) -> String {
        match &self.sort {
            None => "ORDER BY priority, created_at, id".to_string(),
            Some(page) => crate::lists::order_by(
                page,
                &[
                    ("priority", "priority"),
                    ("created_at", "created_at"),
                    ("kind", "kind"),
                    ("customer", "customer"),
                    ("assignee", "assignee"),
                ],
                "id",
            ),
        }
    }
}

const CASE_COLUMNS: &str = "SELECT id, kind, priority, status, customer, event_sequence, \
    summary, assignee, created_at, updated_at FROM risk_cases";

impl RiskStore {
    pub async fn insert_case(&self, case: &CaseRow, log: &CaseLogRow) -> Result<(), StoreError> {
        on_pool!(&self.database, pool => {
            let mut transaction = pool.begin().await?;
            insert_case!(&mut *transaction, case, log);
            transaction.commit().await?;
            Ok(())
        })
    }

    /// Moves a case from `expected_status` to its new state, with a log line; `false` when
    /// the case was not in `expected_status` (someone else moved it first).
    pub async fn update_case(
        &self,
        case: &CaseRow,
        expected_status: &str,
        log: &CaseLogRow,
    ) -> Result<bool, StoreError> {
        self.update_case_with_entry(case, expected_status, log, None, None, &[])
            .await
    }

    /// Moves a case like `update_case` and stores `entry` (a confirmed stolen account's
    /// block) in the same transaction: both or neither. `assignee_key`, when given, records
    /// the id of the API key that now holds the case (the owner of a claim).
    pub async fn update_case_with_entry(
        &self,
        case: &CaseRow,
        expected_status: &str,
        log: &CaseLogRow,
        entry: Option<&ListEntryRow>,
        assignee_key: Option<&str>,
        publications: &[PublicationRow],
    ) -> Result<bool, StoreError> {
        on_pool!(&self.database, pool => {
            let mut transaction = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE risk_cases SET status = $1, assignee = $2, updated_at = $3, \
                 assignee_key = COALESCE($6, assignee_key) WHERE id = $4 AND status = $5",
            )
            .bind(&case.status)
            .bind(&case.assignee)
            .bind(case.updated_at)
            .bind(&case.id)
            .bind(expected_status)
            .bind(assignee_key)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if updated != 1 {
                transaction.rollback().await?;
                return Ok(false);
            }
            insert_log!(&mut *transaction, log);
            if let Some(entry) = entry {
                insert_list_entry!(&mut *transaction, entry);
            }
            for publication in publications {
                insert_publication!(&mut *transaction, publication);
            }
            transaction.commit().await?;
            Ok(true)
        })
    }

    /// The id of the API key that claimed case `id`; `None` for a case never claimed, or
    /// claimed before key ids were recorded (its owner is then known only by name).
    pub async fn case_assignee_key(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = on_pool!(&self.database, pool => {
            sqlx::query_as("SELECT assignee_key FROM risk_cases WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(key,)| key))
    }

    pub async fn add_case_note(&self, log: &CaseLogRow) -> Result<(), StoreError> {
        on_pool!(&self.database, pool => {
            let mut transaction = pool.begin().await?;
            insert_log!(&mut *transaction, log);
            transaction.commit().await?;
            Ok(())
        })
    }

    pub async fn case(&self, id: &str) -> Result<Option<CaseRow>, StoreError> {
        let sql = format!("{CASE_COLUMNS} WHERE id = $1");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?)
        })
    }

    pub async fn cases(&self, status: &str, limit: i64) -> Result<Vec<CaseRow>, StoreError> {
        let sql =
            format!("{CASE_COLUMNS} WHERE status = $1 ORDER BY priority, created_at, id LIMIT $2");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(status).bind(limit).fetch_all(pool).await?)
        })
    }

    /// One page of the queue: the cases of one status (and kind, and claimed by one key,
    /// when given), stolen-account claims first, then held deliveries, then reviews, oldest
    /// first within each.
    pub async fn case_queue(&self, queue: &CaseQueue) -> Result<Vec<CaseRow>, StoreError> {
        // A NULL parameter leaves its condition out.
        let order = queue.order();
        let sql = format!(
            "{CASE_COLUMNS} WHERE status = $1 AND ($2 IS NULL OR kind = $2) \
             AND ($3 IS NULL OR assignee_key = $3) \
             {order} LIMIT $4 OFFSET $5"
        );
        // Fixed column list and order columns; the filters are bound parameters.
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(&queue.status)
                .bind(&queue.kind)
                .bind(&queue.assignee_key)
                .bind(queue.limit)
                .bind(queue.offset)
                .fetch_all(pool)
                .await?)
        })
    }

    /// The cases of `customer`, newest first, at most `limit`.
    pub async fn customer_cases(
        &self,
        customer: &str,
        limit: i64,
    ) -> Result<Vec<CaseRow>, StoreError> {
        let sql =
            format!("{CASE_COLUMNS} WHERE customer = $1 ORDER BY created_at DESC, id LIMIT $2");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer).bind(limit).fetch_all(pool).await?)
        })
    }

    pub async fn case_log(&self, case_id: &str) -> Result<Vec<CaseLogRow>, StoreError> {
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(
                "SELECT id, case_id, at, actor, action, note FROM risk_case_log WHERE case_id = $1 ORDER BY at, id",
            )
            .bind(case_id)
            .fetch_all(pool)
            .await?)
        })
    }
}
