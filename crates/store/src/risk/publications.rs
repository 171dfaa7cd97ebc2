//! Storage of what confirmed cases publish to the consortium log: an outbox of
//! identifiers written with the case's move, each signed (and stored) before it is sent,
//! then marked published or refused with a line in its case's trail.

use super::{insert_log, CaseLogRow, RiskStore};
use crate::credit::on_pool;
use crate::error::StoreError;

/// An identifier a confirmed case publishes to the consortium log (the outbox of migration
/// `consortium_publications`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PublicationRow {
    pub id: String,
    pub case_id: String,
    /// The consortium's identifier kind (`device`).
    pub kind: String,
    /// The identifier as the events carry it.
    pub identifier: String,
    pub risk_type: String,
    pub severity: i32,
    /// When the record stops being live, Unix seconds.
    pub expires_at: i64,
    pub created_at: i64,
    /// pending, published or refused.
    pub status: String,
    /// The signed request, base64, once signed (stored before it is sent).
    pub request: Option<String>,
    /// The salt of the request's identifier commitment, hex.
    pub salt: Option<String>,
    /// The log's size when the request was signed: where to look for it in the log.
    pub search_from: Option<i64>,
    pub record_index: Option<i64>,
    pub published_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

const PUBLICATION_COLUMNS: &str = "SELECT id, case_id, kind, identifier, risk_type, severity, \
    expires_at, created_at, status, request, salt, search_from, record_index, published_at, \
    attempts, last_error FROM consortium_publications";

/// Writes a publication to the outbox on `$executor` (the transaction of the case's move);
/// one already there for the case and identifier stays as it is.
macro_rules! insert_publication {
    ($executor:expr, $publication:expr) => {{
        let publication: &PublicationRow = $publication;
        sqlx::query(
            "INSERT INTO consortium_publications (id, case_id, kind, identifier, \
             risk_type, severity, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (case_id, kind, identifier) DO NOTHING",
        )
        .bind(&publication.id)
        .bind(&publication.case_id)
        .bind(&publication.kind)
        .bind(&publication.identifier)
        .bind(&publication.risk_type)
        .bind(publication.severity)
        .bind(publication.expires_at)
        .bind(publication.created_at)
        .execute($executor)
        .await?;
    }};
}
pub(crate) use insert_publication;

impl RiskStore {
    /// Publications to the consortium log not yet published or refused, oldest first.
    pub async fn pending_publications(
        &self,
        limit: i64,
    ) -> Result<Vec<PublicationRow>, StoreError> {
        let sql = format!(
            "{PUBLICATION_COLUMNS} WHERE status = 'pending' ORDER BY created_at, id LIMIT $1"
        );
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await?)
        })
    }

    /// The publications of case `case_id`, in the order they were written.
    pub async fn case_publications(
        &self,
        case_id: &str,
    ) -> Result<Vec<PublicationRow>, StoreError> {
        let sql = format!("{PUBLICATION_COLUMNS} WHERE case_id = $1 ORDER BY created_at, id");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(case_id).fetch_all(pool).await?)
        })
    }

    /// Replaces a pending publication's signed request (`expected`: the one it holds), so
    /// that it is stored before it is sent; false when another replaced it first (or it is
    /// no longer pending).
    pub async fn sign_publication(
        &self,
        id: &str,
        request: Option<&str>,
        salt: Option<&str>,
        search_from: Option<i64>,
        expected: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(&self.database, pool => {
            sqlx::query(
                "UPDATE consortium_publications SET request = $1, salt = $2, search_from = $3 \
                 WHERE id = $4 AND status = 'pending' AND request IS NOT DISTINCT FROM $5",
            )
            .bind(request)
            .bind(salt)
            .bind(search_from)
            .bind(id)
            .bind(expected)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// A failed attempt: counted, with its error.
    pub async fn publication_attempt_failed(
        &self,
        id: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, pool => {
            sqlx::query("UPDATE consortium_publications SET attempts = attempts + 1, last_error = $1 WHERE id = $2")
                .bind(error)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Marks a publication published (`record_index`) or refused for good (`None`, with
    /// `error`) with its case's trail line, in one transaction; false when it was no longer
    /// pending.
    pub async fn finish_publication(
        &self,
        id: &str,
        record_index: Option<i64>,
        at: i64,
        error: Option<&str>,
        log: &CaseLogRow,
    ) -> Result<bool, StoreError> {
        let status = if record_index.is_some() {
            "published"
        } else {
            "refused"
        };
        on_pool!(&self.database, pool => {
            let mut transaction = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE consortium_publications SET status = $1, record_index = $2, \
                 published_at = $3, last_error = COALESCE($4, last_error), attempts = attempts + 1 \
                 WHERE id = $5 AND status = 'pending'",
            )
            .bind(status)
            .bind(record_index)
            .bind(record_index.map(|_| at))
            .bind(error)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
            if done.rows_affected() != 1 {
                transaction.rollback().await?;
                return Ok(false);
            }
            insert_log!(&mut *transaction, log);
            transaction.commit().await?;
            Ok(true)
        })
    }
}
