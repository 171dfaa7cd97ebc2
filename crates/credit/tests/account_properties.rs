//! Property tests of accounts: repayment allocation conserves every minor unit, and any
//! sequence of purchases, days, repayments, refunds, write-offs, early payoffs, bill
//! installments and credit balance payouts keeps every posting balanced, the receivable,
//! credit-balance and payout-payable ledger accounts equal to the account's state,
//! available credit never negative, every statement's header reconciled from its lines, and
//! every refunded schedule charging interest only on what is still owed.
#![allow(clippy::unwrap_used)]

use jiff::civil::{date, Date};
use jiff::ToSpan;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use tally_core::{Amount, Currency, Rounding};
use tally_credit::account::DayOutcome;
use tally_credit::{
    allocate, Account, AccountPolicy, AllocationOrder, AllocationStep, Cycle, Due, EarlyPayoffRule,
    FeeModel, LedgerRole, Posting, Product, RemainderOn, TermPricing,
};
use tally_ledger::{AccountFlags, AccountKind, Command, MemoryLedger, NewAccount, Outcome, Side};

/// A real ledger with one account per role: the receivable may never go below zero, nor the
/// customers' credit balance.
struct Ledger {
    memory: MemoryLedger,
    ids: BTreeMap<LedgerRole, tally_core::AccountId>,
    count: usize,
}

impl Ledger {
    fn new() -> Ledger {
        let mut memory = MemoryLedger::new();
        let mut ids = BTreeMap::new();
        let roles = [
            (LedgerRole::CustomerReceivable, AccountKind::Asset),
            (LedgerRole::RepaymentClearing, AccountKind::Asset),
            (LedgerRole::MerchantPayable, AccountKind::Liability),
            (LedgerRole::CustomerCreditBalance, AccountKind::Liability),
            (LedgerRole::CustomerPayoutPayable, AccountKind::Liability),
            (LedgerRole::FeeIncome, AccountKind::Income),
            (LedgerRole::InterestIncome, AccountKind::Income),
            (LedgerRole::PenaltyIncome, AccountKind::Income),
            (LedgerRole::MerchantDiscountIncome, AccountKind::Income),
            (LedgerRole::FraudLossExpense, AccountKind::Expense),
            (LedgerRole::ChargeOffExpense, AccountKind::Expense),
        ];
        for (role, kind) in roles {
            let command = Command::CreateAccount(NewAccount {
                code: format!("credit:{role:?}"),
                kind,
                currency: Currency::CNY,
                flags: AccountFlags {
                    credits_must_not_exceed_debits: role == LedgerRole::CustomerReceivable,
                    debits_must_not_exceed_credits: role == LedgerRole::CustomerCreditBalance,
                },
                metadata: BTreeMap::new(),
            });
            let Outcome::Account(account) =
                memory.apply(&format!("{role:?}"), &command, now()).unwrap()
            else {
                panic!("not an account");
            };
            ids.insert(role, account.id);
        }
        Ledger {
            memory,
            ids,
            count: 0,
        }
    }

    fn post(&mut self, posting: &Posting) {
        let entry = posting.to_new_entry(|role| self.ids[&role]);
        self.count += 1;
        self.memory
            .apply(
                &format!("posting-{}", self.count),
                &Command::PostEntry(entry),
                now(),
            )
            .unwrap_or_else(|error| panic!("the ledger refused {posting:?}: {error}"));
    }
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::UNIX_EPOCH
}

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn due(day: i8, principal: i64, fee: i64, interest: i64, penalty: i64) -> Due {
    Due {
        plan_id: u32::try_from(day).unwrap(),
        installment: 1,
        statement_date: date(2026, 1, day),
        due_date: date(2026, 1, day),
        revolving: false,
        principal: cny(principal),
        fee: cny(fee),
        interest: cny(interest),
        penalty: cny(penalty),
        penalty_charged: cny(penalty),
        billed: cny(principal + fee + interest),
    }
}

