//! Property test of accounts whose amounts come near what an amount can hold (`i64::MAX`
//! minor units): purchases, repayments, refunds, write-offs, early payoffs, bill
//! installments, payouts and days of end of day, in any order. Every refusal is one of the
//! reasons the credit rules give (by stable code; `amount_overflow` when a sum would not fit),
//! and after every accepted step each balance is exact: the test sums the parts itself in
//! 128 bits and finds the account's totals, the postings and the books equal to them, so a
//! total clamped at `i64::MAX` or wrapped round cannot pass.
#![allow(clippy::unwrap_used)]

use jiff::civil::{date, Date};
use jiff::ToSpan;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use tally_core::{Amount, Currency, Rounding};
use tally_credit::account::{DayOutcome, PlanStatus};
use tally_credit::{
    Account, AccountPolicy, Cycle, EarlyPayoffRule, FeeModel, LedgerRole, Posting, Product,
    RemainderOn, TermPricing,
};
use tally_ledger::Side;

/// The reasons an operation of this test may be refused for. Not among them: `money_error`
/// (a generic money failure), `credit_internal` (a broken invariant) and
/// `credit_invalid_configuration`.
const REFUSALS: &[&str] = &[
    "amount_overflow",
    "amount_not_positive",
    "credit_amount_too_large",
    "credit_insufficient",
    "credit_account_frozen",
    "credit_account_closed",
    "credit_account_charged_off",
    "credit_capture_exceeds_authorization",
    "credit_plan_not_active",
    "credit_refund_exceeds_principal",
    "credit_payoff_below_quote",
    "credit_bill_installment_refused",
    "credit_payout_exceeds_credit_balance",
];

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
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
            vec![(1, "0"), (3, "0.007"), (12, "0.008")],
            EarlyPayoffRule::AllRemainingCharges,
        ),
        make(
            "annuity",
            FeeModel::Annuity,
            vec![(3, "0.12"), (12, "0.18")],
            EarlyPayoffRule::OneMorePeriod,
        ),
        make(
            "equal",
            FeeModel::EqualPrincipal,
            vec![(6, "0.15")],
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

/// Minor units near the top of what an amount holds, with some ordinary, zero and negative
/// ones among them.
fn minor() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => (0_i64..1_000_000).prop_map(|below| i64::MAX - below),
        2 => (2_i64..=20).prop_map(|parts| i64::MAX / parts),
        2 => (i64::MAX / 2)..=i64::MAX,
        1 => 1_i64..10_000_000,
        1 => Just(0_i64),
        1 => i64::MIN..0_i64,
    ]
}

#[derive(Debug, Clone)]
enum Step {
    /// Authorise `minor`, then capture `percent` of it into a plan.
    Purchase {
        minor: i64,
        percent: i64,
        product: usize,
        term: usize,
    },
    Days(u8),
    Repay(i64),
    RepayMinimum,
    /// Refund `minor` of a plan, or (`minor` zero) all it has left to refund.
    Refund {
        plan: usize,
        minor: i64,
    },
    WriteOff {
        plan: usize,
    },
    EarlyPayoff {
        plan: usize,
        extra: i64,
    },
    BillInstallment {
        product: usize,
        term: usize,
    },
    PayOut(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (minor(), prop_oneof![Just(100_i64), 1_i64..=100], 0_usize..5, 0_usize..3).prop_map(|(minor, percent, product, term)| Step::Purchase { minor, percent, product, term }),
        6 => (1_u8..45).prop_map(Step::Days),
        3 => minor().prop_map(Step::Repay),
        2 => Just(Step::RepayMinimum),
        2 => (0_usize..6, prop_oneof![Just(0_i64), minor()]).prop_map(|(plan, minor)| Step::Refund { plan, minor }),
        1 => (0_usize..6).prop_map(|plan| Step::WriteOff { plan }),
        1 => (0_usize..6, minor()).prop_map(|(plan, extra)| Step::EarlyPayoff { plan, extra }),
        1 => (0_usize..5, 0_usize..3).prop_map(|(product, term)| Step::BillInstallment { product, term }),
        1 => minor().prop_map(Step::PayOut),
    ]
}

/// The books in 128 bits, per ledger role (debit positive): they cannot overflow, so they are
/// the exact sum of every posting.
#[derive(Default)]
struct Books(BTreeMap<LedgerRole, i128>);

