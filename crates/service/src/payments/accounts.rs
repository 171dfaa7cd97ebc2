//! The payment service's own ledger accounts: per currency, the captures in transit to
//! merchants, what the channel (the bank) owes Tally for card money, what the credit
//! business owes for credit-line captures, the fee income and the vault's yield expense;
//! per customer and currency, the wallet and the vault; per merchant and currency, its
//! pending, available, reserve and payable balances. All are opened as the payment
//! service's, so no client key can move them.

use crate::service_accounts::{
    check_found, open_service_account, owner_metadata, ServiceAccountError,
};
use std::collections::HashMap;
use tally_core::{AccountId, Currency};
use tally_ledger::{AccountFlags, AccountKind, Actor, NewAccount};
use tally_store::{Database, LedgerWriter};

/// The payment service as an actor of the ledger.
pub const PAYMENTS_SERVICE: Actor = Actor::Service("payments");

/// Prefix of the payment service's ledger account codes; refused to clients.
pub const ACCOUNT_CODE_PREFIX: &str = "payments-";

/// Prefix of the ledger idempotency keys the payment service makes (`payments:{payment}:{step}`,
/// `payments-account:{code}`, `payments-wallet:…`); refused to clients.
pub const KEY_PREFIXES: [&str; 2] = ["payments:", "payments-"];

/// The longest customer reference a wallet code can carry.
pub const CUSTOMER_LENGTH_MAX: usize = 64;

/// The payment service's accounts in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentLedgerAccounts {
    pub currency: Currency,
    /// Captures in transit to merchants (liability): wallet, vault and card legs are held
    /// to it when reserved and posted to it at capture, and the same capture step moves
    /// each posted leg on to its merchant's pending account net of fees. Zero once every
    /// capture step is done; what it holds pending is what is authorised.
    pub merchant_payable: AccountId,
    /// What the credit business owes the payment service for credit-line captures, net
    /// of the plans' merchant discounts (asset; the credit business's
    /// `credit-merchant-payable` is the other side).
    pub credit_due: AccountId,
    /// Merchants' fees (income).
    pub fee_income: AccountId,
    /// What the channel owes Tally for captured card money, less what it paid out for Tally
    /// (asset): settled against the bank's daily file.
    pub channel_clearing: AccountId,
    /// The vault's yield paid to customers (expense).
    pub vault_yield_expense: AccountId,
}

/// Which of a customer's stored balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Balance {
    Wallet,
    Vault,
}

impl Balance {
    pub fn as_str(&self) -> &'static str {
        match self {
            Balance::Wallet => "wallet",
            Balance::Vault => "vault",
        }
    }
}

/// Checks a customer reference can name ledger accounts: 1 to 64 ASCII letters, digits and
/// `-_.`.
pub fn check_customer(customer: &str) -> Result<(), String> {
    let fits = !customer.is_empty()
        && customer.len() <= CUSTOMER_LENGTH_MAX
        && customer
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character));
    if fits {
        Ok(())
    } else {
        Err(format!(
            "customer must be 1 to {CUSTOMER_LENGTH_MAX} ASCII letters, digits, '-', '_' or '.'"
        ))
    }
}

/// The code of a customer's wallet or vault, e.g. `payments-wallet-c42-CNY`.
pub fn balance_code(balance: Balance, customer: &str, currency: Currency) -> String {
    format!(
        "{ACCOUNT_CODE_PREFIX}{}-{customer}-{}",
        balance.as_str(),
        currency.code()
    )
}

/// A customer balance is a liability that may never go below zero.
fn balance_account(code: String, currency: Currency) -> NewAccount {
    NewAccount {
        code,
        kind: AccountKind::Liability,
        currency,
        flags: AccountFlags {
            debits_must_not_exceed_credits: true,
            credits_must_not_exceed_debits: false,
        },
        metadata: owner_metadata(&PAYMENTS_SERVICE),
    }
}

