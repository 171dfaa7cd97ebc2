//! The daily flow of funds of the payment service in one currency: for a business date (a
//! day in the service's zone), what came in and went out — captured, refunded, fees,
//! settled to merchants' available balances, reserves, paid out, the channel's clearing —
//! and every balance the payment service keeps, by account role, with its opening,
//! increases, decreases and closing. Computed from posted journal legs only, so the report
//! is what the books say, not what another table claims.
//!
//! # Why it reconciles
//!
//! The store reads each account's posted totals now and its legs since the start of the
//! day in one statement (one snapshot). Closing = totals − legs after the day, opening =
//! closing − legs of the day, so opening + increases − decreases = closing holds for every
//! balance by construction; [`FlowOfFunds::check_reconciles`] checks it again before the
//! report leaves, and the tests check each figure against sums kept independently. A day
//! is reported only once it is over in the service's zone: before that its legs could
//! still change.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{Amount, Currency};
use tally_payments::settlement::start_of;
use tally_store::reports::AccountMovementRow;
use tally_store::{Database, StoreError};
use utoipa::ToSchema;

#[allow(unused_imports)]
use crate::credit::views::AmountView;

/// The payment service's account codes start with this.
const PAYMENT_ACCOUNTS: &str = "payments-";

/// Why a report was refused or could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the business date {date} is not over yet in {zone}: its flow of funds can still change"
    )]
    DateNotClosed { date: String, zone: String },
    #[error("{0}")]
    InvalidDate(String),
    /// The books do not add up (a figure overflows, or a balance does not reconcile): a
    /// fault of the data, never of the request.
    #[error("the flow of funds does not add up: {0}")]
    Corrupt(String),
}

impl ReportError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ReportError::Store(_) => "internal",
            ReportError::DateNotClosed { .. } => "report_date_not_closed",
            ReportError::InvalidDate(_) => "invalid_business_date",
            ReportError::Corrupt(_) => "report_does_not_reconcile",
        }
    }
}

/// The role an account plays in the payment service's books, from its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `payments-merchant-payable-{CUR}`: captured legs on their way to merchants.
    CapturesInTransit,
    /// `payments-channel-clearing-{CUR}`: what the bank owes Tally for card money.
    ChannelClearing,
    /// `payments-credit-due-{CUR}`: what the credit business owes for credit-line captures.
    CreditDue,
    /// `payments-fee-income-{CUR}`: merchants' fees.
    FeeIncome,
    MerchantPending,
    MerchantAvailable,
    MerchantReserve,
    MerchantPayable,
    /// `payments-wallet-{customer}-{CUR}`.
    Wallets,
    /// `payments-vault-{customer}-{CUR}`.
    Vaults,
    /// `payments-yield-expense-{CUR}`: the vault's yield paid to customers.
    VaultYieldExpense,
    /// Any other account of the payment service (kept so no money is left out).
    Other,
}

impl Role {
    pub fn of_code(code: &str, currency: Currency) -> Role {
        let suffix = format!("-{}", currency.code());
        let Some(body) = code
            .strip_prefix(PAYMENT_ACCOUNTS)
            .and_then(|rest| rest.strip_suffix(&suffix))
        else {
            return Role::Other;
        };
        match body {
            "merchant-payable" => return Role::CapturesInTransit,
            "channel-clearing" => return Role::ChannelClearing,
            "credit-due" => return Role::CreditDue,
            "fee-income" => return Role::FeeIncome,
            "yield-expense" => return Role::VaultYieldExpense,
            _ => {}
        }
        if let Some(merchant) = body.strip_prefix("merchant-") {
            for (balance, role) in [
                ("-pending", Role::MerchantPending),
                ("-available", Role::MerchantAvailable),
                ("-reserve", Role::MerchantReserve),
                ("-payable", Role::MerchantPayable),
            ] {
                if merchant.len() > balance.len() && merchant.ends_with(balance) {
                    return role;
                }
            }
        }
        if body.starts_with("wallet-") {
            Role::Wallets
        } else if body.starts_with("vault-") {
            Role::Vaults
        } else {
            Role::Other
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::CapturesInTransit => "captures_in_transit",
            Role::ChannelClearing => "channel_clearing",
            Role::CreditDue => "credit_due",
            Role::FeeIncome => "fee_income",
            Role::MerchantPending => "merchant_pending",
            Role::MerchantAvailable => "merchant_available",
            Role::MerchantReserve => "merchant_reserve",
            Role::MerchantPayable => "merchant_payable",
            Role::Wallets => "wallets",
            Role::Vaults => "vaults",
            Role::VaultYieldExpense => "vault_yield_expense",
            Role::Other => "other",
        }
    }

