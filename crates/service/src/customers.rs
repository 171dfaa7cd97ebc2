//! Customers and their personal data: creating a customer (idempotent by key), reading one
//! masked or in clear, and exact lookups by phone or national id through blind indexes.
//!
//! Each field read in clear is written to the `pii_reads` audit log, and each lookup to
//! `pii_lookups` (who, which field, the blind index searched, the reason if given, the
//! customer found), before anything is returned: if that write fails, nothing is.
//!
//! Only what credit needs is collected: name, phone and national id. The date of birth (for
//! the age) is taken from the national id rather than asked for, so the two cannot disagree.
//! Personal fields are sealed with the field's name and the customer's id as associated data
//! ([`sealed_field`]), so a value copied to another field or another customer's row does not
//! open. Phone and national id also get a blind index (a keyed hash), so that a customer is
//! found by them without storing them in clear.
//!
//! A customer can be erased ([`CustomerService::erase`]): personal fields and indexes
//! overwritten, the id kept for the financial records; reads then answer `customer_erased`.

use crate::caller::Caller;
use crate::consortium::member_client::EventIdentifiers;
use crate::sealed_texts;
use jiff::civil::Date;
use jiff::Timestamp;
use std::sync::Arc;
use tally_core::{Clock, CustomerId};
use tally_privacy::identity::{self, IdentityError};
use tally_privacy::{Privacy, PrivacyError};
use tally_store::customers::{
    CustomerCreated, CustomerWriteError, PiiLookup, PiiRead, StoredCustomer,
};
use tally_store::erasure::{CustomerErasure, Erased};
use tally_store::sealed_texts::TextColumn;
use tally_store::{Database, StoreError};
use uuid::Uuid;

/// Blind index domains: the same value in two fields gives unrelated indexes.
pub const PHONE_INDEX: &str = "customer.phone";
pub const NATIONAL_ID_INDEX: &str = "customer.national_id";
/// Domain of the keyed hash that tells a retried creation from a different one.
pub const REQUEST_HASH: &str = "customer.create_request";

/// Longest reason accepted for reading or looking up personal data, in characters.
pub const REASON_LENGTH_MAX: usize = 500;

/// A personal field of a customer, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalField {
    Name,
    Phone,
    NationalId,
    DateOfBirth,
}

impl PersonalField {
    /// Every personal field, in the order a customer shows them.
    pub const ALL: [PersonalField; 4] = [
        PersonalField::Name,
        PersonalField::Phone,
        PersonalField::NationalId,
        PersonalField::DateOfBirth,
    ];

    /// The field's name in the audit log (`pii_reads.field`).
    pub fn as_str(self) -> &'static str {
        match self {
            PersonalField::Name => "name",
            PersonalField::Phone => "phone",
            PersonalField::NationalId => "national_id",
            PersonalField::DateOfBirth => "date_of_birth",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        PersonalField::ALL
            .into_iter()
            .find(|field| field.as_str() == text)
    }
}

/// Associated data of a sealed field: its name and its customer, so that a value sealed for
/// one customer's field does not open as another's.
pub fn sealed_field(field: &str, id: &str) -> String {
    format!("customer.{field}:{id}")
}

/// Why a customer use case refused or failed; [`CustomerError::code`] is its stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CustomerError {
    /// A name, phone or national id that is not valid.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("idempotency key {0:?} was already used for a different request")]
    KeyReused(String),
    #[error("a customer with this phone number exists")]
    PhoneTaken,
    #[error("a customer with this national id exists")]
    NationalIdTaken,
    #[error("customer {0} does not exist")]
    NotFound(CustomerId),
    /// The customer's personal data was erased; the id stays, for its financial records.
    #[error("customer {0}'s personal data was erased")]
    Erased(String),
    #[error("reason must be at most {REASON_LENGTH_MAX} characters without control characters")]
    InvalidReason,
    /// A read in clear without a reason (absent or blank).
    #[error("reading personal data in clear needs a reason, written to the audit log")]
    ReasonRequired,
    #[error("look a customer up by phone or by national_id, one at a time")]
    TooManyLookupFields,
    #[error("look a customer up by phone or by national_id")]
    LookupFieldRequired,
    /// No personal-data keys are configured, so no customer can be sealed or opened.
    #[error("customers need personal-data keys, and none are configured")]
    PrivacyKeysNotConfigured,
    /// The customer was sealed with a key that is no longer configured.
    #[error("the customer was sealed with key {0:?}, which is no longer configured")]
    KeyUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broken invariant (a stored value that does not open or parse, a seal that failed).
    #[error("{0}")]
    Internal(String),
}