fn service_account(name: &str, kind: AccountKind, currency: Currency) -> NewAccount {
    NewAccount {
        code: format!("{ACCOUNT_CODE_PREFIX}{name}-{}", currency.code()),
        kind,
        currency,
        flags: AccountFlags::default(),
        metadata: owner_metadata(&PAYMENTS_SERVICE),
    }
}

/// One merchant's balances in one currency (all liabilities: what Tally owes it; any of
/// them may go negative when refunds exceed sales, a debt carried against later sales).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantLedgerAccounts {
    /// Captured net of fees, less refunds, not yet settled.
    pub pending: AccountId,
    /// Settled: the merchant's to be paid out.
    pub available: AccountId,
    /// The rolling reserve held back from settlements.
    pub reserve: AccountId,
    /// On its way to the merchant's bank (payouts; kept for them, unused until then).
    pub payable: AccountId,
}

/// Which of a merchant's balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantBalance {
    Pending,
    Available,
    Reserve,
    Payable,
}

impl MerchantBalance {
    pub const ALL: [MerchantBalance; 4] = [
        MerchantBalance::Pending,
        MerchantBalance::Available,
        MerchantBalance::Reserve,
        MerchantBalance::Payable,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            MerchantBalance::Pending => "pending",
            MerchantBalance::Available => "available",
            MerchantBalance::Reserve => "reserve",
            MerchantBalance::Payable => "payable",
        }
    }
}

/// The code of a merchant's balance, e.g. `payments-merchant-shop-1-pending-CNY`.
pub fn merchant_code(merchant: &str, balance: MerchantBalance, currency: Currency) -> String {
    format!(
        "{ACCOUNT_CODE_PREFIX}merchant-{merchant}-{}-{}",
        balance.as_str(),
        currency.code()
    )
}

/// A merchant's balance as the payment service opens it.
fn merchant_account(merchant: &str, balance: MerchantBalance, currency: Currency) -> NewAccount {
    NewAccount {
        code: merchant_code(merchant, balance, currency),
        kind: AccountKind::Liability,
        currency,
        flags: AccountFlags::default(),
        metadata: owner_metadata(&PAYMENTS_SERVICE),
    }
}

/// The payment service's accounts, opened on first use and remembered.
#[derive(Default)]
pub struct AccountsCache {
    by_currency: tokio::sync::Mutex<HashMap<Currency, PaymentLedgerAccounts>>,
    balances: tokio::sync::Mutex<HashMap<String, AccountId>>,
    merchants: tokio::sync::Mutex<HashMap<(String, Currency), MerchantLedgerAccounts>>,
}

impl AccountsCache {
    /// The service's accounts in `currency`.
    pub async fn service(
        &self,
        database: &Database,
        writer: &LedgerWriter,
        currency: Currency,
    ) -> Result<PaymentLedgerAccounts, ServiceAccountError> {
        let mut cache = self.by_currency.lock().await;
        if let Some(found) = cache.get(&currency) {
            return Ok(*found);
        }
        let open = |account| {
            open_service_account(
                database,
                writer,
                PAYMENTS_SERVICE,
                "payments-account:",
                account,
            )
        };
        let accounts = PaymentLedgerAccounts {
            currency,
            merchant_payable: open(service_account(
                "merchant-payable",
                AccountKind::Liability,
                currency,
            ))
            .await?,
            channel_clearing: open(service_account(
                "channel-clearing",
                AccountKind::Asset,
                currency,
            ))
            .await?,
            vault_yield_expense: open(service_account(
                "yield-expense",
                AccountKind::Expense,
                currency,
            ))
            .await?,
            credit_due: open(service_account("credit-due", AccountKind::Asset, currency)).await?,
            fee_income: open(service_account("fee-income", AccountKind::Income, currency)).await?,
        };
        cache.insert(currency, accounts);
        Ok(accounts)
    }