fn products() -> Vec<Product> {
    let make = |code: &str, fee_model: FeeModel, terms: Vec<(u32, &str)>, early| Product {
        code: code.into(),
        name: code.into(),
        currency: Currency::CNY,
        fee_model,
        terms: terms
            .into_iter()
            .map(|(periods, rate)| TermPricing::new(periods, rate.parse().unwrap()))
            .collect(),
        rounding: Rounding::HalfUp,
        remainder_on: RemainderOn::Last,
        early_payoff: early,
        fees_refundable: true,
    };
    vec![
        make(
            "flat",
            FeeModel::FlatFee,
            vec![
                (1, "0"),
                (3, "0.007"),
                (6, "0.006"),
                (12, "0.008"),
                (24, "0.005"),
            ],
            EarlyPayoffRule::AllRemainingCharges,
        ),
        make(
            "annuity",
            FeeModel::Annuity,
            vec![(3, "0.12"), (12, "0.18"), (24, "0.24")],
            EarlyPayoffRule::OneMorePeriod,
        ),
        make(
            "equal",
            FeeModel::EqualPrincipal,
            vec![(6, "0.15"), (12, "0.15")],
            EarlyPayoffRule::PrincipalOnly,
        ),
        make(
            "free",
            FeeModel::InterestFree,
            vec![(3, "0.02"), (6, "0.04")],
            EarlyPayoffRule::PrincipalOnly,
        ),
        make(
            "pay4",
            FeeModel::PayInN {
                first_share: Decimal::new(25, 2),
                interval_days: 14,
            },
            vec![(4, "0.03")],
            EarlyPayoffRule::PrincipalOnly,
        ),
    ]
}

#[derive(Debug, Clone)]
enum Operation {
    Purchase {
        minor: i64,
        product: usize,
        term: usize,
    },
    Days(u8),
    Repay(i64),
    RepayMinimum,
    Refund {
        plan: usize,
        share_percent: i64,
    },
    WriteOff {
        plan: usize,
    },
    EarlyPayoff {
        plan: usize,
    },
    BillInstallment,
    /// Pay out this share of what the credit balance can pay out (0: one minor unit more
    /// than it can, which must be refused and change nothing; on a charged-off account any
    /// payout is refused).
    PayOut {
        share_percent: i64,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        3 => (1_i64..500_000, 0_usize..5, 0_usize..5).prop_map(|(minor, product, term)| Operation::Purchase { minor, product, term }),
        6 => (1_u8..40).prop_map(Operation::Days),
        2 => (1_i64..300_000).prop_map(Operation::Repay),
        2 => Just(Operation::RepayMinimum),
        1 => (0_usize..8, 1_i64..=100).prop_map(|(plan, share_percent)| Operation::Refund { plan, share_percent }),
        1 => (0_usize..8).prop_map(|plan| Operation::WriteOff { plan }),
        1 => (0_usize..8).prop_map(|plan| Operation::EarlyPayoff { plan }),
        1 => Just(Operation::BillInstallment),
        2 => (0_i64..=100).prop_map(|share_percent| Operation::PayOut { share_percent }),
    ]
}

/// Ledger balances per role, debit positive.
fn post(books: &mut BTreeMap<LedgerRole, i64>, ledger: &mut Ledger, posting: &Posting) {
    if posting.is_empty() {
        return;
    }
    ledger.post(posting);
    assert_eq!(posting.imbalance(), 0, "unbalanced: {posting:?}");
    for leg in &posting.legs {
        assert!(leg.amount.is_positive(), "{posting:?}");
        let signed = match leg.side {
            Side::Debit => leg.amount.minor(),
            Side::Credit => -leg.amount.minor(),
        };
        *books.entry(leg.role).or_default() += signed;
    }
}