impl CustomerError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            CustomerError::Identity(error) => error.code(),
            CustomerError::KeyReused(_) => "idempotency_key_reused",
            CustomerError::PhoneTaken => "customer_phone_taken",
            CustomerError::NationalIdTaken => "customer_national_id_taken",
            CustomerError::NotFound(_) => "customer_not_found",
            CustomerError::Erased(_) => "customer_erased",
            CustomerError::InvalidReason => "invalid_reason",
            CustomerError::ReasonRequired => "reason_required",
            CustomerError::TooManyLookupFields => "too_many_lookup_fields",
            CustomerError::LookupFieldRequired => "lookup_field_required",
            CustomerError::PrivacyKeysNotConfigured => "privacy_keys_not_configured",
            CustomerError::KeyUnavailable(_) => "privacy_key_unavailable",
            CustomerError::Store(_) | CustomerError::Internal(_) => "internal",
        }
    }
}

impl From<CustomerWriteError> for CustomerError {
    fn from(error: CustomerWriteError) -> Self {
        match error {
            CustomerWriteError::KeyReused(key) => CustomerError::KeyReused(key),
            CustomerWriteError::PhoneTaken => CustomerError::PhoneTaken,
            CustomerWriteError::NationalIdTaken => CustomerError::NationalIdTaken,
            CustomerWriteError::Store(error) => CustomerError::Store(error),
            other => CustomerError::Internal(other.to_string()),
        }
    }
}

/// What a creation's keyed request hash is computed over (normalised name, phone and
/// national id); the blind index rotation recomputes it from the sealed fields.
pub fn request_text(name: &str, phone: &str, national_id: &str) -> String {
    [name, phone, national_id].join("\0")
}

fn undecryptable(error: PrivacyError) -> CustomerError {
    match error {
        PrivacyError::UnknownKey(key_id) => CustomerError::KeyUnavailable(key_id),
        other => CustomerError::Internal(other.to_string()),
    }
}

/// A new customer as given: each field is normalised before it is sealed.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    /// Full name as on the identity document.
    pub name: String,
    /// A mobile number in any accepted form.
    pub phone: String,
    /// PRC resident identity number.
    pub national_id: String,
}

/// An exact lookup: exactly one of `phone` and `national_id`, and why.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub phone: Option<String>,
    pub national_id: Option<String>,
    /// Written to the audit log; optional for a lookup (its answer is masked).
    pub reason: Option<String>,
}

/// A customer as shown: masked, or in clear after the reading is on the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerView {
    pub id: Uuid,
    pub created_at: Timestamp,
    /// Whether the personal fields are masked: the last four of phone and national id, the
    /// name's first character, nothing of the date of birth.
    pub masked: bool,
    pub name: String,
    /// E.164 in clear.
    pub phone: String,
    pub national_id: String,
    /// `YYYY-MM-DD` in clear.
    pub date_of_birth: String,
}

/// A customer's delivery address and bound bank card in clear, after their reading is on the
/// audit log; `None` for one never set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealedProfile {
    pub id: Uuid,
    pub address: Option<String>,
    /// The card number's digits.
    pub bank_card: Option<String>,
}

/// A customer's fields opened: name, phone (E.164), national id, date of birth.
#[derive(Clone)]
struct Opened {
    name: String,
    phone: String,
    national_id: String,
    date_of_birth: String,
}

