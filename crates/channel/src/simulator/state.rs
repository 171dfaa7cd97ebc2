//! The simulated bank's books in memory: cards and their balances, authorisations, the
//! operation under each reference (for idempotent replay and `status`), and the settled
//! rows of each day. Synchronous and deterministic: every random choice comes from
//! generators seeded by the configuration, and time is handed in.

use crate::channel::{
    Authorization, AuthorizationStatus, Capture, ChannelRefund, Operation, OperationStatus, Payout,
    PayoutStatus, RefundStatus, Void,
};
use crate::error::refusal;
use crate::identifiers::{CardToken, ChannelId, Reference};
use crate::notification::{Notification, NotificationType};
use crate::payout_file::{PayoutFile, ReturnFile, ReturnRow, ReturnStatus};
use crate::simulator::balance::CardBalance;
use crate::simulator::card::{CardNumber, Expiry};
use crate::simulator::control::{CardRegistration, CardView};
use crate::simulator::faults::{Discrepancy, Faults, PartsPerMillion};
use crate::simulator::settlement::{self, RecordType, SettlementFile, SettlementRow};
use crate::wire::amount_from_wire;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use tally_core::{Amount, MoneyError, SplitMix64};

/// The refusal code when the simulator holds as many cards or operations as it may.
pub const SIMULATOR_FULL: &str = "simulator_full";
/// The code of a payout the card's bank sent back.
pub const ACCOUNT_CLOSED: &str = "account_closed";

/// A request the bank did not take up: nothing changed and nothing is recorded, so the same
/// reference may be used again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl From<MoneyError> for Refusal {
    fn from(error: MoneyError) -> Self {
        Refusal::new(refusal::INVALID_REQUEST, error.to_string())
    }
}

/// A notification to deliver, once per delay (twice when duplicated).
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub notification: Notification,
    pub delays_ms: Vec<u64>,
}

/// The answer to a mutating request, and what must follow it.
#[derive(Debug)]
pub(crate) struct Acted {
    pub status: OperationStatus,
    pub deliveries: Vec<Delivery>,
    /// A payout left pending: settle it after this many milliseconds.
    pub settle_payout_after_ms: Option<u64>,
}

impl Acted {
    fn replayed(status: OperationStatus) -> Self {
        Acted {
            status,
            deliveries: Vec::new(),
            settle_payout_after_ms: None,
        }
    }
}

/// What the bank is built from.
#[derive(Debug, Clone)]
pub(crate) struct BankConfig {
    pub seed: u64,
    pub fingerprint_key: Vec<u8>,
    pub fee_rate: PartsPerMillion,
    pub payout_settle_ms: u64,
    pub cards_max: usize,
    pub operations_max: usize,
    pub faults: Faults,
    /// The channel's fee on a lost dispute, in minor units of the dispute's currency.
    pub dispute_fee_minor: i64,
}

struct Card {
    last_four: String,
    brand: &'static str,
    fingerprint: String,
    expiry: Expiry,
    balance: CardBalance,
}

