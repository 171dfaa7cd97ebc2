//! Rows as stored, and their conversion to and from the ledger's types. Amounts are integer
//! minor units beside a currency code; times are microseconds since the Unix epoch.

use crate::error::StoreError;
use jiff::Timestamp;
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, Currency, EntryId, HoldId};
use tally_ledger::{
    Account, AccountFlags, AccountKind, AccountState, Balance, Entry, Hold, HoldStatus, Leg,
    LegRecord, Side,
};
use uuid::Uuid;

pub(crate) fn micros(at: Timestamp) -> i64 {
    // Timestamps jiff accepts are within ±10,000 years, which fits in i64 microseconds.
    at.as_microsecond()
}

pub(crate) fn timestamp(value: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(value)
        .map_err(|error| StoreError::Corrupt(format!("timestamp {value}: {error}")))
}

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("id {text:?}")))
}

fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::from_code(code).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn metadata(text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("metadata: {error}")))
}

pub(crate) fn metadata_text(metadata: &BTreeMap<String, String>) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_string())
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub id: String,
    pub code: String,
    pub kind: String,
    pub currency: String,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub metadata: String,
    pub created_at: i64,
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
    pub leg_count: i64,
    pub last_posted_at: Option<i64>,
    pub owner: Option<String>,
}

impl AccountRow {
    pub fn into_state(self) -> Result<AccountState, StoreError> {
        Ok(AccountState {
            account: Account {
                id: AccountId(uuid(&self.id)?),
                code: self.code,
                kind: AccountKind::parse(&self.kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("account kind {:?}", self.kind)))?,
                currency: currency(&self.currency)?,
                flags: AccountFlags {
                    debits_must_not_exceed_credits: self.debits_must_not_exceed_credits,
                    credits_must_not_exceed_debits: self.credits_must_not_exceed_debits,
                },
                metadata: metadata(&self.metadata)?,
                created_at: timestamp(self.created_at)?,
                owner: self.owner,
            },
            balance: Balance {
                debits_posted: self.debits_posted,
                credits_posted: self.credits_posted,
                debits_pending: self.debits_pending,
                credits_pending: self.credits_pending,
            },
            leg_count: self.leg_count,
            last_posted_at: self.last_posted_at.map(timestamp).transpose()?,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct HoldRow {
    pub id: String,
    pub debit_account_id: String,
    pub credit_account_id: String,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub metadata: String,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub resolved_at: Option<i64>,
    pub posted_amount: Option<i64>,
    pub entry_id: Option<String>,
}

impl HoldRow {
    pub fn into_hold(self) -> Result<Hold, StoreError> {
        let currency = currency(&self.currency)?;
        Ok(Hold {
            id: HoldId(uuid(&self.id)?),
            debit_account_id: AccountId(uuid(&self.debit_account_id)?),
            credit_account_id: AccountId(uuid(&self.credit_account_id)?),
            amount: Amount::new(self.amount, currency),
            description: self.description,
            metadata: metadata(&self.metadata)?,
            status: HoldStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("hold status {:?}", self.status)))?,
            created_at: timestamp(self.created_at)?,
            expires_at: timestamp(self.expires_at)?,
            resolved_at: self.resolved_at.map(timestamp).transpose()?,
            posted_amount: self.posted_amount.map(|minor| Amount::new(minor, currency)),
            entry_id: self.entry_id.as_deref().map(uuid).transpose()?.map(EntryId),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EntryRow {
    pub id: String,
    pub description: String,
    pub metadata: String,
    pub hold_id: Option<String>,
    pub posted_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LegRow {
    pub account_id: String,
    pub sequence: i64,
    pub entry_id: String,
    pub side: String,
    pub amount: i64,
    pub currency: String,
    pub posted_at: i64,
    pub debits_posted_after: i64,
    pub credits_posted_after: i64,
}

impl LegRow {
    pub fn into_record(self) -> Result<LegRecord, StoreError> {
        Ok(LegRecord {
            entry_id: EntryId(uuid(&self.entry_id)?),
            account_id: AccountId(uuid(&self.account_id)?),
            sequence: self.sequence,
            side: Side::parse(&self.side)
                .ok_or_else(|| StoreError::Corrupt(format!("leg side {:?}", self.side)))?,
            amount: Amount::new(self.amount, currency(&self.currency)?),
            posted_at: timestamp(self.posted_at)?,
            balance_after: Balance {
                debits_posted: self.debits_posted_after,
                credits_posted: self.credits_posted_after,
                debits_pending: 0,
                credits_pending: 0,
            },
        })
    }
}

impl EntryRow {
    pub fn into_entry(self, legs: Vec<LegRow>) -> Result<Entry, StoreError> {
        let legs = legs
            .into_iter()
            .map(|row| {
                let record = row.into_record()?;
                Ok(Leg {
                    account_id: record.account_id,
                    side: record.side,
                    amount: record.amount,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Entry {
            id: EntryId(uuid(&self.id)?),
            legs,
            description: self.description,
            metadata: metadata(&self.metadata)?,
            posted_at: timestamp(self.posted_at)?,
            hold_id: self.hold_id.as_deref().map(uuid).transpose()?.map(HoldId),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    pub key: String,
    pub request_hash: String,
    pub outcome: String,
}

/// Totals of one currency over all accounts, for verifying that the books balance. In
/// `i128`: the sum of many valid `i64` balances need not fit in an `i64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTotals {
    pub currency: String,
    pub debits_posted: i128,
    pub credits_posted: i128,
    pub debits_pending: i128,
    pub credits_pending: i128,
}