    /// Assets and expenses grow by debits; liabilities and income by credits.
    fn grows_by_debits(&self) -> bool {
        matches!(
            self,
            Role::ChannelClearing | Role::CreditDue | Role::VaultYieldExpense
        )
    }
}

/// A balance's change by one kind of movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = FlowOfFundsMovement)]
pub struct MovementFlow {
    #[schema(value_type = AmountView)]
    pub decreases: Amount,
    #[schema(value_type = AmountView)]
    pub increases: Amount,
    /// `capture` and `refund` (merchant entries of checkout), `settlement` (settlement
    /// runs' entries) or `other`.
    pub kind: String,
}

/// One role's balances over the day (posted), summed over its accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = FlowOfFundsBalance)]
pub struct BalanceFlow {
    /// How many accounts the role has in this currency.
    pub accounts: i64,
    #[schema(value_type = AmountView)]
    pub closing: Amount,
    #[schema(value_type = AmountView)]
    pub decreases: Amount,
    #[schema(value_type = AmountView)]
    pub increases: Amount,
    /// The day's increases and decreases by kind of movement; they sum to the day's.
    pub movements: Vec<MovementFlow>,
    /// `debit` (assets, expenses: debits increase the balance) or `credit`.
    pub normal_side: String,
    #[schema(value_type = AmountView)]
    pub opening: Amount,
    /// `captures_in_transit`, `channel_clearing`, `credit_due`, `fee_income`,
    /// `merchant_pending`, `merchant_available`, `merchant_reserve`, `merchant_payable`,
    /// `wallets`, `vaults`, `vault_yield_expense` or `other`.
    pub role: String,
}

/// The day's headline figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = FlowOfFundsFigures)]
pub struct Flows {
    /// Gross captured to merchants (the capture entries' `gross`).
    #[schema(value_type = AmountView)]
    pub captured: Amount,
    /// Merchant capture entries posted.
    pub captures: i64,
    /// The change of what the channel owes Tally (card money captured less what the bank
    /// paid or refunded).
    #[schema(value_type = AmountView)]
    pub clearing: Amount,
    /// Fees charged on the day's captures (the payment service's and the credit plans'
    /// merchant discounts).
    #[schema(value_type = AmountView)]
    pub fees_charged: Amount,
    /// The payment service's fee income of the day (its balance's net change).
    #[schema(value_type = AmountView)]
    pub fee_income: Amount,
    /// Fees given back on the day's refunds (the credit plans' discounts, pro rata).
    #[schema(value_type = AmountView)]
    pub fees_returned: Amount,
    /// Taken out of merchants' payable balances (payouts to their banks).
    #[schema(value_type = AmountView)]
    pub paid_out: Amount,
    /// Gross refunded from merchants (the refund entries' `gross`).
    #[schema(value_type = AmountView)]
    pub refunded: Amount,
    /// Merchant refund entries posted.
    pub refunds: i64,
    /// Net held in merchants' reserves by settlement runs (held less released).
    #[schema(value_type = AmountView)]
    pub reserve_held_net: Amount,
    /// Moved to merchants' available balances by settlement runs (negative when a carried
    /// debt was larger).
    #[schema(value_type = AmountView)]
    pub settled: Amount,
}

/// The flow of funds of one business date and currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlowOfFunds {
    /// Every role with an account in the currency, in a fixed order.
    pub balances: Vec<BalanceFlow>,
    #[schema(value_type = String, format = Date)]
    pub business_date: Date,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub flows: Flows,
    /// The day's first moment in the service's zone.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    pub time_zone: String,
    /// The next day's first moment (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
}