fn open(privacy: &Privacy, stored: &StoredCustomer) -> Result<Opened, CustomerError> {
    let field = |name: &str, value: &str| {
        privacy
            .cipher
            .decrypt(&sealed_field(name, &stored.id), value)
            .map(|secret| secret.expose().clone())
            .map_err(undecryptable)
    };
    Ok(Opened {
        name: field("name", &stored.name)?,
        phone: field("phone", &stored.phone)?,
        national_id: field("national_id", &stored.national_id)?,
        date_of_birth: field("date_of_birth", &stored.date_of_birth)?,
    })
}

fn view(
    stored: &StoredCustomer,
    opened: Opened,
    masked: bool,
) -> Result<CustomerView, CustomerError> {
    let in_clear: &[PersonalField] = if masked { &[] } else { &PersonalField::ALL };
    view_with(stored, opened, in_clear)
}

/// The customer with the fields `in_clear` as they are and the others masked; `masked`
/// when any field is.
fn view_with(
    stored: &StoredCustomer,
    opened: Opened,
    in_clear: &[PersonalField],
) -> Result<CustomerView, CustomerError> {
    let id = Uuid::parse_str(&stored.id)
        .map_err(|_| CustomerError::Internal(format!("stored customer id {:?}", stored.id)))?;
    let clear = |field: PersonalField| in_clear.contains(&field);
    let pick = |field: PersonalField, value: String, mask: &dyn Fn(&str) -> String| {
        if clear(field) {
            value
        } else {
            mask(&value)
        }
    };
    Ok(CustomerView {
        id,
        created_at: stored.created_at,
        masked: !PersonalField::ALL.into_iter().all(clear),
        name: pick(PersonalField::Name, opened.name, &identity::mask_name),
        phone: pick(PersonalField::Phone, opened.phone, &identity::mask_phone),
        national_id: pick(
            PersonalField::NationalId,
            opened.national_id,
            &identity::mask_national_id,
        ),
        date_of_birth: pick(PersonalField::DateOfBirth, opened.date_of_birth, &|_| {
            identity::MASKED_DATE_OF_BIRTH.to_string()
        }),
    })
}

fn masked_view(privacy: &Privacy, stored: &StoredCustomer) -> Result<CustomerView, CustomerError> {
    view(stored, open(privacy, stored)?, true)
}

/// The receiving phone and delivery address of a risk event about customer `id`, as
/// identifiers another member of the consortium log can match: `address` and `phone` are the
/// operation's own (a delivery address, a new phone) when it has them, otherwise the
/// customer's. Opened for the decision's consortium lookup only (never shown, logged or
/// stored in clear; the decision keeps them sealed), so, as [`date_of_birth`], not a read in
/// clear. None for an id that names no Tally customer or an erased one. A seal that does not
/// open (its key no longer configured) leaves its value out with an error log line: the
/// decision still looks the device up, rather than refusing the operation.
pub async fn contact_identifiers(
    database: &Database,
    privacy: &Privacy,
    id: &str,
    address: Option<&str>,
    phone: Option<&str>,
) -> Result<EventIdentifiers, StoreError> {
    let given = || EventIdentifiers::from_raw(None, address, phone);
    if id.parse::<Uuid>().is_err() {
        return Ok(given());
    }
    let Some(stored) = database.customer(id).await? else {
        return Ok(given());
    };
    if stored.is_erased() {
        return Ok(given());
    }
    let open = |field: &str, value: &str| match privacy
        .cipher
        .decrypt(&sealed_field(field, &stored.id), value)
    {
        Ok(secret) => Some(secret.expose().clone()),
        Err(error) => {
            tracing::error!(customer = %stored.id, field, %error, "a customer's field does not open: left out of the consortium lookup");
            None
        }
    };
    let kept_phone = match phone {
        Some(_) => None,
        None => open("phone", &stored.phone),
    };
    let kept_address = match address {
        Some(_) => None,
        None => database
            .customer_sealed_profile(&stored.id)
            .await?
            .and_then(|profile| profile.address)
            .and_then(|sealed| open("address", &sealed)),
    };
    // Stored values were checked when they were set: from_raw keeps what is one of its kind.
    Ok(EventIdentifiers::from_raw(
        None,
        address.or(kept_address.as_deref()),
        phone.or(kept_phone.as_deref()),
    ))
}