    /// A merchant's four balances in `currency`, opened on first use.
    pub async fn merchant(
        &self,
        database: &Database,
        writer: &LedgerWriter,
        merchant: &str,
        currency: Currency,
    ) -> Result<MerchantLedgerAccounts, ServiceAccountError> {
        let cache_key = (merchant.to_string(), currency);
        if let Some(found) = self.merchants.lock().await.get(&cache_key) {
            return Ok(*found);
        }
        let mut ids = Vec::with_capacity(MerchantBalance::ALL.len());
        for balance in MerchantBalance::ALL {
            let account = merchant_account(merchant, balance, currency);
            ids.push(
                open_service_account(
                    database,
                    writer,
                    PAYMENTS_SERVICE,
                    "payments-account:",
                    account,
                )
                .await?,
            );
        }
        let accounts = MerchantLedgerAccounts {
            pending: ids[0],
            available: ids[1],
            reserve: ids[2],
            payable: ids[3],
        };
        self.merchants.lock().await.insert(cache_key, accounts);
        Ok(accounts)
    }

    /// The four balances of each of `merchants` (id and currency), in that order: the
    /// accounts not remembered yet are looked up in one read and checked as
    /// [`merchant`](Self::merchant) checks them; a merchant with any of its accounts
    /// missing has them opened one by one as [`merchant`](Self::merchant) does.
    pub async fn merchants(
        &self,
        database: &Database,
        writer: &LedgerWriter,
        merchants: &[(String, Currency)],
    ) -> Result<Vec<MerchantLedgerAccounts>, ServiceAccountError> {
        let unknown: Vec<&(String, Currency)> = {
            let cache = self.merchants.lock().await;
            merchants
                .iter()
                .filter(|key| !cache.contains_key(*key))
                .collect()
        };
        if !unknown.is_empty() {
            let wanted: Vec<NewAccount> = unknown
                .iter()
                .flat_map(|(merchant, currency)| {
                    MerchantBalance::ALL
                        .into_iter()
                        .map(|balance| merchant_account(merchant, balance, *currency))
                })
                .collect();
            let codes: Vec<String> = wanted.iter().map(|account| account.code.clone()).collect();
            let found: HashMap<String, tally_ledger::Account> = database
                .accounts_by_codes(&codes)
                .await?
                .into_iter()
                .map(|state| (state.account.code.clone(), state.account))
                .collect();
            for ((merchant, currency), four) in unknown.iter().zip(wanted.chunks(4)) {
                let mut ids = Vec::with_capacity(4);
                for account in four {
                    if let Some(existing) = found.get(&account.code) {
                        check_found(&PAYMENTS_SERVICE, existing, account)?;
                        ids.push(existing.id);
                    }
                }
                if ids.len() < 4 {
                    // Opens what is missing and remembers the four.
                    self.merchant(database, writer, merchant, *currency).await?;
                    continue;
                }
                self.merchants.lock().await.insert(
                    (merchant.clone(), *currency),
                    MerchantLedgerAccounts {
                        pending: ids[0],
                        available: ids[1],
                        reserve: ids[2],
                        payable: ids[3],
                    },
                );
            }
        }
        let cache = self.merchants.lock().await;
        merchants
            .iter()
            .map(|key| {
                cache.get(key).copied().ok_or_else(|| {
                    ServiceAccountError::Store(tally_store::StoreError::Corrupt(format!(
                        "the accounts of merchant {} in {} were not remembered",
                        key.0,
                        key.1.code()
                    )))
                })
            })
            .collect()
    }

    /// A customer's wallet or vault, opened when `open` is set and it does not exist yet;
    /// `None` when it does not exist and `open` is not set.
    pub async fn balance(
        &self,
        database: &Database,
        writer: &LedgerWriter,
        balance: Balance,
        customer: &str,
        currency: Currency,
        open: bool,
    ) -> Result<Option<AccountId>, ServiceAccountError> {
        let code = balance_code(balance, customer, currency);
        if let Some(found) = self.balances.lock().await.get(&code) {
            return Ok(Some(*found));
        }
        let id = if open {
            Some(
                open_service_account(
                    database,
                    writer,
                    PAYMENTS_SERVICE,
                    "payments-account:",
                    balance_account(code.clone(), currency),
                )
                .await?,
            )
        } else {
            database.account_id_by_code(&code).await?
        };
        if let Some(id) = id {
            self.balances.lock().await.insert(code, id);
        }
        Ok(id)
    }
}