/// One role's sums, in minor units, as the ledger has them (debits and credits).
#[derive(Debug, Default, Clone)]
struct RoleSums {
    accounts: i64,
    /// Posted totals at the end of the day.
    closing_debits: i128,
    closing_credits: i128,
    /// Legs of the day by kind: (debits, credits).
    by_kind: BTreeMap<String, (i128, i128)>,
}

impl RoleSums {
    fn add_account(&mut self, row: &AccountMovementRow) {
        self.accounts += 1;
        self.closing_debits += i128::from(row.debits_posted);
        self.closing_credits += i128::from(row.credits_posted);
    }

    fn add_legs(&mut self, row: &AccountMovementRow) {
        self.closing_debits -= i128::from(row.later_debits);
        self.closing_credits -= i128::from(row.later_credits);
        // Legs only after the day come as rows of their kind with nothing in the day.
        if row.window_debits != 0 || row.window_credits != 0 {
            let sums = self.by_kind.entry(row.movement.clone()).or_default();
            sums.0 += i128::from(row.window_debits);
            sums.1 += i128::from(row.window_credits);
        }
    }
}

fn to_amount(minor: i128, currency: Currency, what: &str) -> Result<Amount, ReportError> {
    i64::try_from(minor)
        .map(|minor| Amount::new(minor, currency))
        .map_err(|_| ReportError::Corrupt(format!("{what} overflows")))
}

impl BalanceFlow {
    fn of(role: Role, sums: &RoleSums, currency: Currency) -> Result<BalanceFlow, ReportError> {
        let name = role.as_str();
        // (increases, decreases) in the role's normal orientation.
        let orient = |debits: i128, credits: i128| {
            if role.grows_by_debits() {
                (debits, credits)
            } else {
                (credits, debits)
            }
        };
        let (closing_up, closing_down) = orient(sums.closing_debits, sums.closing_credits);
        let mut increases = 0_i128;
        let mut decreases = 0_i128;
        let mut movements = Vec::new();
        for (kind, (debits, credits)) in &sums.by_kind {
            let (up, down) = orient(*debits, *credits);
            increases += up;
            decreases += down;
            movements.push(MovementFlow {
                kind: kind.clone(),
                increases: to_amount(up, currency, name)?,
                decreases: to_amount(down, currency, name)?,
            });
        }
        let closing = closing_up - closing_down;
        Ok(BalanceFlow {
            role: name.to_string(),
            normal_side: if role.grows_by_debits() {
                "debit"
            } else {
                "credit"
            }
            .to_string(),
            accounts: sums.accounts,
            opening: to_amount(closing - increases + decreases, currency, name)?,
            increases: to_amount(increases, currency, name)?,
            decreases: to_amount(decreases, currency, name)?,
            closing: to_amount(closing, currency, name)?,
            movements,
        })
    }

    /// The day's increases and decreases of one kind (zero when there were none).
    pub fn movement(&self, kind: &str) -> (Amount, Amount) {
        let currency = self.opening.currency();
        self.movements
            .iter()
            .find(|movement| movement.kind == kind)
            .map_or(
                (Amount::zero(currency), Amount::zero(currency)),
                |movement| (movement.increases, movement.decreases),
            )
    }

    fn net(&self, kind: &str) -> i128 {
        let (up, down) = self.movement(kind);
        i128::from(up.minor()) - i128::from(down.minor())
    }
}

impl FlowOfFunds {
    /// The balance of a role, if the currency has an account in it.
    pub fn balance(&self, role: Role) -> Option<&BalanceFlow> {
        self.balances
            .iter()
            .find(|balance| balance.role == role.as_str())
    }

    /// Opening + increases − decreases = closing for every balance, and the kinds of
    /// movement sum to the day's increases and decreases.
    pub fn check_reconciles(&self) -> Result<(), ReportError> {
        for balance in &self.balances {
            let moved = i128::from(balance.opening.minor()) + i128::from(balance.increases.minor())
                - i128::from(balance.decreases.minor());
            if moved != i128::from(balance.closing.minor()) {
                return Err(ReportError::Corrupt(format!(
                    "{}: opening {} + increases {} − decreases {} is not the closing {}",
                    balance.role,
                    balance.opening,
                    balance.increases,
                    balance.decreases,
                    balance.closing
                )));
            }
            let (up, down) =
                balance
                    .movements
                    .iter()
                    .fold((0_i128, 0_i128), |(up, down), movement| {
                        (
                            up + i128::from(movement.increases.minor()),
                            down + i128::from(movement.decreases.minor()),
                        )
                    });
            if up != i128::from(balance.increases.minor())
                || down != i128::from(balance.decreases.minor())
            {
                return Err(ReportError::Corrupt(format!(
                    "{}: its movements by kind do not sum to the day's",
                    balance.role
                )));
            }
        }
        Ok(())
    }