/// A customer's date of birth, opened for a rule that needs the age (credit eligibility).
/// Not a read in clear by itself: whoever uses it decides whether that is to be audited.
pub fn date_of_birth(privacy: &Privacy, stored: &StoredCustomer) -> Result<Date, CustomerError> {
    if stored.is_erased() {
        return Err(CustomerError::Erased(stored.id.clone()));
    }
    let text = privacy
        .cipher
        .decrypt(
            &sealed_field("date_of_birth", &stored.id),
            &stored.date_of_birth,
        )
        .map_err(undecryptable)?;
    text.expose().parse().map_err(|_| {
        CustomerError::Internal(format!(
            "customer {} has a malformed date of birth",
            stored.id
        ))
    })
}

/// A reason trimmed, `None` when absent or blank; refused when too long or with control
/// characters.
fn checked_reason(reason: Option<&str>) -> Result<Option<String>, CustomerError> {
    let reason = reason.map(str::trim).unwrap_or("");
    if reason.is_empty() {
        return Ok(None);
    }
    if reason.chars().count() > REASON_LENGTH_MAX || reason.chars().any(char::is_control) {
        return Err(CustomerError::InvalidReason);
    }
    Ok(Some(reason.to_string()))
}

/// The customer use cases over one database, with the personal-data keys configured (if
/// any) and the service clock.
pub struct CustomerService {
    database: Database,
    /// `None` when no keys are configured: a use case that seals or opens a field then
    /// refuses with [`CustomerError::PrivacyKeysNotConfigured`], after checking its input.
    privacy: Option<Arc<Privacy>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for CustomerService {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CustomerService")
            .field("privacy", &self.privacy.is_some())
            .finish_non_exhaustive()
    }
}