/// What a refund of `value` did to a plan's schedule (`before` → `after`): it took the
/// unbilled principal off, up to `value`, and no installment's principal, fee or interest
/// rose; the principal parts still add up to the principal less what came off them; and on
/// a declining-balance plan every unbilled installment's interest is the rate on what is
/// still owed at its start.
fn check_refunded_schedule(
    before: &tally_credit::Plan,
    after: &tally_credit::Plan,
    value: i64,
) -> Result<(), TestCaseError> {
    let unbilled = |plan: &tally_credit::Plan| -> i64 {
        plan.schedule.installments[plan.billed as usize..]
            .iter()
            .map(|item| item.principal.minor())
            .sum()
    };
    let total = |plan: &tally_credit::Plan| -> i64 {
        plan.schedule
            .installments
            .iter()
            .map(|item| item.principal.minor())
            .sum()
    };
    let taken = unbilled(before).min(value);
    prop_assert_eq!(unbilled(before) - unbilled(after), taken);
    prop_assert_eq!(total(after), total(before) - taken);
    for (old, new) in before
        .schedule
        .installments
        .iter()
        .zip(&after.schedule.installments)
    {
        prop_assert!(new.principal.minor() <= old.principal.minor());
        prop_assert!(new.fee.minor() <= old.fee.minor());
        prop_assert!(new.interest.minor() <= old.interest.minor());
    }
    if let Some(basis) = after.schedule.declining_balance {
        let mut balance = unbilled(after);
        for item in &after.schedule.installments[after.billed as usize..] {
            prop_assert_eq!(item.interest, basis.interest(cny(balance)).unwrap());
            balance -= item.principal.minor();
        }
    }
    Ok(())
}

/// The refusals each operation of the random sequence may meet: anything else is a defect,
/// not a refusal.
const AUTHORIZE_REFUSALS: &[&str] = &[
    "credit_account_frozen",
    "credit_account_closed",
    "credit_insufficient",
];
const REFUND_REFUSALS: &[&str] = &["credit_plan_not_active", "credit_refund_exceeds_principal"];
const WRITE_OFF_REFUSALS: &[&str] = &["credit_plan_not_active"];
const PAYOFF_REFUSALS: &[&str] = &["credit_plan_not_active"];
const BILL_INSTALLMENT_REFUSALS: &[&str] = &["credit_bill_installment_refused"];