impl Card {
    /// Refuses an amount in another currency than the card's, or a card past its expiry.
    fn check_usable(&self, amount: Amount, now: Timestamp) -> Result<(), Refusal> {
        let currency = self.balance.opening.currency();
        if currency != amount.currency() {
            return Err(Refusal::new(
                refusal::CURRENCY_MISMATCH,
                format!("the card holds {currency}"),
            ));
        }
        if self.expiry.has_passed(date_of(now)) {
            return Err(Refusal::new(refusal::CARD_EXPIRED, "the card has expired"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthorizationState {
    Authorized,
    Declined,
    Captured { captured: Amount },
    Voided,
}

struct AuthorizationRecord {
    card: usize,
    amount: Amount,
    state: AuthorizationState,
    refunded: Amount,
}

/// A request as the bank compares it when its reference comes again.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RequestKey {
    Authorize {
        token: CardToken,
        amount: Amount,
    },
    Capture {
        authorization: ChannelId,
        amount: Amount,
    },
    Void {
        authorization: ChannelId,
    },
    Refund {
        authorization: ChannelId,
        amount: Amount,
    },
    Payout {
        token: CardToken,
        amount: Amount,
    },
}

struct OperationRecord {
    request: RequestKey,
    /// The answer given first, and to every repetition.
    first_answer: OperationStatus,
    /// The operation as it stands (a pending payout becomes paid or returned).
    current: OperationStatus,
    card: usize,
}

/// The simulated bank.
pub(crate) struct Bank {
    config: BankConfig,
    pub faults: Faults,
    pub down: bool,
    /// Ids, tokens and event ids.
    identifiers: SplitMix64,
    /// Declines, lost answers and returned payouts.
    fault_draws: SplitMix64,
    /// Duplicates and delays of notifications.
    notification_draws: SplitMix64,
    cards: Vec<Card>,
    tokens: HashMap<CardToken, usize>,
    card_by_fingerprint: HashMap<String, usize>,
    authorizations: HashMap<ChannelId, AuthorizationRecord>,
    operations: HashMap<Reference, OperationRecord>,
    pub(crate) settled: BTreeMap<Date, Vec<SettlementRow>>,
    /// Disputes raised on captures (`disputes.rs`).
    pub(super) disputes: BTreeMap<ChannelId, crate::simulator::disputes::DisputeRecord>,
    /// The row the `late` discrepancy held back from a date's file, served in the next
    /// date's: kept once chosen, so both files read the same whenever they are asked for.
    late: BTreeMap<Date, SettlementRow>,
    /// What the bank answered for each reference of a batch payout file: a row sent again
    /// (a file posted twice) gets the same answer and is paid once.
    payout_file_answers: HashMap<String, ReturnStatus>,
}

pub(crate) fn date_of(timestamp: Timestamp) -> Date {
    timestamp.to_zoned(TimeZone::UTC).date()
}

fn positive(amount: Amount) -> Result<Amount, Refusal> {
    if !amount.is_positive() {
        return Err(Refusal::new(
            refusal::INVALID_REQUEST,
            format!("the amount must be positive, got {amount}"),
        ));
    }
    Ok(amount)
}

impl Bank {
    pub(crate) fn new(config: BankConfig) -> Self {
        // Three streams, so that changing one fault's rate does not change the ids issued.
        let seed = config.seed;
        Bank {
            faults: config.faults.clone(),
            down: false,
            identifiers: SplitMix64::new(seed),
            fault_draws: SplitMix64::new(seed ^ 0x6661_756c_7473_0001),
            notification_draws: SplitMix64::new(seed ^ 0x6e6f_7469_6679_0002),
            cards: Vec::new(),
            tokens: HashMap::new(),
            card_by_fingerprint: HashMap::new(),
            authorizations: HashMap::new(),
            operations: HashMap::new(),
            settled: BTreeMap::new(),
            disputes: BTreeMap::new(),
            late: BTreeMap::new(),
            payout_file_answers: HashMap::new(),
            config,
        }
    }

    pub(super) fn new_identifier(&mut self, prefix: &str) -> String {
        format!("{prefix}_{:016x}", self.identifiers.next_u64())
    }

    pub(super) fn new_channel_id(&mut self, prefix: &str) -> ChannelId {
        ChannelId::new(self.new_identifier(prefix)).expect("a generated id is valid")
    }

    /// Whether this answer is lost after the bank acted (the `timeout_rate` fault).
    pub(crate) fn answer_lost(&mut self) -> bool {
        self.faults.timeout_rate_ppm.happens(&mut self.fault_draws)
    }

    /// Registers a card number, or gives the known card a new token. The balance of a card
    /// already registered is left as it is.
    pub(crate) fn register_card(
        &mut self,
        registration: &CardRegistration,
    ) -> Result<CardView, Refusal> {
        let number = CardNumber::parse(&registration.number)
            .map_err(|reason| Refusal::new(refusal::INVALID_CARD_NUMBER, reason))?;
        let expiry = Expiry::parse(&registration.expiry)
            .map_err(|reason| Refusal::new(refusal::INVALID_REQUEST, reason))?;
        let balance = amount_from_wire(&registration.balance, &registration.currency)
            .map_err(|reason| Refusal::new(refusal::INVALID_REQUEST, reason))?;
        if balance.is_negative() {
            return Err(Refusal::new(refusal::INVALID_REQUEST, "a negative balance"));
        }
        if self.tokens.len() >= self.config.cards_max {
            return Err(Refusal::new(SIMULATOR_FULL, "too many card tokens"));
        }
        let fingerprint = number.fingerprint(&self.config.fingerprint_key);
        let index = match self.card_by_fingerprint.get(&fingerprint) {
            Some(index) => *index,
            None => {
                self.cards.push(Card {
                    last_four: number.last_four(),
                    brand: number.brand(),
                    fingerprint: fingerprint.clone(),
                    expiry,
                    balance: CardBalance::opening(balance),
                });
                self.card_by_fingerprint
                    .insert(fingerprint, self.cards.len() - 1);
                self.cards.len() - 1
            }
        };
        let token = CardToken::new(self.new_identifier("tok")).expect("a generated token");
        self.tokens.insert(token.clone(), index);
        Ok(self.view(token, index))
    }

    fn view(&self, token: CardToken, index: usize) -> CardView {
        let card = &self.cards[index];
        let balance = &card.balance;
        CardView {
            token,
            last_four: card.last_four.clone(),
            brand: card.brand.to_string(),
            fingerprint: card.fingerprint.clone(),
            expiry: card.expiry.to_string(),
            currency: balance.opening.currency().code().to_string(),
            opening_balance: balance.opening.to_decimal_string(),
            available: balance.available.to_decimal_string(),
            held: balance.held.to_decimal_string(),
            captured: balance.captured.to_decimal_string(),
            refunded: balance.refunded.to_decimal_string(),
            paid_out: balance.paid_out.to_decimal_string(),
        }
    }

    pub(crate) fn card_view(&self, token: &CardToken) -> Result<CardView, Refusal> {
        let index = self.card_index(token)?;
        Ok(self.view(token.clone(), index))
    }

    fn card_index(&self, token: &CardToken) -> Result<usize, Refusal> {
        self.tokens
            .get(token)
            .copied()
            .ok_or_else(|| Refusal::new(refusal::CARD_NOT_FOUND, format!("no card {token}")))
    }

    /// The current state of the operation under `reference`.
    pub(crate) fn operation(&self, reference: &Reference) -> Option<OperationStatus> {
        self.operations
            .get(reference)
            .map(|record| record.current.clone())
    }

    /// The first answer under `reference` if the request is the same, a refusal if it is
    /// another, `None` if the reference is new.
    fn replay(
        &self,
        reference: &Reference,
        request: &RequestKey,
    ) -> Option<Result<Acted, Refusal>> {
        let record = self.operations.get(reference)?;
        if &record.request != request {
            return Some(Err(Refusal::new(
                refusal::REFERENCE_REUSED,
                format!("reference {reference} was used for another request"),
            )));
        }
        Some(Ok(Acted::replayed(record.first_answer.clone())))
    }

    fn check_room(&self) -> Result<(), Refusal> {
        if self.operations.len() >= self.config.operations_max {
            return Err(Refusal::new(SIMULATOR_FULL, "too many operations"));
        }
        Ok(())
    }

    /// A request's first steps: its first answer if `reference` was used already (a
    /// refusal if for another request), then room for a new operation and, where the
    /// request moves money, a positive `amount`. `None`: go on with the request.
    fn start(
        &self,
        reference: &Reference,
        request: &RequestKey,
        amount: Option<Amount>,
    ) -> Result<Option<Acted>, Refusal> {
        if let Some(replayed) = self.replay(reference, request) {
            return replayed.map(Some);
        }
        self.check_room()?;
        if let Some(amount) = amount {
            positive(amount)?;
        }
        Ok(None)
    }

    /// The index of the card `token`, if it may move `amount` at `now`.
    fn usable_card(
        &self,
        token: &CardToken,
        amount: Amount,
        now: Timestamp,
    ) -> Result<usize, Refusal> {
        let index = self.card_index(token)?;
        self.cards[index].check_usable(amount, now)?;
        Ok(index)
    }

    fn record(&mut self, request: RequestKey, status: OperationStatus, card: usize) {
        self.operations.insert(
            status.reference.clone(),
            OperationRecord {
                request,
                first_answer: status.clone(),
                current: status,
                card,
            },
        );
    }

    /// Records a new operation and plans its notification.
    fn recorded(
        &mut self,
        request: RequestKey,
        status: OperationStatus,
        card: usize,
        kind: NotificationType,
        amount: Amount,
    ) -> Acted {
        self.record(request, status.clone(), card);
        let delivery = self.plan(kind, &status, amount);
        Acted {
            status,
            deliveries: vec![delivery],
            settle_payout_after_ms: None,
        }
    }

    fn plan(
        &mut self,
        kind: NotificationType,
        status: &OperationStatus,
        amount: Amount,
    ) -> Delivery {
        let notification = Notification {
            event_id: self.new_identifier("evt"),
            kind,
            reference: status.reference.clone(),
            channel_id: status.operation.channel_id().clone(),
            amount,
            occurred_at: status.occurred_at,
            dispute: None,
        };
        self.schedule(notification)
    }

    /// When (and how often, with the duplicate fault) `notification` is delivered.
    pub(super) fn schedule(&mut self, notification: Notification) -> Delivery {
        let duplicated = self
            .faults
            .duplicate_rate_ppm
            .happens(&mut self.notification_draws);
        let delay_max = self.faults.notification_delay_max_ms;
        let mut delays_ms = vec![self.notification_draws.below(delay_max + 1)];
        if duplicated {
            delays_ms.push(self.notification_draws.below(delay_max + 1));
        }
        Delivery {
            notification,
            delays_ms,
        }
    }

    pub(crate) fn settle(&mut self, row: SettlementRow) {
        self.settled.entry(row.value_date).or_default().push(row);
    }

    pub(crate) fn authorize(
        &mut self,
        reference: Reference,
        token: CardToken,
        amount: Amount,
        now: Timestamp,
    ) -> Result<Acted, Refusal> {
        let request = RequestKey::Authorize {
            token: token.clone(),
            amount,
        };
        if let Some(replayed) = self.start(&reference, &request, Some(amount))? {
            return Ok(replayed);
        }
        let index = self.usable_card(&token, amount, now)?;
        let declined = self.faults.decline_rate_ppm.happens(&mut self.fault_draws);
        let status = if declined {
            AuthorizationStatus::Declined {
                code: refusal::DO_NOT_HONOR.to_string(),
                message: "the issuer declined the authorisation".to_string(),
            }
        } else {
            let balance = &mut self.cards[index].balance;
            if !balance.covers(amount) {
                return Err(Refusal::new(
                    refusal::INSUFFICIENT_FUNDS,
                    format!("{} available", balance.available),
                ));
            }
            *balance = balance.hold(amount)?;
            AuthorizationStatus::Authorized
        };
        let channel_id = self.new_channel_id("auth");
        let kind = match status {
            AuthorizationStatus::Authorized => NotificationType::AuthorizationSucceeded,
            AuthorizationStatus::Declined { .. } => NotificationType::AuthorizationDeclined,
        };
        self.authorizations.insert(
            channel_id.clone(),
            AuthorizationRecord {
                card: index,
                amount,
                state: if declined {
                    AuthorizationState::Declined
                } else {
                    AuthorizationState::Authorized
                },
                refunded: Amount::zero(amount.currency()),
            },
        );
        let status = OperationStatus {
            reference,
            occurred_at: now,
            operation: Operation::Authorization(Authorization {
                channel_id,
                amount,
                status,
            }),
        };
        Ok(self.recorded(request, status, index, kind, amount))
    }

    /// What the capture under `reference` took and what of it was refunded since: `None`
    /// when no capture was made under it.
    pub(super) fn captured_under(&self, reference: &Reference) -> Option<(Amount, Amount)> {
        let record = self.operations.get(reference)?;
        let Operation::Capture(capture) = &record.current.operation else {
            return None;
        };
        let refunded = self
            .authorizations
            .get(&capture.authorization_id)
            .map(|authorization| authorization.refunded)
            .unwrap_or(Amount::zero(capture.captured.currency()));
        Some((capture.captured, refunded))
    }

    pub(super) fn dispute_fee(&self, currency: tally_core::Currency) -> Amount {
        Amount::new(self.config.dispute_fee_minor, currency)
    }

    fn authorization(&self, channel_id: &ChannelId) -> Result<&AuthorizationRecord, Refusal> {
        self.authorizations.get(channel_id).ok_or_else(|| {
            Refusal::new(
                refusal::AUTHORIZATION_NOT_FOUND,
                format!("no authorisation {channel_id}"),
            )
        })
    }

    fn pending_authorization(
        &self,
        channel_id: &ChannelId,
    ) -> Result<&AuthorizationRecord, Refusal> {
        let authorization = self.authorization(channel_id)?;
        if authorization.state != AuthorizationState::Authorized {
            return Err(Refusal::new(
                refusal::AUTHORIZATION_NOT_PENDING,
                format!("authorisation {channel_id} is {:?}", authorization.state),
            ));
        }
        Ok(authorization)
    }

    pub(crate) fn capture(
        &mut self,
        reference: Reference,
        authorization_id: ChannelId,
        amount: Amount,
        now: Timestamp,
    ) -> Result<Acted, Refusal> {
        let request = RequestKey::Capture {
            authorization: authorization_id.clone(),
            amount,
        };
        if let Some(replayed) = self.start(&reference, &request, Some(amount))? {
            return Ok(replayed);
        }
        let authorization = self.pending_authorization(&authorization_id)?;
        let authorized = authorization.amount;
        let index = authorization.card;
        if authorized.currency() != amount.currency() {
            return Err(Refusal::new(
                refusal::CURRENCY_MISMATCH,
                format!("the authorisation is in {}", authorized.currency()),
            ));
        }
        if amount.minor() > authorized.minor() {
            return Err(Refusal::new(
                refusal::CAPTURE_EXCEEDS_AUTHORIZED,
                format!("{amount} asked, {authorized} authorised"),
            ));
        }
        let released = authorized.checked_sub(amount)?;
        let fee = settlement::capture_fee(amount, self.config.fee_rate)?;
        let card = &mut self.cards[index];
        card.balance = card.balance.capture(authorized, amount)?;
        let last_four = card.last_four.clone();
        if let Some(authorization) = self.authorizations.get_mut(&authorization_id) {
            authorization.state = AuthorizationState::Captured { captured: amount };
        }
        let channel_id = self.new_channel_id("cap");
        self.settle(SettlementRow {
            record_type: RecordType::Capture,
            value_date: date_of(now),
            reference: reference.clone(),
            channel_id: channel_id.clone(),
            card_last_four: last_four,
            amount,
            fee,
        });
        let status = OperationStatus {
            reference,
            occurred_at: now,
            operation: Operation::Capture(Capture {
                channel_id,
                authorization_id,
                captured: amount,
                released,
            }),
        };
        Ok(self.recorded(
            request,
            status,
            index,
            NotificationType::CaptureSucceeded,
            amount,
        ))
    }

    pub(crate) fn void(
        &mut self,
        reference: Reference,
        authorization_id: ChannelId,
        now: Timestamp,
    ) -> Result<Acted, Refusal> {
        let request = RequestKey::Void {
            authorization: authorization_id.clone(),
        };
        if let Some(replayed) = self.start(&reference, &request, None)? {
            return Ok(replayed);
        }
        let authorization = self.pending_authorization(&authorization_id)?;
        let released = authorization.amount;
        let index = authorization.card;
        let balance = &mut self.cards[index].balance;
        *balance = balance.release(released)?;
        if let Some(authorization) = self.authorizations.get_mut(&authorization_id) {
            authorization.state = AuthorizationState::Voided;
        }
        let status = OperationStatus {
            reference,
            occurred_at: now,
            operation: Operation::Void(Void {
                channel_id: self.new_channel_id("void"),
                authorization_id,
                released,
            }),
        };
        Ok(self.recorded(
            request,
            status,
            index,
            NotificationType::VoidSucceeded,
            released,
        ))
    }

    pub(crate) fn refund(
        &mut self,
        reference: Reference,
        authorization_id: ChannelId,
        amount: Amount,
        now: Timestamp,
    ) -> Result<Acted, Refusal> {
        let request = RequestKey::Refund {
            authorization: authorization_id.clone(),
            amount,
        };
        if let Some(replayed) = self.start(&reference, &request, Some(amount))? {
            return Ok(replayed);
        }
        let authorization = self.authorization(&authorization_id)?;
        let AuthorizationState::Captured { captured } = authorization.state else {
            return Err(Refusal::new(
                refusal::AUTHORIZATION_NOT_CAPTURED,
                format!("authorisation {authorization_id} was not captured"),
            ));
        };
        if captured.currency() != amount.currency() {
            return Err(Refusal::new(
                refusal::CURRENCY_MISMATCH,
                format!("the capture is in {}", captured.currency()),
            ));
        }
        let index = authorization.card;
        let refundable = captured.checked_sub(authorization.refunded)?;
        if amount.minor() > refundable.minor() {
            return Err(Refusal::new(
                refusal::REFUND_EXCEEDS_CAPTURED,
                format!("{amount} asked, {refundable} left to refund"),
            ));
        }
        let refunded_total = authorization.refunded.checked_add(amount)?;
        let card = &mut self.cards[index];
        card.balance = card.balance.refund(amount)?;
        let last_four = card.last_four.clone();
        if let Some(authorization) = self.authorizations.get_mut(&authorization_id) {
            authorization.refunded = refunded_total;
        }
        let channel_id = self.new_channel_id("ref");
        self.settle(SettlementRow {
            record_type: RecordType::Refund,
            value_date: date_of(now),
            reference: reference.clone(),
            channel_id: channel_id.clone(),
            card_last_four: last_four,
            amount,
            fee: Amount::zero(amount.currency()),
        });
        let status = OperationStatus {
            reference,
            occurred_at: now,
            operation: Operation::Refund(ChannelRefund {
                channel_id,
                authorization_id,
                amount,
                status: RefundStatus::Succeeded,
            }),
        };
        Ok(self.recorded(
            request,
            status,
            index,
            NotificationType::RefundSucceeded,
            amount,
        ))
    }

    /// Accepts a payout; with `payout_settle_ms` 0 it is settled before the answer,
    /// otherwise it stays pending until [`Bank::settle_payout`].
    pub(crate) fn payout(
        &mut self,
        reference: Reference,
        token: CardToken,
        amount: Amount,
        now: Timestamp,
    ) -> Result<Acted, Refusal> {
        let request = RequestKey::Payout {
            token: token.clone(),
            amount,
        };
        if let Some(replayed) = self.start(&reference, &request, Some(amount))? {
            return Ok(replayed);
        }
        let index = self.usable_card(&token, amount, now)?;
        let status = OperationStatus {
            reference: reference.clone(),
            occurred_at: now,
            operation: Operation::Payout(Payout {
                channel_id: self.new_channel_id("pay"),
                amount,
                status: PayoutStatus::Pending,
            }),
        };
        self.record(request, status.clone(), index);
        if self.config.payout_settle_ms > 0 {
            return Ok(Acted {
                status,
                deliveries: Vec::new(),
                settle_payout_after_ms: Some(self.config.payout_settle_ms),
            });
        }
        let deliveries = self.settle_payout(&reference, now);
        let settled = self
            .operations
            .get_mut(&reference)
            .expect("the payout was just recorded");
        // Settled before answering: the first answer is the settled one.
        settled.first_answer = settled.current.clone();
        Ok(Acted {
            status: settled.current.clone(),
            deliveries,
            settle_payout_after_ms: None,
        })
    }

    /// Pays (or returns, at `payout_return_rate`) a pending payout.
    pub(crate) fn settle_payout(&mut self, reference: &Reference, now: Timestamp) -> Vec<Delivery> {
        let returned = self
            .faults
            .payout_return_rate_ppm
            .happens(&mut self.fault_draws);
        let Some(record) = self.operations.get(reference) else {
            return Vec::new();
        };
        let Operation::Payout(payout) = &record.current.operation else {
            return Vec::new();
        };
        if payout.status != PayoutStatus::Pending {
            return Vec::new();
        }
        let (mut payout, index) = (payout.clone(), record.card);
        let paid = self.cards[index].balance.pay_out(payout.amount);
        let kind = match paid {
            Ok(balance) if !returned => {
                let card = &mut self.cards[index];
                card.balance = balance;
                let row = SettlementRow {
                    record_type: RecordType::Payout,
                    value_date: date_of(now),
                    reference: reference.clone(),
                    channel_id: payout.channel_id.clone(),
                    card_last_four: card.last_four.clone(),
                    amount: payout.amount,
                    fee: Amount::zero(payout.amount.currency()),
                };
                self.settle(row);
                payout.status = PayoutStatus::Paid;
                NotificationType::PayoutPaid
            }
            // A balance that would overflow cannot take the money either.
            _ => {
                payout.status = PayoutStatus::Returned {
                    code: ACCOUNT_CLOSED.to_string(),
                };
                NotificationType::PayoutReturned
            }
        };
        let amount = payout.amount;
        let status = OperationStatus {
            reference: reference.clone(),
            occurred_at: now,
            operation: Operation::Payout(payout),
        };
        if let Some(record) = self.operations.get_mut(reference) {
            record.current = status.clone();
        }
        vec![self.plan(kind, &status, amount)]
    }

    /// The settlement file of `date`, with the discrepancies in force. A row the `late`
    /// discrepancy held back from the day before comes first, dated `date`.
    pub(crate) fn settlement_file(&mut self, date: Date) -> Result<SettlementFile, MoneyError> {
        let mut rows = self.settled.get(&date).cloned().unwrap_or_default();
        let late = self
            .faults
            .settlement_discrepancies
            .contains(&Discrepancy::Late);
        let held_back = match self.late.get(&date) {
            Some(held) => Some(held.reference.clone()),
            None if late => rows.last().cloned().map(|last| {
                let reference = last.reference.clone();
                self.late.insert(date, last);
                reference
            }),
            None => None,
        };
        if let Some(reference) = held_back {
            rows.retain(|row| row.reference != reference);
        }
        if let Some(held) = date.yesterday().ok().and_then(|day| self.late.get(&day)) {
            let mut held = held.clone();
            held.value_date = date;
            rows.insert(0, held);
        }
        let day =
            i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day());
        // Seeded by the seed and the date only: the same file every time it is asked for.
        let mut random = SplitMix64::new(self.config.seed ^ (day as u64).wrapping_mul(0x9E37_79B9));
        settlement::inject(
            date,
            &mut rows,
            &self.faults.settlement_discrepancies,
            &mut random,
        )?;
        SettlementFile::new(date, rows)
    }
    /// The bank's answer to a batch payout file: each row failed at
    /// `payout_failure_rate_ppm` or when its account number is not digits
    /// (`invalid_account`), else returned at `payout_return_rate_ppm`, else paid. A
    /// reference answered before keeps its first answer.
    pub(crate) fn answer_payout_file(&mut self, file: &PayoutFile) -> ReturnFile {
        let mut rows = Vec::with_capacity(file.rows.len());
        for row in &file.rows {
            // Drawn for every row, so that one row's answer does not shift the others'.
            let failed = self
                .faults
                .payout_failure_rate_ppm
                .happens(&mut self.fault_draws);
            let returned = self
                .faults
                .payout_return_rate_ppm
                .happens(&mut self.fault_draws);
            let valid_account = !row.account_number.is_empty()
                && row.account_number.bytes().all(|byte| byte.is_ascii_digit());
            let status = self
                .payout_file_answers
                .entry(row.reference.clone())
                .or_insert_with(|| {
                    if !valid_account {
                        ReturnStatus::Failed {
                            reason: "invalid_account".into(),
                        }
                    } else if failed {
                        ReturnStatus::Failed {
                            reason: "insufficient_funds".into(),
                        }
                    } else if returned {
                        ReturnStatus::Returned {
                            reason: ACCOUNT_CLOSED.into(),
                        }
                    } else {
                        ReturnStatus::Paid
                    }
                })
                .clone();
            rows.push(ReturnRow {
                sequence: row.sequence,
                reference: row.reference.clone(),
                amount: row.amount,
                status,
            });
        }
        ReturnFile {
            batch: file.batch.clone(),
            value_date: file.value_date,
            currency: file.currency,
            rows,
        }
    }
}
