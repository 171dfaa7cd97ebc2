//! The SQL of the store, written once and compiled for each backend. The statements use
//! only syntax both SQLite and PostgreSQL accept (`$n` parameters, `ON CONFLICT`, `CAST`),
//! so the macro below instantiates the same functions for `sqlx::Sqlite` and
//! `sqlx::Postgres`.

macro_rules! backend {
    ($module:ident, $database:ty, $begin:expr, $marker:expr, $marker_step:expr) => {
        pub(crate) mod $module {
            use crate::error::StoreError;
            use crate::rows::{
                metadata_text, micros, AccountRow, CurrencyTotals, EntryRow, HoldRow,
                IdempotencyRow, LegRow,
            };
            use sqlx::{Pool, QueryBuilder};
            use tally_ledger::working::Effects;

            type Connection = <$database as sqlx::Database>::Connection;

            /// Rows per multi-row statement: well under both engines' bind-parameter limits.
            const ROWS_PER_STATEMENT_MAX: usize = 500;

            const ACCOUNT_COLUMNS: &str = "SELECT a.id, a.code, a.kind, a.currency, \
                a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits, \
                a.metadata, a.created_at, b.debits_posted, b.credits_posted, b.debits_pending, \
                b.credits_pending, b.leg_count, b.last_posted_at, a.owner \
                FROM accounts a JOIN account_balances b ON b.account_id = a.id";

            const HOLD_COLUMNS: &str = "SELECT id, debit_account_id, credit_account_id, amount, \
                currency, description, metadata, status, created_at, expires_at, resolved_at, \
                posted_amount, entry_id FROM holds";

            const LEG_COLUMNS: &str = "SELECT account_id, sequence, entry_id, side, amount, \
                currency, posted_at, debits_posted_after, credits_posted_after FROM journal_legs";

            /// Starts the batch transaction, holding the database's write lock until commit.
            pub async fn begin(connection: &mut Connection) -> Result<(), StoreError> {
                for statement in $begin {
                    sqlx::query(statement).execute(&mut *connection).await?;
                }
                Ok(())
            }

            /// A number that changes when another connection commits, read inside the batch
            /// transaction, and how much this writer's own commit moves it.
            pub async fn change_marker(connection: &mut Connection) -> Result<(i64, i64), StoreError> {
                let (marker,): (i64,) = sqlx::query_as($marker).fetch_one(&mut *connection).await?;
                Ok((marker, $marker_step))
            }

            pub async fn commit(connection: &mut Connection) -> Result<(), StoreError> {
                sqlx::query("COMMIT").execute(&mut *connection).await?;
                Ok(())
            }

            pub async fn rollback(connection: &mut Connection) -> Result<(), StoreError> {
                sqlx::query("ROLLBACK").execute(&mut *connection).await?;
                Ok(())
            }

            fn push_in_list(query: &mut QueryBuilder<$database>, values: &[String]) {
                query.push(" (");
                let mut separated = query.separated(", ");
                for value in values {
                    separated.push_bind(value.as_str());
                }
                separated.push_unseparated(")");
            }

            pub async fn load_accounts(
                connection: &mut Connection,
                ids: &[String],
            ) -> Result<Vec<AccountRow>, StoreError> {
                let mut rows = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::new(ACCOUNT_COLUMNS);
                    query.push(" WHERE a.id IN");
                    push_in_list(&mut query, chunk);
                    rows.extend(query.build_query_as::<AccountRow>().fetch_all(&mut *connection).await?);
                }
                Ok(rows)
            }

            /// Accounts with their balances whose `column` (`a.id` or `a.code`) is one of
            /// `values`, read from the pool in statements of at most
            /// `ROWS_PER_STATEMENT_MAX` values.
            pub async fn accounts_where_in(
                pool: &Pool<$database>,
                column: &'static str,
                values: &[String],
            ) -> Result<Vec<AccountRow>, StoreError> {
                let mut rows = Vec::with_capacity(values.len());
                for chunk in values.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::new(ACCOUNT_COLUMNS);
                    query.push(" WHERE ");
                    query.push(column);
                    query.push(" IN");
                    push_in_list(&mut query, chunk);
                    rows.extend(query.build_query_as::<AccountRow>().fetch_all(pool).await?);
                }
                Ok(rows)
            }

            pub async fn load_holds(
                connection: &mut Connection,
                ids: &[String],
            ) -> Result<Vec<HoldRow>, StoreError> {
                let mut rows = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::new(HOLD_COLUMNS);
                    query.push(" WHERE id IN");
                    push_in_list(&mut query, chunk);
                    rows.extend(query.build_query_as::<HoldRow>().fetch_all(&mut *connection).await?);
                }
                Ok(rows)
            }

            pub async fn due_holds(
                connection: &mut Connection,
                now: i64,
                limit: i64,
            ) -> Result<Vec<HoldRow>, StoreError> {
                let sql = format!(
                    "{HOLD_COLUMNS} WHERE status = 'pending' AND expires_at <= $1 \
                     ORDER BY expires_at LIMIT $2"
                );
                Ok(sqlx::query_as::<_, HoldRow>(sqlx::AssertSqlSafe(sql))
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&mut *connection)
                    .await?)
            }

            /// The earliest deadline of a hold still pending after `after`.
            pub async fn next_pending_expiry(
                connection: &mut Connection,
                after: i64,
            ) -> Result<Option<i64>, StoreError> {
                let (earliest,): (Option<i64>,) = sqlx::query_as(
                    "SELECT MIN(expires_at) FROM holds WHERE status = 'pending' AND expires_at > $1",
                )
                .bind(after)
                .fetch_one(&mut *connection)
                .await?;
                Ok(earliest)
            }

            pub async fn taken_codes(
                connection: &mut Connection,
                codes: &[String],
            ) -> Result<Vec<String>, StoreError> {
                let mut taken = Vec::new();
                for chunk in codes.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::new("SELECT code FROM accounts WHERE code IN");
                    push_in_list(&mut query, chunk);
                    let rows: Vec<(String,)> = query.build_query_as().fetch_all(&mut *connection).await?;
                    taken.extend(rows.into_iter().map(|(code,)| code));
                }
                Ok(taken)
            }

            pub async fn stored_keys(
                connection: &mut Connection,
                keys: &[String],
            ) -> Result<Vec<IdempotencyRow>, StoreError> {
                let mut rows = Vec::new();
                for chunk in keys.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::new(
                        "SELECT key, request_hash, outcome FROM idempotency_keys WHERE key IN",
                    );
                    push_in_list(&mut query, chunk);
                    rows.extend(query.build_query_as::<IdempotencyRow>().fetch_all(&mut *connection).await?);
                }
                Ok(rows)
            }

            /// Writes everything a batch changed, inside the open batch transaction.
            pub async fn write_effects(
                connection: &mut Connection,
                effects: &Effects,
                keys: &[(String, String, String)],
                now: i64,
            ) -> Result<(), StoreError> {
                for chunk in effects.new_accounts.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::<$database>::new(
                        "INSERT INTO accounts (id, code, kind, currency, \
                         debits_must_not_exceed_credits, credits_must_not_exceed_debits, \
                         metadata, created_at, owner) ",
                    );
                    query.push_values(chunk, |mut row, account| {
                        row.push_bind(account.id.to_string())
                            .push_bind(account.code.clone())
                            .push_bind(account.kind.as_str())
                            .push_bind(account.currency.code().to_string())
                            .push_bind(account.flags.debits_must_not_exceed_credits)
                            .push_bind(account.flags.credits_must_not_exceed_debits)
                            .push_bind(metadata_text(&account.metadata))
                            .push_bind(micros(account.created_at))
                            .push_bind(account.owner.clone());
                    });
                    query.build().execute(&mut *connection).await?;
                }
                for chunk in effects.balances.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::<$database>::new(
                        "INSERT INTO account_balances (account_id, debits_posted, credits_posted, \
                         debits_pending, credits_pending, leg_count, last_posted_at) ",
                    );
                    query.push_values(chunk, |mut row, (id, balance, leg_count, last_posted_at)| {
                        row.push_bind(id.to_string())
                            .push_bind(balance.debits_posted)
                            .push_bind(balance.credits_posted)
                            .push_bind(balance.debits_pending)
                            .push_bind(balance.credits_pending)
                            .push_bind(*leg_count)
                            .push_bind(last_posted_at.map(micros));
                    });
                    query.push(
                        " ON CONFLICT (account_id) DO UPDATE SET \
                         debits_posted = excluded.debits_posted, \
                         credits_posted = excluded.credits_posted, \
                         debits_pending = excluded.debits_pending, \
                         credits_pending = excluded.credits_pending, \
                         leg_count = excluded.leg_count, \
                         last_posted_at = excluded.last_posted_at",
                    );
                    query.build().execute(&mut *connection).await?;
                }
                for chunk in effects.entries.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::<$database>::new(
                        "INSERT INTO journal_entries (id, description, metadata, hold_id, posted_at) ",
                    );
                    query.push_values(chunk, |mut row, entry| {
                        row.push_bind(entry.id.to_string())
                            .push_bind(entry.description.clone())
                            .push_bind(metadata_text(&entry.metadata))
                            .push_bind(entry.hold_id.map(|id| id.to_string()))
                            .push_bind(micros(entry.posted_at));
                    });
                    query.build().execute(&mut *connection).await?;
                }
                // A leg's index within its entry: legs arrive entry by entry, in order.
                let mut leg_indexes = Vec::with_capacity(effects.legs.len());
                let mut previous = None;
                let mut index = 0_i64;
                for leg in &effects.legs {
                    if previous == Some(leg.entry_id) {
                        index += 1;
                    } else {
                        index = 0;
                        previous = Some(leg.entry_id);
                    }
                    leg_indexes.push(index);
                }
                let indexed: Vec<_> = effects.legs.iter().zip(leg_indexes).collect();
                for chunk in indexed.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::<$database>::new(
                        "INSERT INTO journal_legs (account_id, sequence, entry_id, leg_index, side, \
                         amount, currency, posted_at, debits_posted_after, credits_posted_after) ",
                    );
                    query.push_values(chunk, |mut row, (leg, leg_index)| {
                        row.push_bind(leg.account_id.to_string())
                            .push_bind(leg.sequence)
                            .push_bind(leg.entry_id.to_string())
                            .push_bind(*leg_index)
                            .push_bind(leg.side.as_str())
                            .push_bind(leg.amount.minor())
                            .push_bind(leg.amount.currency().code().to_string())
                            .push_bind(micros(leg.posted_at))
                            .push_bind(leg.balance_after.debits_posted)
                            .push_bind(leg.balance_after.credits_posted);
                    });
                    query.build().execute(&mut *connection).await?;
                }
                let holds: Vec<_> = effects.new_holds.iter().chain(&effects.resolved_holds).collect();
                for chunk in holds.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::<$database>::new(
                        "INSERT INTO holds (id, debit_account_id, credit_account_id, amount, currency, \
                         description, metadata, status, created_at, expires_at, resolved_at, \
                         posted_amount, entry_id) ",
                    );
                    query.push_values(chunk, |mut row, hold| {
                        row.push_bind(hold.id.to_string())
                            .push_bind(hold.debit_account_id.to_string())
                            .push_bind(hold.credit_account_id.to_string())
                            .push_bind(hold.amount.minor())
                            .push_bind(hold.amount.currency().code().to_string())
                            .push_bind(hold.description.clone())
                            .push_bind(metadata_text(&hold.metadata))
                            .push_bind(hold.status.as_str())
                            .push_bind(micros(hold.created_at))
                            .push_bind(micros(hold.expires_at))
                            .push_bind(hold.resolved_at.map(micros))
                            .push_bind(hold.posted_amount.map(|amount| amount.minor()))
                            .push_bind(hold.entry_id.map(|id| id.to_string()));
                    });
                    query.push(
                        " ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
                         resolved_at = excluded.resolved_at, \
                         posted_amount = excluded.posted_amount, entry_id = excluded.entry_id",
                    );
                    query.build().execute(&mut *connection).await?;
                }
                for chunk in keys.chunks(ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::<$database>::new(
                        "INSERT INTO idempotency_keys (key, request_hash, outcome, created_at) ",
                    );
                    query.push_values(chunk, |mut row, (key, hash, outcome)| {
                        row.push_bind(key.as_str())
                            .push_bind(hash.as_str())
                            .push_bind(outcome.as_str())
                            .push_bind(now);
                    });
                    query.build().execute(&mut *connection).await?;
                }
                Ok(())
            }

            pub async fn account(pool: &Pool<$database>, id: &str) -> Result<Option<AccountRow>, StoreError> {
                let sql = format!("{ACCOUNT_COLUMNS} WHERE a.id = $1");
                Ok(sqlx::query_as::<_, AccountRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?)
            }

            pub async fn hold(pool: &Pool<$database>, id: &str) -> Result<Option<HoldRow>, StoreError> {
                let sql = format!("{HOLD_COLUMNS} WHERE id = $1");
                Ok(sqlx::query_as::<_, HoldRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?)
            }

            pub async fn entry(
                pool: &Pool<$database>,
                id: &str,
            ) -> Result<Option<(EntryRow, Vec<LegRow>)>, StoreError> {
                let entry = sqlx::query_as::<_, EntryRow>(
                    "SELECT id, description, metadata, hold_id, posted_at FROM journal_entries WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await?;
                let Some(entry) = entry else { return Ok(None) };
                let sql = format!("{LEG_COLUMNS} WHERE entry_id = $1 ORDER BY leg_index");
                let legs = sqlx::query_as::<_, LegRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_all(pool).await?;
                Ok(Some((entry, legs)))
            }

            pub async fn legs_page(
                pool: &Pool<$database>,
                account_id: &str,
                after_sequence: i64,
                limit: i64,
            ) -> Result<Vec<LegRow>, StoreError> {
                let sql = format!(
                    "{LEG_COLUMNS} WHERE account_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3"
                );
                Ok(sqlx::query_as::<_, LegRow>(sqlx::AssertSqlSafe(sql))
                    .bind(account_id)
                    .bind(after_sequence)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?)
            }

            /// Posted debit and credit totals of an account right after its last leg at or
            /// before `at`.
            pub async fn posted_as_of(
                pool: &Pool<$database>,
                account_id: &str,
                at: i64,
            ) -> Result<Option<(i64, i64)>, StoreError> {
                // An account's legs are posted in time order (the writer's clock never runs
                // backwards), so the legs at or before `at` are a prefix of its sequence.
                // The sampled index gives the last indexed leg of that prefix; the answer
                // is among the next 64 legs.
                let sampled: Option<(i64,)> = sqlx::query_as(
                    "SELECT sequence FROM journal_legs \
                     WHERE account_id = $1 AND sequence % 64 = 0 AND posted_at <= $2 \
                     ORDER BY posted_at DESC, sequence DESC LIMIT 1",
                )
                .bind(account_id)
                .bind(at)
                .fetch_optional(pool)
                .await?;
                let from = sampled.map(|(sequence,)| sequence).unwrap_or(0);
                Ok(sqlx::query_as::<_, (i64, i64)>(
                    "SELECT debits_posted_after, credits_posted_after FROM journal_legs \
                     WHERE account_id = $1 AND sequence >= $2 AND sequence < $3 AND posted_at <= $4 \
                     ORDER BY sequence DESC LIMIT 1",
                )
                .bind(account_id)
                .bind(from)
                .bind(from + 64)
                .bind(at)
                .fetch_optional(pool)
                .await?)
            }

            /// Amounts held on an account at `at`: holds created by then and neither
            /// resolved nor past their deadline by then.
            pub async fn pending_as_of(
                pool: &Pool<$database>,
                account_id: &str,
                at: i64,
            ) -> Result<(i64, i64), StoreError> {
                Ok(sqlx::query_as::<_, (i64, i64)>(
                    "SELECT \
                     CAST(COALESCE(SUM(CASE WHEN debit_account_id = $1 THEN amount ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN credit_account_id = $1 THEN amount ELSE 0 END), 0) AS BIGINT) \
                     FROM holds WHERE (debit_account_id = $1 OR credit_account_id = $1) \
                     AND created_at <= $2 AND expires_at > $2 \
                     AND (resolved_at IS NULL OR resolved_at > $2)",
                )
                .bind(account_id)
                .bind(at)
                .fetch_one(pool)
                .await?)
            }

            /// Each total is summed in two halves (the high and the low 32 bits of every
            /// balance), each of which fits in a BIGINT sum for up to 2^31 accounts, and
            /// joined in `i128`: a plain `SUM` of two valid balances near `i64::MAX` would
            /// overflow (an error on both engines).
            pub async fn currency_totals(pool: &Pool<$database>) -> Result<Vec<CurrencyTotals>, StoreError> {
                let rows: Vec<(String, i64, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
                    "SELECT a.currency, \
                     CAST(SUM(b.debits_posted >> 32) AS BIGINT), \
                     CAST(SUM(b.debits_posted & 4294967295) AS BIGINT), \
                     CAST(SUM(b.credits_posted >> 32) AS BIGINT), \
                     CAST(SUM(b.credits_posted & 4294967295) AS BIGINT), \
                     CAST(SUM(b.debits_pending >> 32) AS BIGINT), \
                     CAST(SUM(b.debits_pending & 4294967295) AS BIGINT), \
                     CAST(SUM(b.credits_pending >> 32) AS BIGINT), \
                     CAST(SUM(b.credits_pending & 4294967295) AS BIGINT) \
                     FROM accounts a JOIN account_balances b ON b.account_id = a.id \
                     GROUP BY a.currency ORDER BY a.currency",
                )
                .fetch_all(pool)
                .await?;
                let join = |high: i64, low: i64| (i128::from(high) << 32) + i128::from(low);
                Ok(rows
                    .into_iter()
                    .map(|(currency, dh, dl, ch, cl, dph, dpl, cph, cpl)| CurrencyTotals {
                        currency,
                        debits_posted: join(dh, dl),
                        credits_posted: join(ch, cl),
                        debits_pending: join(dph, dpl),
                        credits_pending: join(cph, cpl),
                    })
                    .collect())
            }

            /// Accounts whose stored balance differs from the sum of their legs, or whose
            /// leg count differs from their number of legs. Empty when the books are sound.
            pub async fn inconsistent_accounts(pool: &Pool<$database>) -> Result<Vec<String>, StoreError> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT b.account_id FROM account_balances b LEFT JOIN ( \
                       SELECT account_id, \
                       CAST(SUM(CASE WHEN side = 'debit' THEN amount ELSE 0 END) AS BIGINT) AS debits, \
                       CAST(SUM(CASE WHEN side = 'credit' THEN amount ELSE 0 END) AS BIGINT) AS credits, \
                       CAST(COUNT(*) AS BIGINT) AS legs \
                       FROM journal_legs GROUP BY account_id) l ON l.account_id = b.account_id \
                     WHERE b.debits_posted <> COALESCE(l.debits, 0) \
                        OR b.credits_posted <> COALESCE(l.credits, 0) \
                        OR b.leg_count <> COALESCE(l.legs, 0) \
                     ORDER BY b.account_id",
                )
                .fetch_all(pool)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }
        }
    };
}

backend!(
    sqlite,
    sqlx::Sqlite,
    ["BEGIN IMMEDIATE"],
    // Every batch of every writer moves it by one, under SQLite's write lock.
    "UPDATE writer_epoch SET version = version + 1 WHERE id = 1 RETURNING version",
    1
);
backend!(
    postgres,
    sqlx::Postgres,
    [
        // READ COMMITTED whatever the server's default: each statement must see what the
        // writer before this one committed under the lock below. Under REPEATABLE READ the
        // snapshot would be taken by the lock statement itself, before the wait, and the
        // batch would read stale balances (or fail to update the epoch).
        "BEGIN ISOLATION LEVEL READ COMMITTED",
        // One batch at a time per schema, across every process writing to it.
        "SELECT pg_advisory_xact_lock(hashtext(current_schema()))",
    ],
    // Every batch of every writer moves it by one, under the lock above.
    "UPDATE writer_epoch SET version = version + 1 WHERE id = 1 RETURNING version",
    1
);