    /// The report as CSV, one figure a line (`business_date,currency,figure,amount`):
    /// the headline figures by name, then each balance's as `{role}.{figure}` and its
    /// movements as `{role}.{kind}.increases` / `.decreases`. Amounts in major units,
    /// counts as integers.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from(CSV_HEADER);
        csv.push('\n');
        for figure in self.figures() {
            csv.push_str(&format!(
                "{},{},{},{}\n",
                self.business_date,
                self.currency.code(),
                figure.name,
                figure.value.text()
            ));
        }
        csv
    }

    /// Every figure by name, in the CSV's order.
    pub fn figures(&self) -> Vec<Figure> {
        let flows = &self.flows;
        let amount = |name: &str, amount: Amount| Figure {
            name: name.to_string(),
            value: FigureValue::Amount(amount),
        };
        let count = |name: &str, count: i64| Figure {
            name: name.to_string(),
            value: FigureValue::Count(count),
        };
        let mut figures = vec![
            amount("captured", flows.captured),
            count("captures", flows.captures),
            amount("refunded", flows.refunded),
            count("refunds", flows.refunds),
            amount("fees_charged", flows.fees_charged),
            amount("fees_returned", flows.fees_returned),
            amount("fee_income", flows.fee_income),
            amount("settled", flows.settled),
            amount("reserve_held_net", flows.reserve_held_net),
            amount("paid_out", flows.paid_out),
            amount("clearing", flows.clearing),
        ];
        for balance in &self.balances {
            let role = &balance.role;
            figures.push(count(&format!("{role}.accounts"), balance.accounts));
            for (name, value) in [
                ("opening", balance.opening),
                ("increases", balance.increases),
                ("decreases", balance.decreases),
                ("closing", balance.closing),
            ] {
                figures.push(amount(&format!("{role}.{name}"), value));
            }
            for movement in &balance.movements {
                let kind = &movement.kind;
                figures.push(amount(
                    &format!("{role}.{kind}.increases"),
                    movement.increases,
                ));
                figures.push(amount(
                    &format!("{role}.{kind}.decreases"),
                    movement.decreases,
                ));
            }
        }
        figures
    }
}

/// One figure of a report, for CSV and Parquet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub name: String,
    pub value: FigureValue,
}

/// An amount, or a count (of entries, of accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureValue {
    Amount(Amount),
    Count(i64),
}

impl FigureValue {
    /// An amount in major units (exact), a count as an integer.
    pub fn text(&self) -> String {
        match self {
            FigureValue::Amount(amount) => amount.to_decimal_string(),
            FigureValue::Count(count) => count.to_string(),
        }
    }
}

/// The header of the report's CSV.
pub const CSV_HEADER: &str = "business_date,currency,figure,amount";

