//! Sorted, paged lists of payments, merchants and settlement runs, for the operations
//! console's tables. A sort names one of a fixed set of columns ([`ListPage::new`]
//! refuses anything else, so no text from a request reaches the SQL), and every order ends
//! with the table's key, so a page boundary never drops or repeats a row.

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;
use crate::merchants::{SettlementRunRow, StatementRow};

/// A page of a list: the sort (one of the list's sorts), the direction, and the rows to
/// skip and take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    sort: &'static str,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

impl ListPage {
    /// A page sorted by `sort` (the first of `sorts` when `None`), or why not: a sort
    /// that is not one of `sorts`, a negative offset, a limit below 1.
    pub fn new(
        sorts: &[&'static str],
        sort: Option<&str>,
        descending: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Self, String> {
        let sort = match sort {
            None => sorts.first().copied().unwrap_or("id"),
            Some(name) => sorts
                .iter()
                .find(|known| **known == name)
                .copied()
                .ok_or_else(|| format!("sort {name:?} is not one of {}", sorts.join(", ")))?,
        };
        if offset < 0 {
            return Err(format!("page offset {offset} is below 0"));
        }
        if limit < 1 {
            return Err(format!("page size {limit} is below 1"));
        }
        Ok(ListPage {
            sort,
            descending,
            offset,
            limit,
        })
    }

    /// The sort's name.
    pub fn sort(&self) -> &'static str {
        self.sort
    }
}

/// Sorts of [`Database::payments_list`], the first the default.
pub const PAYMENT_SORTS: [&str; 5] = ["created_at", "amount", "status", "merchant", "customer"];
/// Sorts of [`Database::merchants_list`], the first the default.
pub const MERCHANT_SORTS: [&str; 4] = ["id", "status", "category", "created_at"];
/// Sorts of the risk case queue (`crate::risk::CaseQueue::sort`), the first the default.
pub const CASE_SORTS: [&str; 5] = ["priority", "created_at", "kind", "customer", "assignee"];
/// Sorts of [`Database::settlement_runs_list`], the first the default.
pub const SETTLEMENT_RUN_SORTS: [&str; 3] = ["business_date", "merchants_settled", "status"];

/// A payment as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentListRow {
    pub id: String,
    pub merchant_id: String,
    pub customer: String,
    pub currency: String,
    pub amount_minor: i64,
    pub status: String,
    pub created_at: i64,
}

/// A merchant as a list shows it (no sealed field).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MerchantListRow {
    pub id: String,
    pub status: String,
    pub currency: String,
    pub category_code: String,
    pub created_at: i64,
}

/// `ORDER BY` of `page` over `columns` (sort name → SQL column), ending with `key`. A
/// sort of another list (which [`ListPage::new`] would not make for this one) orders by
/// the key alone.
pub(crate) fn order_by(page: &ListPage, columns: &[(&str, &str)], key: &str) -> String {
    let column = columns
        .iter()
        .find(|(name, _)| *name == page.sort)
        .map_or(key, |(_, column)| *column);
    let direction = if page.descending { "DESC" } else { "ASC" };
    if column == key {
        format!("ORDER BY {key} {direction}")
    } else {
        format!("ORDER BY {column} {direction}, {key} {direction}")
    }
}

impl Database {
    /// One page of every payment.
    pub async fn payments_list(&self, page: &ListPage) -> Result<Vec<PaymentListRow>, StoreError> {
        let order = order_by(
            page,
            &[
                ("created_at", "created_at"),
                ("amount", "amount_minor"),
                ("status", "status"),
                ("merchant", "merchant_id"),
                ("customer", "customer"),
            ],
            "id",
        );
        let sql = format!(
            "SELECT id, merchant_id, customer, currency, amount_minor, status, created_at \
             FROM payments {order} LIMIT $1 OFFSET $2"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await?
        }))
    }

    /// One page of every merchant.
    pub async fn merchants_list(
        &self,
        page: &ListPage,
    ) -> Result<Vec<MerchantListRow>, StoreError> {
        let order = order_by(
            page,
            &[
                ("id", "id"),
                ("status", "status"),
                ("category", "category_code"),
                ("created_at", "created_at"),
            ],
            "id",
        );
        let sql = format!(
            "SELECT id, status, currency, category_code, created_at FROM merchants {order} \
             LIMIT $1 OFFSET $2"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await?
        }))
    }

    /// One page of the settlement runs.
    pub async fn settlement_runs_list(
        &self,
        page: &ListPage,
    ) -> Result<Vec<SettlementRunRow>, StoreError> {
        let order = order_by(
            page,
            &[
                ("business_date", "business_date"),
                ("merchants_settled", "merchants_settled"),
                ("status", "status"),
            ],
            "business_date",
        );
        let sql = format!(
            "SELECT business_date, status, cursor, merchants_settled, started_at, finished_at \
             FROM settlement_runs {order} LIMIT $1 OFFSET $2"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await?
        }))
    }

    /// A merchant's statements across runs, newest business date first, at most `limit`
    /// after skipping `offset`.
    pub async fn statements_of_merchant(
        &self,
        merchant_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<StatementRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM settlement_statements WHERE merchant_id = $1 \
             ORDER BY business_date DESC, currency LIMIT $2 OFFSET $3",
            crate::merchants::STATEMENT_COLUMNS
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(merchant_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_ends_with_the_key_and_unknown_sorts_are_refused() {
        let columns = [("amount", "amount_minor"), ("id", "id")];
        let sorts = ["amount", "id"];
        let page = |sort: &str, descending| ListPage::new(&sorts, Some(sort), descending, 0, 10);
        assert_eq!(
            order_by(&page("amount", true).unwrap(), &columns, "id"),
            "ORDER BY amount_minor DESC, id DESC"
        );
        assert_eq!(
            order_by(&page("id", false).unwrap(), &columns, "id"),
            "ORDER BY id ASC"
        );
        assert_eq!(
            page("amount_minor; DROP TABLE x", false),
            Err("sort \"amount_minor; DROP TABLE x\" is not one of amount, id".into())
        );
        let default = ListPage::new(&sorts, None, false, 0, 10).unwrap();
        assert_eq!(default.sort(), "amount");
        assert!(ListPage::new(&sorts, None, false, -1, 10).is_err());
        assert!(ListPage::new(&sorts, None, false, 0, 0).is_err());
    }
}
