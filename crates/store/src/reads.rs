//! Reads of the ledger, straight from the connection pool.

use crate::database::Database;
use crate::error::StoreError;
use crate::rows::{micros, CurrencyTotals, LegRow};
use jiff::Timestamp;
use tally_core::{AccountId, EntryId, HoldId};
use tally_ledger::{AccountState, Balance, Entry, Hold, LegRecord};

macro_rules! on_pool {
    ($database:expr, $function:ident ( $($argument:expr),* )) => {
        match $database {
            Database::Sqlite(pool) => crate::backend::sqlite::$function(pool, $($argument),*).await,
            Database::Postgres(pool) => crate::backend::postgres::$function(pool, $($argument),*).await,
        }
    };
}

/// Most legs one page of an account's entries may hold.
pub const PAGE_SIZE_MAX: i64 = 1000;

impl Database {
    pub async fn account(&self, id: AccountId) -> Result<Option<AccountState>, StoreError> {
        let id = id.to_string();
        on_pool!(self, account(&id))?
            .map(|row| row.into_state())
            .transpose()
    }

    /// The accounts among `ids` that exist, with their balances, in no particular order:
    /// one read for many accounts (a settlement chunk's balances after posting).
    pub async fn accounts_by_ids(
        &self,
        ids: &[AccountId],
    ) -> Result<Vec<AccountState>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        on_pool!(self, accounts_where_in("a.id", &ids))?
            .into_iter()
            .map(|row| row.into_state())
            .collect()
    }

    /// The accounts among `codes` that exist, with their balances, in no particular order.
    pub async fn accounts_by_codes(
        &self,
        codes: &[String],
    ) -> Result<Vec<AccountState>, StoreError> {
        on_pool!(self, accounts_where_in("a.code", codes))?
            .into_iter()
            .map(|row| row.into_state())
            .collect()
    }

    pub async fn hold(&self, id: HoldId) -> Result<Option<Hold>, StoreError> {
        let id = id.to_string();
        on_pool!(self, hold(&id))?
            .map(|row| row.into_hold())
            .transpose()
    }

    pub async fn entry(&self, id: EntryId) -> Result<Option<Entry>, StoreError> {
        let id = id.to_string();
        on_pool!(self, entry(&id))?
            .map(|(entry, legs)| entry.into_entry(legs))
            .transpose()
    }

    /// Legs of an account in posting order, after the sequence number `after` (0 for the
    /// first page). The last leg's sequence is the cursor of the next page.
    pub async fn account_legs(
        &self,
        id: AccountId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LegRecord>, StoreError> {
        let id = id.to_string();
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let rows: Vec<LegRow> = on_pool!(self, legs_page(&id, after, limit))?;
        rows.into_iter().map(LegRow::into_record).collect()
    }

    /// The account's balance as it stood at `at`: posted totals after its last leg at or
    /// before `at`, and the holds live at `at`.
    pub async fn balance_as_of(&self, id: AccountId, at: Timestamp) -> Result<Balance, StoreError> {
        let id = id.to_string();
        let at = micros(at);
        let posted = on_pool!(self, posted_as_of(&id, at))?;
        let (debits_pending, credits_pending) = on_pool!(self, pending_as_of(&id, at))?;
        let (debits_posted, credits_posted) = posted.unwrap_or((0, 0));
        Ok(Balance {
            debits_posted,
            credits_posted,
            debits_pending,
            credits_pending,
        })
    }

    /// Sums over all accounts per currency. In sound books, posted debits equal posted
    /// credits and pending debits equal pending credits in every currency.
    pub async fn currency_totals(&self) -> Result<Vec<CurrencyTotals>, StoreError> {
        on_pool!(self, currency_totals())
    }

    /// Accounts whose stored balance disagrees with their legs. Empty when the books are sound.
    pub async fn inconsistent_accounts(&self) -> Result<Vec<String>, StoreError> {
        on_pool!(self, inconsistent_accounts())
    }
}