/// The flow of funds of `date` (a day in `zone`, the payment service's) in `currency`.
/// Refused until the day is over in `zone` at `now`.
pub async fn flow_of_funds(
    database: &Database,
    zone: &TimeZone,
    date: Date,
    currency: Currency,
    now: Timestamp,
) -> Result<FlowOfFunds, ReportError> {
    let invalid = |error: &dyn std::fmt::Display| ReportError::InvalidDate(error.to_string());
    let from = start_of(date, zone).map_err(|error| invalid(&error))?;
    let next = date.tomorrow().map_err(|error| invalid(&error))?;
    let to = start_of(next, zone).map_err(|error| invalid(&error))?;
    let zone_name = zone.iana_name().unwrap_or("the service's zone").to_string();
    if now < to {
        return Err(ReportError::DateNotClosed {
            date: date.to_string(),
            zone: zone_name,
        });
    }
    let (from_micros, to_micros) = (from.as_microsecond(), to.as_microsecond());
    let rows = database
        .account_movements(currency.code(), PAYMENT_ACCOUNTS, from_micros, to_micros)
        .await?;
    let mut roles: BTreeMap<Role, RoleSums> = BTreeMap::new();
    let mut last_code: Option<&str> = None;
    for row in &rows {
        let sums = roles.entry(Role::of_code(&row.code, currency)).or_default();
        // Rows come by account code, one per kind of movement; the totals are the
        // account's, counted once.
        if last_code != Some(row.code.as_str()) {
            sums.add_account(row);
            last_code = Some(&row.code);
        }
        sums.add_legs(row);
    }
    let balances = roles
        .iter()
        .map(|(role, sums)| BalanceFlow::of(*role, sums, currency))
        .collect::<Result<Vec<_>, _>>()?;
    let merchant_rows = database
        .merchant_movements(currency.code(), PAYMENT_ACCOUNTS, from_micros, to_micros)
        .await?;
    let mut report = FlowOfFunds {
        business_date: date,
        currency,
        time_zone: zone_name,
        from,
        to,
        flows: Flows {
            captured: Amount::zero(currency),
            captures: 0,
            fees_charged: Amount::zero(currency),
            refunded: Amount::zero(currency),
            refunds: 0,
            fees_returned: Amount::zero(currency),
            fee_income: Amount::zero(currency),
            settled: Amount::zero(currency),
            reserve_held_net: Amount::zero(currency),
            paid_out: Amount::zero(currency),
            clearing: Amount::zero(currency),
        },
        balances,
    };
    for row in &merchant_rows {
        let gross = Amount::new(row.gross, currency);
        let fee = Amount::new(row.fee, currency);
        match row.movement.as_str() {
            "capture" => {
                report.flows.captures = row.entries;
                report.flows.captured = gross;
                report.flows.fees_charged = fee;
            }
            _ => {
                report.flows.refunds = row.entries;
                report.flows.refunded = gross;
                report.flows.fees_returned = fee;
            }
        }
    }
    let net_of = |role: Role, kind: Option<&str>| -> Result<Amount, ReportError> {
        let Some(balance) = report.balance(role) else {
            return Ok(Amount::zero(currency));
        };
        let net = match kind {
            Some(kind) => balance.net(kind),
            None => i128::from(balance.increases.minor()) - i128::from(balance.decreases.minor()),
        };
        to_amount(net, currency, role.as_str())
    };
    let fee_income = net_of(Role::FeeIncome, None)?;
    let settled = net_of(Role::MerchantAvailable, Some("settlement"))?;
    let reserve_held_net = net_of(Role::MerchantReserve, Some("settlement"))?;
    let clearing = net_of(Role::ChannelClearing, None)?;
    let paid_out = report
        .balance(Role::MerchantPayable)
        .map_or(Amount::zero(currency), |balance| balance.decreases);
    report.flows.fee_income = fee_income;
    report.flows.settled = settled;
    report.flows.reserve_held_net = reserve_held_net;
    report.flows.clearing = clearing;
    report.flows.paid_out = paid_out;
    report.check_reconciles()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_from_codes() {
        let cny = Currency::CNY;
        for (code, role) in [
            ("payments-merchant-payable-CNY", Role::CapturesInTransit),
            (
                "payments-merchant-shop-1-payable-CNY",
                Role::MerchantPayable,
            ),
            (
                "payments-merchant-x-pending-available-CNY",
                Role::MerchantAvailable,
            ),
            ("payments-merchant-shop-pending-CNY", Role::MerchantPending),
            ("payments-merchant-shop-reserve-CNY", Role::MerchantReserve),
            ("payments-channel-clearing-CNY", Role::ChannelClearing),
            ("payments-credit-due-CNY", Role::CreditDue),
            ("payments-fee-income-CNY", Role::FeeIncome),
            ("payments-yield-expense-CNY", Role::VaultYieldExpense),
            ("payments-wallet-c1-CNY", Role::Wallets),
            ("payments-vault-c1-CNY", Role::Vaults),
            ("payments-fee-income-USD", Role::Other),
            ("payments-something-CNY", Role::Other),
        ] {
            assert_eq!(Role::of_code(code, cny), role, "{code}");
        }
    }
}