/// A refusal is one the operation may give, and it leaves the account as it was.
fn refused_unchanged(
    error: &tally_credit::CreditError,
    expected: &[&str],
    account: &Account,
    before: &Account,
) -> Result<(), TestCaseError> {
    prop_assert!(
        expected.contains(&error.code()),
        "unexpected refusal {}: {}",
        error.code(),
        error
    );
    prop_assert_eq!(
        account,
        before,
        "the refusal {} changed the account",
        error.code()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn allocation_conserves_every_minor_unit(
        items in proptest::collection::vec((1_i8..28, 0_i64..100_000, 0_i64..5_000, 0_i64..5_000, 0_i64..2_000), 0..12),
        payment in 0_i64..1_000_000,
        as_of_day in 1_i8..28,
        reversed in any::<bool>(),
    ) {
        let mut dues: Vec<Due> = items.iter().map(|(day, p, f, i, n)| due(*day, *p, *f, *i, *n)).collect();
        let before: i64 = dues.iter().map(Due::outstanding).sum();
        let mut order = AllocationOrder::default();
        if reversed { order.0.reverse(); }
        let mut applied = Vec::new();
        let left = allocate(&mut dues, cny(payment), date(2026, 1, as_of_day), &order, &mut applied).unwrap();
        let after: i64 = dues.iter().map(Due::outstanding).sum();
        let applied_total: i64 = applied.iter().map(|part| part.amount.minor()).sum();
        prop_assert_eq!(applied_total + left.minor(), payment);
        prop_assert_eq!(before - after, applied_total);
        prop_assert!(dues.iter().all(|due| !due.principal.is_negative() && !due.fee.is_negative() && !due.interest.is_negative() && !due.penalty.is_negative()));
        // Something is left over only when everything is paid.
        if left.is_positive() { prop_assert_eq!(after, 0); }
        // With the default order, no principal is paid while a penalty is owed.
        if !reversed {
            let first_principal = applied.iter().position(|part| part.component == tally_credit::Component::Principal);
            let last_penalty = applied.iter().rposition(|part| part.component == tally_credit::Component::Penalty);
            if let (Some(principal), Some(penalty)) = (first_principal, last_penalty) {
                prop_assert!(penalty < principal);
            }
        }
    }

    #[test]
    fn any_sequence_keeps_the_books_and_the_account_in_step(
        operations in proptest::collection::vec(operation(), 1..60),
        statement_day in 1_i8..=28,
        // 9 (the default), or what accounts stored before Tally limited new cycles to 1 to
        // 28 may hold: 0, or 29 to 31 (a statement can fall due after the next is cut).
        due_days in prop_oneof![3 => Just(9_i32), 1 => Just(0_i32), 2 => 29_i32..=31],
    ) {
        let policy = AccountPolicy::default();
        let products = products();
        let mut account = Account::open(cny(2_000_000), Cycle::new(statement_day, 9).unwrap()).unwrap();
        account.cycle.due_days = due_days;
        let mut today: Date = date(2026, 1, 1);
        let mut books: BTreeMap<LedgerRole, i64> = BTreeMap::new();
        let mut ledger = Ledger::new();
        let mut outcome = DayOutcome::default();
        let mut paid_out = 0_i64;
        // Statements cut and not yet past their due date: each must still wait to be judged
        // (unless bill-installment converted them).
        let mut cut: Vec<(Date, Date)> = Vec::new();
        for operation in operations {
            match operation {
                Operation::Purchase { minor, product, term } => {
                    let product = &products[product];
                    let periods = product.terms[term % product.terms.len()].periods;
                    let before = account.clone();
                    match account.authorize(today, cny(minor)) {
                        Ok(()) => {
                            let (_, posting) = account.capture(today, cny(minor), product, periods).unwrap();
                            post(&mut books, &mut ledger, &posting);
                        }
                        Err(error) => {
                            refused_unchanged(&error, AUTHORIZE_REFUSALS, &account, &before)?;
                        }
                    }
                }
                Operation::Days(days) => {
                    for _ in 0..days {
                        today = today.checked_add(1.day()).unwrap();
                        account.end_of_day(today, &policy, &mut outcome).unwrap();
                        for posting in &outcome.postings { post(&mut books, &mut ledger, posting); }
                        // Every statement is judged at the end of its due date: none still
                        // waiting is past it (with due_days 0, one cut today is due today
                        // and judged at the next end of day), and a cut never drops one.
                        if let Some(statement) = &outcome.statement {
                            cut.push((statement.statement_date, statement.due_date));
                            // The header reconciles from the lines: the closing balance is
                            // what the lines owe and what the header's movements give.
                            let check = statement.check_reconciles();
                            prop_assert!(check.is_ok(), "{:?}: {:?}", check, statement);
                        }
                        if !matches!(account.status, tally_credit::AccountStatus::ChargedOff | tally_credit::AccountStatus::Closed) {
                            prop_assert!(account.unjudged_statements().all(|open| open.due_date > today
                                || (open.due_date == today && open.statement_date == today)));
                            prop_assert!(account.earlier_statements.len() <= 1);
                            cut.retain(|&(_, due_date)| due_date >= today);
                            for &(statement_date, due_date) in &cut {
                                if due_date > today || statement_date == today {
                                    prop_assert!(
                                        account.unjudged_statements().any(|open| open.statement_date == statement_date),
                                        "the statement of {} (due {}) was dropped unjudged on {}",
                                        statement_date, due_date, today
                                    );
                                }
                            }
                        }
                    }
                }
                Operation::Repay(minor) => {
                    let repayment = account.repay(today, cny(minor), &policy).unwrap();
                    post(&mut books, &mut ledger, &repayment.posting);
                }
                Operation::RepayMinimum => {
                    if let Some(open) = &account.open_statement {
                        let owed = open.still_to_pay().minor();
                        if owed > 0 {
                            let repayment = account.repay(today, cny(owed), &policy).unwrap();
                            post(&mut books, &mut ledger, &repayment.posting);
                        }
                    }
                }
                Operation::Refund { plan: index, share_percent } => {
                    if let Some(plan) = account.plans.get(index).cloned() {
                        let refundable = plan.schedule.principal.minor() - plan.refunded.minor();
                        let value = (refundable * share_percent / 100).max(1);
                        let before = account.clone();
                        match account.refund(plan.id, cny(value)) {
                            Ok(posting) => {
                                post(&mut books, &mut ledger, &posting);
                                check_refunded_schedule(&plan, &account.plans[index], value)?;
                            }
                            Err(error) => refused_unchanged(&error, REFUND_REFUSALS, &account, &before)?,
                        }
                    }
                }
                Operation::WriteOff { plan } => {
                    if let Some(plan) = account.plans.get(plan).cloned() {
                        let before = account.clone();
                        match account.write_off_stolen(today, plan.id) {
                            Ok(posting) => post(&mut books, &mut ledger, &posting),
                            Err(error) => refused_unchanged(&error, WRITE_OFF_REFUSALS, &account, &before)?,
                        }
                    }
                }
                Operation::EarlyPayoff { plan } => {
                    if let Some(plan) = account.plans.get(plan).cloned() {
                        match account.early_payoff_quote(plan.id) {
                            Ok((quote, _)) => {
                                let posting = account.early_payoff(today, plan.id, quote).unwrap();
                                post(&mut books, &mut ledger, &posting);
                            }
                            Err(error) => refused_unchanged(&error, PAYOFF_REFUSALS, &account, &account)?,
                        }
                    }
                }
                Operation::BillInstallment => {
                    let before = account.clone();
                    match account.bill_installment(today, &products[0], 3, &policy) {
                        Ok(_) => cut.clear(),
                        Err(error) => refused_unchanged(&error, BILL_INSTALLMENT_REFUSALS, &account, &before)?,
                    }
                }
                Operation::PayOut { share_percent } => {
                    let payable = account.payable_credit_balance().unwrap().minor();
                    prop_assert!(payable <= account.credit_balance.minor());
                    let charged_off = account.status == tally_credit::AccountStatus::ChargedOff;
                    if share_percent == 0 || charged_off {
                        // Refused, changing nothing: more than can be paid out, or any
                        // payout of a charged-off account.
                        let value = if charged_off { payable.max(1) } else { payable + 1 };
                        let before = account.clone();
                        let error = account.pay_out_credit_balance(cny(value)).unwrap_err();
                        let code = if charged_off {
                            "credit_account_charged_off"
                        } else {
                            "credit_payout_exceeds_credit_balance"
                        };
                        prop_assert_eq!(error.code(), code);
                        prop_assert_eq!(&account, &before);
                    } else if payable > 0 {
                        let value = (payable * share_percent / 100).max(1);
                        let posting = account.pay_out_credit_balance(cny(value)).unwrap();
                        post(&mut books, &mut ledger, &posting);
                        paid_out += value;
                    }
                }
            }
            let receivable = books.get(&LedgerRole::CustomerReceivable).copied().unwrap_or(0);
            prop_assert_eq!(
                receivable,
                account.billed_balance().minor() + account.unpaid_principal().minor() - account.dues.iter().map(|due| due.principal.minor()).sum::<i64>(),
                "receivable ledger vs account state on {}", today
            );
            let credit_balance = -books.get(&LedgerRole::CustomerCreditBalance).copied().unwrap_or(0);
            prop_assert_eq!(credit_balance, account.credit_balance.minor());
            let payable = -books.get(&LedgerRole::CustomerPayoutPayable).copied().unwrap_or(0);
            prop_assert_eq!(payable, paid_out);
            prop_assert!(!account.available_credit(today).is_negative());
            prop_assert!(!account.credit_balance.is_negative());
            prop_assert!(account.dues.iter().all(|due| due.outstanding() >= 0 && !due.principal.is_negative()));
        }
        // Every role together sums to zero: the books balance; the real ledger agrees.
        prop_assert_eq!(books.values().sum::<i64>(), 0);
        for (role, id) in &ledger.ids {
            let balance = ledger.memory.account(*id).unwrap().balance;
            prop_assert_eq!(balance.debits_posted - balance.credits_posted, books.get(role).copied().unwrap_or(0));
        }
        // The account's state survives the store's serde round trip unchanged.
        let json = serde_json::to_string(&account).unwrap();
        let back: Account = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, account);
    }
}

#[test]
fn an_incomplete_allocation_order_is_refused() {
    let order = AllocationOrder(vec![AllocationStep::Penalty]);
    assert_eq!(
        order.validate().unwrap_err().code(),
        "credit_invalid_configuration"
    );
    assert!(AllocationOrder::default().validate().is_ok());
}