impl Books {
    fn post(&mut self, posting: &Posting) -> Result<(), TestCaseError> {
        prop_assert_eq!(posting.imbalance(), 0, "unbalanced: {:?}", posting);
        for leg in &posting.legs {
            prop_assert!(leg.amount.is_positive(), "{:?}", posting);
            prop_assert_eq!(leg.amount.currency(), Currency::CNY);
            let signed = match leg.side {
                Side::Debit => i128::from(leg.amount.minor()),
                Side::Credit => -i128::from(leg.amount.minor()),
            };
            *self.0.entry(leg.role).or_default() += signed;
        }
        Ok(())
    }

    fn balance(&self, role: LedgerRole) -> i128 {
        self.0.get(&role).copied().unwrap_or(0)
    }
}

fn exact(value: Amount) -> i128 {
    i128::from(value.minor())
}

/// Every balance of the account is exact: each total the account reports equals the sum of
/// its parts computed here in 128 bits, and the books agree with the account.
fn check_exact(account: &Account, books: &Books, today: Date) -> Result<(), TestCaseError> {
    let mut billed = 0_i128;
    let mut billed_principal = 0_i128;
    for due in &account.dues {
        for part in [due.principal, due.fee, due.interest, due.penalty] {
            prop_assert!(!part.is_negative(), "{:?}", due);
            billed += exact(part);
        }
        billed_principal += exact(due.principal);
        prop_assert_eq!(
            i128::from(due.outstanding()),
            exact(due.principal) + exact(due.fee) + exact(due.interest) + exact(due.penalty)
        );
    }
    let unbilled: i128 = account
        .plans
        .iter()
        .filter(|plan| plan.status == PlanStatus::Active)
        .flat_map(|plan| &plan.schedule.installments[plan.billed as usize..])
        .map(|item| exact(item.principal))
        .sum();
    prop_assert_eq!(exact(account.billed_balance()), billed);
    prop_assert_eq!(exact(account.checked_billed_balance().unwrap()), billed);
    prop_assert_eq!(
        exact(account.unpaid_principal()),
        billed_principal + unbilled
    );
    // The receivable is what is billed and still owed plus the principal not yet billed.
    prop_assert_eq!(
        books.balance(LedgerRole::CustomerReceivable),
        billed + unbilled
    );
    prop_assert!(!account.credit_balance.is_negative());
    prop_assert_eq!(
        -books.balance(LedgerRole::CustomerCreditBalance),
        exact(account.credit_balance)
    );
    prop_assert!(!account.held.is_negative());
    let authorized: i128 = account
        .authorizations
        .iter()
        .map(|held| exact(held.amount))
        .sum();
    prop_assert_eq!(exact(account.held), authorized);
    let limit = exact(account.effective_limit(today));
    let available = (limit - (billed_principal + unbilled) - exact(account.held)).max(0);
    prop_assert_eq!(exact(account.available_credit(today)), available);
    let payable = (exact(account.credit_balance) - billed).max(0);
    prop_assert_eq!(exact(account.payable_credit_balance().unwrap()), payable);
    for open in account.unjudged_statements() {
        let excused: i128 = open.plans.iter().map(|plan| exact(plan.excused)).sum();
        let minimum_due = (exact(open.minimum_payment) - excused).max(0);
        prop_assert_eq!(exact(open.minimum_due()), minimum_due);
        prop_assert_eq!(
            exact(open.still_to_pay()),
            (minimum_due - exact(open.paid)).max(0)
        );
        prop_assert!(!open.paid.is_negative());
    }
    // The books balance: every role together sums to zero.
    prop_assert_eq!(books.0.values().sum::<i128>(), 0);
    Ok(())
}

