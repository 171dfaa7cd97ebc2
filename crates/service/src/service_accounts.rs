//! Ledger accounts a Tally service owns (the credit service's receivable, the payment
//! service's wallets...): opened through the ledger writer as that service, or adopted when
//! found under their code with the kind, currency, limits and owner the service needs.

use std::collections::BTreeMap;
use tally_core::AccountId;
use tally_ledger::{Account, Actor, Command, LedgerError, NewAccount, Outcome};
use tally_store::{Database, LedgerWriter, StoreError, WriteError};

/// Why a service's ledger account could not be opened or adopted.
#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger refused or could not store the account.
    #[error("opening {key} failed: {error}")]
    Posting { key: String, error: WriteError },
    /// The code or the key is held by something the service cannot use; retrying cannot
    /// help, an operator must resolve it.
    #[error("{0}")]
    Conflict(String),
}

/// The service's name as an owner, for messages.
fn service_name(actor: &Actor) -> String {
    actor.owner().unwrap_or_else(|| "client".to_string())
}

/// The account under `wanted.code`, opened as `actor` under idempotency key
/// `{key_prefix}{code}` if there is none yet. Looked up by code first: the account exists
/// after its first use, and a lookup is cheaper than a trip through the writer.
pub async fn open_service_account(
    database: &Database,
    writer: &LedgerWriter,
    actor: Actor,
    key_prefix: &str,
    wanted: NewAccount,
) -> Result<AccountId, ServiceAccountError> {
    if let Some(id) = database.account_id_by_code(&wanted.code).await? {
        check_adopted(database, &actor, id, &wanted).await?;
        return Ok(id);
    }
    let key = format!("{key_prefix}{}", wanted.code);
    let code = wanted.code.clone();
    let mut account = wanted.clone();
    account
        .metadata
        .entry("owner".to_string())
        .or_insert_with(|| service_name(&actor));
    match writer
        .submit_as(actor.clone(), key.clone(), Command::CreateAccount(account))
        .await
    {
        Ok(Outcome::Account(account)) => Ok(account.id),
        // Created by other means (not under this key): used if it is what the service needs.
        Err(WriteError::Ledger(LedgerError::AccountCodeTaken(_))) => {
            match database.account_id_by_code(&code).await? {
                Some(id) => {
                    check_adopted(database, &actor, id, &wanted).await?;
                    Ok(id)
                }
                None => Err(StoreError::Corrupt(format!(
                    "ledger account {code} is taken but cannot be found"
                ))
                .into()),
            }
        }
        Ok(other) => Err(StoreError::Corrupt(format!("creating {code} gave {other:?}")).into()),
        Err(WriteError::KeyReused(_)) => Err(ServiceAccountError::Conflict(format!(
            "the ledger idempotency key {key} is taken by another command; an operator must \
             resolve it"
        ))),
        Err(error) => Err(ServiceAccountError::Posting { key, error }),
    }
}

/// Refuses an account found under a service's code unless it has the kind, currency and
/// limits the service would have given it, and is owned by the service (an account a
/// client opened could be moved behind the service's back).
async fn check_adopted(
    database: &Database,
    actor: &Actor,
    id: AccountId,
    wanted: &NewAccount,
) -> Result<(), ServiceAccountError> {
    let Some(found) = database.account(id).await? else {
        return Err(StoreError::Corrupt(format!("ledger account {id} vanished")).into());
    };
    check_found(actor, &found.account, wanted)
}

/// [`check_adopted`] on an account already read (as a chunk of the settlement run reads
/// many at once).
pub fn check_found(
    actor: &Actor,
    found: &Account,
    wanted: &NewAccount,
) -> Result<(), ServiceAccountError> {
    let id = found.id;
    let service = service_name(actor);
    if found.kind != wanted.kind || found.currency != wanted.currency || found.flags != wanted.flags
    {
        return Err(ServiceAccountError::Conflict(format!(
            "ledger account {} ({id}) is a {} account in {} with {:?}, but the {service} \
             service needs a {} account in {} with {:?}: it was not opened by the {service} \
             service, and an operator must rename or retire it",
            found.code,
            found.kind.as_str(),
            found.currency.code(),
            found.flags,
            wanted.kind.as_str(),
            wanted.currency.code(),
            wanted.flags,
        )));
    }
    if found.owner.as_deref() != actor.owner().as_deref() {
        return Err(ServiceAccountError::Conflict(format!(
            "ledger account {} ({id}) has the {service} service's code but is owned by {}: it \
             was not opened by the {service} service, and an operator must rename or retire it",
            found.code,
            found.owner.as_deref().unwrap_or("clients"),
        )));
    }
    Ok(())
}

/// Metadata naming the owning service, as the service's accounts carry it.
pub fn owner_metadata(actor: &Actor) -> BTreeMap<String, String> {
    BTreeMap::from([("owner".to_string(), service_name(actor))])
}