impl CustomerService {
    pub fn new(database: Database, privacy: Option<Arc<Privacy>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            database,
            privacy,
            clock,
        }
    }

    fn privacy(&self) -> Result<&Privacy, CustomerError> {
        self.privacy
            .as_deref()
            .ok_or(CustomerError::PrivacyKeysNotConfigured)
    }

    /// Now, to the microsecond the database keeps, so an answer shows the time a read
    /// returns.
    fn stored_now(&self) -> Timestamp {
        let now = self.clock.now();
        Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
    }

    /// The stored customer; an erased one answers [`CustomerError::Erased`].
    async fn stored(&self, id: CustomerId) -> Result<StoredCustomer, CustomerError> {
        let stored = self
            .database
            .customer(&id.to_string())
            .await?
            .ok_or(CustomerError::NotFound(id))?;
        if stored.is_erased() {
            return Err(CustomerError::Erased(stored.id));
        }
        Ok(stored)
    }

    /// Erases customer `id`'s personal data for `caller` and `reason` (required): the sealed
    /// fields, blind indexes and keyed hashes overwritten, the erasure recorded (never a
    /// value), in one transaction (`Database::erase_customer`). The ledger, credit accounts
    /// and payments stay under the pseudonymous id; the customer's risk events keep no field
    /// that identifies the person and the consortium identifiers kept for them are deleted.
    /// Again: the first erasure, unchanged (and the risk events and identifiers cleared, for
    /// an erasure made before they were). The reason is sealed where stored (free text may
    /// name people) and answered opened.
    pub async fn erase(
        &self,
        id: CustomerId,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<Erased, CustomerError> {
        let reason = checked_reason(reason)?.ok_or(CustomerError::ReasonRequired)?;
        let customer_id = id.to_string();
        let reason = self.seal_text(TextColumn::ErasureReason, &customer_id, &reason)?;
        let erasure = CustomerErasure {
            customer_id,
            at: self.stored_now(),
            api_key_id: caller.key_id.clone(),
            principal: caller.name.clone(),
            reason,
        };
        let erased = self
            .database
            .erase_customer(&erasure)
            .await?
            .ok_or(CustomerError::NotFound(id))?;
        if let Erased::Now(_) = erased {
            tracing::info!(customer = %id, key = %caller.key_id, "customer's personal data erased");
        }
        let opened = |mut erasure: CustomerErasure| {
            erasure.reason = self.open_text(
                TextColumn::ErasureReason,
                &erasure.customer_id,
                &erasure.reason,
            );
            erasure
        };
        Ok(match erased {
            Erased::Now(erasure) => Erased::Now(opened(erasure)),
            Erased::Already(erasure) => Erased::Already(opened(erasure)),
        })
    }

    /// `text` sealed for `column`'s row `owner` (as written without keys).
    fn seal_text(
        &self,
        column: TextColumn,
        owner: &str,
        text: &str,
    ) -> Result<String, CustomerError> {
        sealed_texts::seal_text(self.privacy.as_deref(), column, owner, text)
            .map_err(|error| CustomerError::Internal(format!("sealing: {error}")))
    }

    /// A stored text of `column`'s row `owner` opened.
    fn open_text(&self, column: TextColumn, owner: &str, stored: &str) -> String {
        sealed_texts::open_text(self.privacy.as_deref(), column, owner, stored)
    }

    /// `reads` with their reasons opened.
    fn opened_reads(&self, reads: Vec<PiiRead>) -> Vec<PiiRead> {
        reads
            .into_iter()
            .map(|mut read| {
                read.reason = self.open_text(TextColumn::PiiReadReason, &read.id, &read.reason);
                read
            })
            .collect()
    }

    /// Creates a customer under idempotency key `key`, answered masked. The same request
    /// again under the key is the same customer; another request under it is
    /// [`CustomerError::KeyReused`].
    pub async fn create(
        &self,
        key: &str,
        customer: &NewCustomer,
    ) -> Result<CustomerView, CustomerError> {
        let privacy = self.privacy()?;
        let name = identity::normalise_name(&customer.name)?;
        let phone = identity::normalise_phone(&customer.phone)?;
        let national_id = identity::normalise_national_id(&customer.national_id)?;
        let (year, month, day) = national_id.birth_date();
        let date_of_birth = format!("{year:04}-{month:02}-{day:02}");
        // Keyed, so that the stored hash cannot be reversed by guessing phone numbers.
        let request_text = request_text(&name, &phone, national_id.expose());
        let request_hash = privacy.blind_index.compute(REQUEST_HASH, &request_text);
        let id = Uuid::now_v7().to_string();
        let seal = |field: &str, value: &str| {
            privacy
                .cipher
                .encrypt(&sealed_field(field, &id), value)
                .map_err(|error| CustomerError::Internal(error.to_string()))
        };
        let row = StoredCustomer {
            id: id.clone(),
            created_at: self.stored_now(),
            name: seal("name", &name)?,
            phone: seal("phone", &phone)?,
            national_id: seal("national_id", national_id.expose())?,
            date_of_birth: seal("date_of_birth", &date_of_birth)?,
            phone_index: privacy.blind_index.compute(PHONE_INDEX, &phone),
            national_id_index: privacy
                .blind_index
                .compute(NATIONAL_ID_INDEX, national_id.expose()),
        };
        // During a blind index rotation the person may be stored under the previous key's
        // indexes, and a retried creation under its previous request hash.
        if let Some(previous) = privacy.blind_index.compute_previous(PHONE_INDEX, &phone) {
            if !self
                .database
                .find_customers(Some(&previous), None)
                .await?
                .is_empty()
            {
                return Err(CustomerError::PhoneTaken);
            }
        }
        if let Some(previous) = privacy
            .blind_index
            .compute_previous(NATIONAL_ID_INDEX, national_id.expose())
        {
            if !self
                .database
                .find_customers(None, Some(&previous))
                .await?
                .is_empty()
            {
                return Err(CustomerError::NationalIdTaken);
            }
        }
        let created = match self
            .database
            .create_customer(key, &request_hash, &row)
            .await
        {
            Err(CustomerWriteError::KeyReused(reused)) => {
                match privacy
                    .blind_index
                    .compute_previous(REQUEST_HASH, &request_text)
                {
                    Some(previous) => self.database.create_customer(key, &previous, &row).await,
                    None => Err(CustomerWriteError::KeyReused(reused)),
                }
            }
            other => other,
        };
        match created? {
            CustomerCreated::Created(stored) => {
                let opened = Opened {
                    name,
                    phone,
                    national_id: national_id.expose().to_string(),
                    date_of_birth,
                };
                view(&stored, opened, true)
            }
            CustomerCreated::Replayed(stored) => masked_view(privacy, &stored),
        }
    }

    /// A customer, masked. Not audited: nothing personal is shown.
    pub async fn show(&self, id: CustomerId) -> Result<CustomerView, CustomerError> {
        let privacy = self.privacy()?;
        let stored = self.stored(id).await?;
        masked_view(privacy, &stored)
    }

    /// A customer in clear, for `caller` and `reason` (required): each field shown is on the
    /// `pii_reads` audit log before it is returned. The caller's right to read in clear
    /// (scope `pii:read`) is checked by whoever calls this.
    pub async fn reveal(
        &self,
        id: CustomerId,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<CustomerView, CustomerError> {
        self.reveal_fields(id, &PersonalField::ALL, caller, reason)
            .await
    }

    /// A customer with the fields `fields` in clear and the others masked, for `caller` and
    /// `reason` (required): one `pii_reads` row per field shown, on the log before it is
    /// returned. The console reveals one field at a time, so that a person reads no more than
    /// they asked for.
    pub async fn reveal_fields(
        &self,
        id: CustomerId,
        fields: &[PersonalField],
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<CustomerView, CustomerError> {
        let reason = checked_reason(reason)?.ok_or(CustomerError::ReasonRequired)?;
        let privacy = self.privacy()?;
        let stored = self.stored(id).await?;
        let opened = open(privacy, &stored)?;
        let mut in_clear: Vec<PersonalField> = Vec::with_capacity(fields.len());
        for field in fields {
            if !in_clear.contains(field) {
                in_clear.push(*field);
            }
        }
        // Nothing is revealed unless its reading is on record first.
        let at = self.stored_now();
        let reads: Vec<PiiRead> = in_clear
            .iter()
            .map(|field| PiiRead {
                id: Uuid::now_v7().to_string(),
                at,
                api_key_id: caller.key_id.clone(),
                principal: caller.name.clone(),
                customer_id: stored.id.clone(),
                field: field.as_str().to_string(),
                reason: reason.clone(),
            })
            .map(|mut read| {
                read.reason = self.seal_text(TextColumn::PiiReadReason, &read.id, &read.reason)?;
                Ok(read)
            })
            .collect::<Result<_, CustomerError>>()?;
        if !reads.is_empty() {
            self.database.record_pii_reads(&reads).await?;
            tracing::info!(customer = %stored.id, key = %caller.key_id, "personal data read in clear");
        }
        view_with(&stored, opened, &in_clear)
    }

    /// Customer `id`'s delivery address and bound bank card in clear (each `None` when never
    /// set), for `caller` and `reason` (required): one `pii_reads` row per value shown, on the
    /// log before it is returned, as for the other fields. The caller's right to read in
    /// clear (scope `pii:read`) is checked by whoever calls this.
    pub async fn reveal_profile(
        &self,
        id: CustomerId,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<RevealedProfile, CustomerError> {
        let reason = checked_reason(reason)?.ok_or(CustomerError::ReasonRequired)?;
        let privacy = self.privacy()?;
        let stored = self.stored(id).await?;
        let profile = self
            .database
            .customer_sealed_profile(&stored.id)
            .await?
            .ok_or(CustomerError::NotFound(id))?;
        let open = |field: &str, value: Option<&str>| {
            value
                .map(|value| {
                    privacy
                        .cipher
                        .decrypt(&sealed_field(field, &stored.id), value)
                        .map(|secret| secret.expose().clone())
                        .map_err(undecryptable)
                })
                .transpose()
        };
        let address = open("address", profile.address.as_deref())?;
        let bank_card = open("bank_card", profile.bank_card.as_deref())?;
        // Nothing is revealed unless its reading is on record first.
        let at = self.stored_now();
        let reads: Vec<PiiRead> = [
            ("address", address.is_some()),
            ("bank_card", bank_card.is_some()),
        ]
        .into_iter()
        .filter(|(_, shown)| *shown)
        .map(|(field, _)| PiiRead {
            id: Uuid::now_v7().to_string(),
            at,
            api_key_id: caller.key_id.clone(),
            principal: caller.name.clone(),
            customer_id: stored.id.clone(),
            field: field.to_string(),
            reason: reason.clone(),
        })
        .map(|mut read| {
            read.reason = self.seal_text(TextColumn::PiiReadReason, &read.id, &read.reason)?;
            Ok(read)
        })
        .collect::<Result<_, CustomerError>>()?;
        if !reads.is_empty() {
            self.database.record_pii_reads(&reads).await?;
            tracing::info!(customer = %stored.id, key = %caller.key_id, "profile read in clear");
        }
        Ok(RevealedProfile {
            id: id.as_uuid(),
            address,
            bank_card,
        })
    }

    /// The customers (at most one) with the phone or national id of `lookup`, masked; the
    /// lookup is on the `pii_lookups` audit log before the answer is returned. Rate limits
    /// are for whoever calls this.
    pub async fn search(
        &self,
        caller: &Caller,
        lookup: &Lookup,
    ) -> Result<Vec<CustomerView>, CustomerError> {
        let (field, value) = match (&lookup.phone, &lookup.national_id) {
            (Some(_), Some(_)) => return Err(CustomerError::TooManyLookupFields),
            (None, None) => return Err(CustomerError::LookupFieldRequired),
            (Some(phone), None) => ("phone", identity::normalise_phone(phone)?),
            (None, Some(national_id)) => (
                "national_id",
                identity::normalise_national_id(national_id)?
                    .expose()
                    .to_string(),
            ),
        };
        let reason = checked_reason(lookup.reason.as_deref())?;
        let privacy = self.privacy()?;
        let index_domain = if field == "phone" {
            PHONE_INDEX
        } else {
            NATIONAL_ID_INDEX
        };
        let value_index = privacy.blind_index.compute(index_domain, &value);
        // During a rotation a customer not yet walked is under the previous key's index:
        // the current key's first, then the previous one's.
        let mut found = Vec::new();
        for index in privacy.blind_index.candidates(index_domain, &value) {
            found = if field == "phone" {
                self.database.find_customers(Some(&index), None).await?
            } else {
                self.database.find_customers(None, Some(&index)).await?
            };
            if !found.is_empty() {
                break;
            }
        }
        // The answer is ready before the lookup is recorded and leaves only once it is.
        let customers = found
            .iter()
            .map(|stored| masked_view(privacy, stored))
            .collect::<Result<Vec<_>, _>>()?;
        let record = PiiLookup {
            id: Uuid::now_v7().to_string(),
            at: self.stored_now(),
            api_key_id: caller.key_id.clone(),
            principal: caller.name.clone(),
            field: field.to_string(),
            value_index,
            reason,
            customer_id: found.first().map(|stored| stored.id.clone()),
        };
        self.database.record_pii_lookup(&record).await?;
        Ok(customers)
    }

    /// The audit log of a customer's fields read in clear, oldest first: at most `limit`
    /// reads after the read with id `after`.
    pub async fn reads(
        &self,
        id: CustomerId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PiiRead>, CustomerError> {
        let customer_id = id.to_string();
        if !self.database.customer_exists(&customer_id).await? {
            return Err(CustomerError::NotFound(id));
        }
        let reads = self.database.pii_reads(&customer_id, after, limit).await?;
        Ok(self.opened_reads(reads))
    }

    /// The audit log of every customer's fields read in clear, oldest first: at most `limit`
    /// reads after the read with id `after`.
    pub async fn all_reads(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PiiRead>, CustomerError> {
        let reads = self.database.all_pii_reads(after, limit).await?;
        Ok(self.opened_reads(reads))
    }

    /// The audit log of every lookup, oldest first: at most `limit` lookups after the one
    /// with id `after`.
    pub async fn lookups(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PiiLookup>, CustomerError> {
        Ok(self.database.pii_lookups(after, limit).await?)
    }
}
