//! Storage of stolen-account claims: the claim beside its case, how far the customer's
//! credit lines followed it, and the customer's re-verification.

use super::{insert_case, insert_log, CaseLogRow, CaseRow, ListEntryRow, RiskStore, LIST_COLUMNS};
use crate::credit::on_pool;
use crate::error::StoreError;

/// A stolen-account claim beside its case (see migration `stolen_account_claims`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimRow {
    pub case_id: String,
    /// Microseconds since the epoch.
    pub compromised_at: Option<i64>,
    pub police_reference: Option<String>,
    /// How far the customer's credit lines followed the case: none, frozen, confirmed,
    /// ended, restoring, restored.
    pub followed_up: String,
    pub restored_at: Option<i64>,
    pub restored_by: Option<String>,
}

const CLAIM_COLUMNS: &str = "SELECT case_id, compromised_at, police_reference, \
    followed_up, restored_at, restored_by FROM stolen_account_claims";

impl RiskStore {
    /// Stores a stolen-account case with its claim, in one transaction.
    pub async fn insert_claim(
        &self,
        case: &CaseRow,
        log: &CaseLogRow,
        claim: &ClaimRow,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, pool => {
            let mut transaction = pool.begin().await?;
            insert_case!(&mut *transaction, case, log);
            sqlx::query(
                "INSERT INTO stolen_account_claims \
                 (case_id, compromised_at, police_reference, followed_up, restored_at, restored_by) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&claim.case_id)
            .bind(claim.compromised_at)
            .bind(&claim.police_reference)
            .bind(&claim.followed_up)
            .bind(claim.restored_at)
            .bind(&claim.restored_by)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
            Ok(())
        })
    }

    /// The claim of case `case_id`, if it is a stolen-account case made with one.
    pub async fn claim(&self, case_id: &str) -> Result<Option<ClaimRow>, StoreError> {
        let sql = format!("{CLAIM_COLUMNS} WHERE case_id = $1");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(case_id).fetch_optional(pool).await?)
        })
    }

    /// Claims whose customer's credit lines have not yet followed the case (a crash between
    /// the case's move and the credit steps leaves such a claim).
    pub async fn claims_to_follow_up(&self) -> Result<Vec<ClaimRow>, StoreError> {
        let sql = format!(
            "{CLAIM_COLUMNS} WHERE followed_up <> (CASE \
               WHEN restored_at IS NOT NULL THEN 'restored' \
               WHEN (SELECT status FROM risk_cases WHERE id = case_id) = 'approved' THEN 'confirmed' \
               WHEN (SELECT status FROM risk_cases WHERE id = case_id) = 'rejected' THEN 'ended' \
               ELSE 'frozen' END) ORDER BY case_id"
        );
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?)
        })
    }

    /// Records how far the credit lines followed claim `case_id`.
    pub async fn set_claim_followed_up(
        &self,
        case_id: &str,
        followed_up: &str,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, pool => {
            sqlx::query("UPDATE stolen_account_claims SET followed_up = $1 WHERE case_id = $2")
                .bind(followed_up)
                .bind(case_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records the customer's re-verification after claim `case_id`: the case's block list
    /// entries are removed (kept for the audit trail) and `log` is added, in one
    /// transaction. The removed entries; `None` when the claim was restored before.
    pub async fn restore_claim(
        &self,
        case_id: &str,
        log: &CaseLogRow,
    ) -> Result<Option<Vec<ListEntryRow>>, StoreError> {
        let source = format!("case {case_id}");
        let sql =
            format!("{LIST_COLUMNS} WHERE source = $1 AND kind = 'block' AND removed_at IS NULL");
        on_pool!(&self.database, pool => {
            let mut transaction = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE stolen_account_claims SET restored_at = $1, restored_by = $2, \
                 followed_up = 'restoring' WHERE case_id = $3 AND restored_at IS NULL",
            )
            .bind(log.at)
            .bind(&log.actor)
            .bind(case_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if updated != 1 {
                transaction.rollback().await?;
                return Ok(None);
            }
            let removed: Vec<ListEntryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(&source)
                .fetch_all(&mut *transaction)
                .await?;
            sqlx::query(
                "UPDATE risk_list_entries SET removed_at = $1, removed_by = $2 \
                 WHERE source = $3 AND kind = 'block' AND removed_at IS NULL",
            )
            .bind(log.at)
            .bind(&log.actor)
            .bind(&source)
            .execute(&mut *transaction)
            .await?;
            insert_log!(&mut *transaction, log);
            transaction.commit().await?;
            Ok(Some(removed))
        })
    }
}
