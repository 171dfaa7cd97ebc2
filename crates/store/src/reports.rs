//! Reads behind Tally's reports: the payment service's ledger accounts of one currency with
//! their posted legs of a time window summed by the kind of movement (taken from each
//! entry's metadata), and the gross and fee the merchant entries of that window carry.
//! Persistence only: what the figures mean is the service's (`tally_service::reports`).

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;

/// One account's posted legs of one kind of movement: what was posted in `[from, to)` and
/// what was posted at or after `to`, beside the account's posted totals now.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountMovementRow {
    pub code: String,
    pub kind: String,
    pub debits_posted: i64,
    pub credits_posted: i64,
    /// `capture` or `refund` (an entry's `merchant_movement`), `settlement` (a settlement
    /// run's entry), `other`, or `none` for an account without legs since `from`.
    pub movement: String,
    pub window_debits: i64,
    pub window_credits: i64,
    pub later_debits: i64,
    pub later_credits: i64,
}

/// What the merchant entries of one kind (`capture` or `refund`) posted in a window carry
/// in their metadata.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MerchantMovementRow {
    pub movement: String,
    pub entries: i64,
    pub gross: i64,
    pub fee: i64,
}

/// The text of `key` in an entry's metadata (a JSON object), in each backend's dialect.
fn metadata_text(sqlite: bool, key: &str) -> String {
    if sqlite {
        format!("json_extract(e.metadata, '$.{key}')")
    } else {
        format!("(e.metadata::jsonb ->> '{key}')")
    }
}

/// Accounts whose code starts with the prefix (`LIKE` with its wildcards escaped).
fn code_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for character in prefix.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

fn movements_sql(sqlite: bool) -> String {
    let movement = metadata_text(sqlite, "merchant_movement");
    let settlement = metadata_text(sqlite, "settlement");
    let sum = |condition: &str| {
        format!("CAST(COALESCE(SUM(CASE WHEN {condition} THEN l.amount ELSE 0 END), 0) AS BIGINT)")
    };
    // One statement, so the totals now and the legs since `from` are one snapshot on both
    // backends: opening and closing balances derived from them always agree.
    format!(
        "SELECT a.code, a.kind, b.debits_posted, b.credits_posted, \
         CASE WHEN l.entry_id IS NULL THEN 'none' \
              WHEN {movement} IN ('capture', 'refund') THEN {movement} \
              WHEN {settlement} IS NOT NULL THEN 'settlement' \
              ELSE 'other' END AS movement, \
         {window_debits} AS window_debits, {window_credits} AS window_credits, \
         {later_debits} AS later_debits, {later_credits} AS later_credits \
         FROM accounts a JOIN account_balances b ON b.account_id = a.id \
         LEFT JOIN journal_legs l ON l.account_id = a.id AND l.posted_at >= $3 \
         LEFT JOIN journal_entries e ON e.id = l.entry_id \
         WHERE a.currency = $1 AND a.code LIKE $2 ESCAPE '\\' \
         GROUP BY a.code, a.kind, b.debits_posted, b.credits_posted, 5 \
         ORDER BY a.code, 5",
        window_debits = sum("l.side = 'debit' AND l.posted_at < $4"),
        window_credits = sum("l.side = 'credit' AND l.posted_at < $4"),
        later_debits = sum("l.side = 'debit' AND l.posted_at >= $4"),
        later_credits = sum("l.side = 'credit' AND l.posted_at >= $4"),
    )
}

fn merchant_movements_sql(sqlite: bool) -> String {
    let movement = metadata_text(sqlite, "merchant_movement");
    let gross = metadata_text(sqlite, "gross");
    let fee = metadata_text(sqlite, "fee");
    // Every entry has a leg 0, so counting entries by it counts each once whatever its
    // other legs are (a capture whose fee took it all credits no pending account).
    format!(
        "SELECT {movement} AS movement, COUNT(*) AS entries, \
         CAST(COALESCE(SUM(CAST({gross} AS BIGINT)), 0) AS BIGINT) AS gross, \
         CAST(COALESCE(SUM(CAST({fee} AS BIGINT)), 0) AS BIGINT) AS fee \
         FROM journal_legs l JOIN accounts a ON a.id = l.account_id \
         JOIN journal_entries e ON e.id = l.entry_id \
         WHERE a.currency = $1 AND a.code LIKE $2 ESCAPE '\\' AND l.leg_index = 0 \
         AND l.posted_at >= $3 AND l.posted_at < $4 \
         AND {movement} IN ('capture', 'refund') \
         GROUP BY 1 ORDER BY 1"
    )
}

impl Database {
    /// Every account of `currency` whose code starts with `code_prefix`, with its posted
    /// legs from `from` on summed by kind of movement, split at `to` (microseconds).
    pub async fn account_movements(
        &self,
        currency: &str,
        code_prefix: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<AccountMovementRow>, StoreError> {
        let pattern = code_pattern(code_prefix);
        Ok(match self {
            Database::Sqlite(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(movements_sql(true)))
                    .bind(currency)
                    .bind(&pattern)
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(movements_sql(false)))
                    .bind(currency)
                    .bind(&pattern)
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// The merchant entries (captures and refunds) posted in `[from, to)` on accounts of
    /// `currency` whose code starts with `code_prefix`: how many, and the gross and fee
    /// their metadata carry, by kind.
    pub async fn merchant_movements(
        &self,
        currency: &str,
        code_prefix: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<MerchantMovementRow>, StoreError> {
        let pattern = code_pattern(code_prefix);
        Ok(on_pool!(self, pool => {
            let sqlite = matches!(self, Database::Sqlite(_));
            sqlx::query_as(sqlx::AssertSqlSafe(merchant_movements_sql(sqlite)))
                .bind(currency)
                .bind(&pattern)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?
        }))
    }
}