/// A refusal must give one of the expected reasons.
fn check_refusal(step: &Step, error: &tally_credit::CreditError) -> Result<(), TestCaseError> {
    prop_assert!(
        REFUSALS.contains(&error.code()),
        "{:?} refused with {} ({})",
        step,
        error.code(),
        error
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn amounts_near_the_limit_are_exact_or_refused(
        steps in proptest::collection::vec(step(), 1..40),
        statement_day in 1_i8..=28,
    ) {
        let policy = AccountPolicy::default();
        let products = products();
        let mut account = Account::open(cny(i64::MAX), Cycle::new(statement_day, 9).unwrap()).unwrap();
        let mut books = Books::default();
        let mut today = date(2026, 1, 1);
        let mut outcome = DayOutcome::default();
        for step in steps {
            // A refused step leaves the account as it was, as the store keeps it.
            let before = account.clone();
            let result: Result<Vec<Posting>, tally_credit::CreditError> = match &step {
                Step::Purchase { minor, percent, product, term } => {
                    let product = &products[*product];
                    let periods = product.terms[term % product.terms.len()].periods;
                    let expires_on = today.checked_add(5.days()).unwrap();
                    account
                        .authorize_purchase(today, cny(*minor), expires_on, "purchase".into())
                        .and_then(|id| {
                            let captured = i64::try_from(i128::from(*minor) * i128::from(*percent) / 100).unwrap().max(1);
                            account.capture_authorization(today, id, cny(captured), product, periods)
                        })
                        .map(|(_, _, posting)| vec![posting])
                }
                Step::Days(days) => {
                    let mut postings = Vec::new();
                    let mut result = Ok(());
                    for _ in 0..*days {
                        let day = today.checked_add(1.day()).unwrap();
                        let before_day = account.clone();
                        result = account.end_of_day(day, &policy, &mut outcome);
                        if result.is_err() {
                            // The store keeps the state from before the refused day.
                            account = before_day;
                            break;
                        }
                        today = day;
                        postings.extend(outcome.postings.iter().cloned());
                        if let Some(statement) = &outcome.statement {
                            let check = statement.check_reconciles();
                            prop_assert!(check.is_ok(), "{:?}: {:?}", check, statement);
                            // The plans' parts of the minimum add up to at most the minimum,
                            // which is at most the balance.
                            let open = account.open_statement.as_ref().unwrap();
                            let shares: i128 = open.plans.iter().map(|plan| exact(plan.share)).sum();
                            prop_assert!(shares <= exact(statement.minimum_payment));
                            prop_assert!(statement.minimum_payment.minor() <= statement.closing_balance.minor());
                        }
                    }
                    // The days run before a refused one stand: post them, then judge the refusal.
                    for posting in &postings {
                        books.post(posting)?;
                    }
                    match result {
                        Ok(()) => Ok(Vec::new()),
                        Err(error) => {
                            check_refusal(&step, &error)?;
                            check_exact(&account, &books, today)?;
                            continue;
                        }
                    }
                }
                Step::Repay(minor) => account.repay(today, cny(*minor), &policy).map(|repayment| vec![repayment.posting]),
                Step::RepayMinimum => match account.open_statement.as_ref().map(|open| open.still_to_pay()) {
                    Some(owed) if owed.is_positive() => account.repay(today, owed, &policy).map(|repayment| vec![repayment.posting]),
                    _ => Ok(Vec::new()),
                },
                Step::Refund { plan, minor } => match account.plans.get(*plan).cloned() {
                    Some(plan) => {
                        let value = if *minor == 0 {
                            plan.schedule.principal.checked_sub(plan.refunded).unwrap()
                        } else {
                            cny(*minor)
                        };
                        account.refund(plan.id, value).map(|posting| vec![posting])
                    }
                    None => Ok(Vec::new()),
                },
                Step::WriteOff { plan } => match account.plans.get(*plan).map(|plan| plan.id) {
                    Some(id) => account.write_off_stolen(today, id).map(|posting| vec![posting]),
                    None => Ok(Vec::new()),
                },
                Step::EarlyPayoff { plan, extra } => match account.plans.get(*plan).map(|plan| plan.id) {
                    Some(id) => match account.early_payoff_quote(id) {
                        Ok((quote, _)) => {
                            // The quote and something more, as far as an amount holds.
                            let value = (exact(quote) + i128::from((*extra).max(0))).min(i128::from(i64::MAX));
                            account.early_payoff(today, id, cny(i64::try_from(value).unwrap())).map(|posting| vec![posting])
                        }
                        Err(error) => Err(error),
                    },
                    None => Ok(Vec::new()),
                },
                Step::BillInstallment { product, term } => {
                    let product = &products[*product];
                    let periods = product.terms[term % product.terms.len()].periods;
                    account.bill_installment(today, product, periods, &policy).map(|_| Vec::new())
                }
                Step::PayOut(minor) => account.pay_out_credit_balance(cny(*minor)).map(|posting| vec![posting]),
            };
            match result {
                Ok(postings) => {
                    for posting in &postings {
                        books.post(posting)?;
                    }
                }
                Err(error) => {
                    check_refusal(&step, &error)?;
                    account = before;
                }
            }
            check_exact(&account, &books, today)?;
        }
        // The account's state survives the store's serde round trip unchanged.
        let json = serde_json::to_string(&account).unwrap();
        let back: Account = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, account);
    }
}
