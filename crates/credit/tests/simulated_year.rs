//! A simulated year of one customer: purchases in three products, a statement paid in full,
//! a minimum payment, a bill installment, a late month, a refund and a stolen-account
//! write-off. Every statement is snapshot-tested (insta) and the key figures are checked by
//! hand below.
#![allow(clippy::unwrap_used)]

use jiff::civil::{date, Date};
use jiff::ToSpan;
use std::collections::BTreeMap;
use tally_core::{Amount, Currency};
use tally_credit::account::DayOutcome;
use tally_credit::{
    Account, AccountPolicy, AccountStatus, Bucket, Cycle, LedgerRole, Posting, Product, Statement,
};
use tally_ledger::{AccountFlags, AccountKind, Command, MemoryLedger, NewAccount, Outcome, Side};

fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

const FLAT: &str = r#"
code = "baitiao"
name = "Installments, flat fee"
currency = "CNY"
fee_model = { kind = "flat_fee" }
early_payoff = { kind = "all_remaining_charges" }
terms = [
  { periods = 1, rate = "0" },
  { periods = 3, rate = "0.007" },
  { periods = 6, rate = "0.006" },
  { periods = 12, rate = "0.008" },
  { periods = 24, rate = "0.005" },
]
"#;

const ANNUITY: &str = r#"
code = "loan"
name = "Installments, APR on the declining balance"
currency = "CNY"
fee_model = { kind = "annuity" }
terms = [{ periods = 12, rate = "0.18" }]
"#;

struct World {
    account: Account,
    policy: AccountPolicy,
    today: Date,
    statements: Vec<Statement>,
    books: BTreeMap<LedgerRole, i64>,
    postings: Vec<Posting>,
    events: Vec<String>,
    outcome: DayOutcome,
    /// Pay the statement in full on its due date.
    autopay: bool,
}

impl World {
    fn post(&mut self, posting: &Posting) {
        assert_eq!(posting.imbalance(), 0);
        self.postings.push(posting.clone());
        for leg in &posting.legs {
            let signed = match leg.side {
                Side::Debit => leg.amount.minor(),
                Side::Credit => -leg.amount.minor(),
            };
            *self.books.entry(leg.role).or_default() += signed;
        }
    }

    /// Runs end of day for every date up to and including `until`.
    fn run_until(&mut self, until: Date) {
        while self.today < until {
            self.today = self.today.checked_add(1.day()).unwrap();
            // Autopay on the due date, before its end of day judges the statement.
            let due_today = self
                .account
                .open_statement
                .as_ref()
                .is_some_and(|open| open.due_date == self.today);
            if self.autopay && due_today {
                let owed = self.account.billed_balance();
                let to_pay = owed.checked_sub(self.account.credit_balance).unwrap();
                if to_pay.is_positive() {
                    self.repay(to_pay);
                }
            }
            let mut outcome = std::mem::take(&mut self.outcome);
            self.account
                .end_of_day(self.today, &self.policy, &mut outcome)
                .unwrap();
            for posting in &outcome.postings {
                self.post(posting);
            }
            if let Some(statement) = outcome.statement.take() {
                self.statements.push(statement);
            }
            for action in &outcome.actions {
                self.events.push(format!("{}: {action:?}", self.today));
            }
            for contact in &outcome.contacts {
                self.events.push(format!(
                    "{}: contact ({}, {} days, {}, priority {})",
                    self.today,
                    contact.reason,
                    contact.days_past_due,
                    contact.amount,
                    contact.priority
                ));
            }
            self.outcome = outcome;
        }
    }

    fn purchase(&mut self, value: &str, product: &Product, periods: u32) -> u32 {
        self.account.authorize(self.today, cny(value)).unwrap();
        let (id, posting) = self
            .account
            .capture(self.today, cny(value), product, periods)
            .unwrap();
        self.post(&posting);
        self.events.push(format!(
            "{}: purchase {value} over {periods}, plan {id}",
            self.today
        ));
        id
    }

    fn repay(&mut self, value: Amount) {
        let repayment = self.account.repay(self.today, value, &self.policy).unwrap();
        let posting = repayment.posting.clone();
        self.post(&posting);
        self.events.push(format!("{}: repay {value}", self.today));
    }

    fn last(&self) -> &Statement {
        self.statements.last().unwrap()
    }
}

#[test]
fn a_year_of_one_customer() {
    let flat = Product::from_toml(FLAT).unwrap();
    let annuity = Product::from_toml(ANNUITY).unwrap();
    let mut world = World {
        account: Account::open(cny("10000.00"), Cycle::new(5, 9).unwrap()).unwrap(),
        policy: AccountPolicy::default(),
        today: date(2026, 1, 1),
        statements: Vec::new(),
        books: BTreeMap::new(),
        postings: Vec::new(),
        events: Vec::new(),
        outcome: DayOutcome::default(),
        autopay: false,
    };

    // January: a phone in 3 installments at 0.7% a period and groceries in one period.
    world.run_until(date(2026, 1, 10));
    let phone = world.purchase("1200.00", &flat, 3);
    world.run_until(date(2026, 1, 20));
    world.purchase("300.00", &flat, 1);
    assert_eq!(world.account.available_credit(world.today), cny("8500.00"));

    // 5 February: installment 1 of the phone (400.00 + fee 1,200.00 × 0.7% = 8.40) and the
    // groceries (300.00): 708.40, due 14 February. Minimum = 10% × 700.00 + 8.40 = 78.40.
    world.run_until(date(2026, 2, 5));
    assert_eq!(world.last().closing_balance, cny("708.40"));
    assert_eq!(world.last().minimum_payment, cny("78.40"));
    assert_eq!(world.last().due_date, date(2026, 2, 14));
    // Paid in full by the due date: the one-period purchase costs nothing.
    world.run_until(date(2026, 2, 12));
    world.repay(cny("708.40"));

    // 5 March: installment 2, 408.40; minimum 40.00 + 8.40 = 48.40. Only the minimum is paid,
    // so from 15 March the remaining 360.00 revolves at 0.05% a day = 0.18 a day.
    world.run_until(date(2026, 3, 5));
    assert_eq!(world.last().new_interest, cny("0.00"));
    assert_eq!(world.last().closing_balance, cny("408.40"));
    assert_eq!(world.last().minimum_payment, cny("48.40"));
    world.run_until(date(2026, 3, 10));
    world.repay(cny("48.40"));
    world.run_until(date(2026, 3, 20));
    let laptop = world.purchase("2400.00", &annuity, 12);

    // 5 April: 21 days of revolving interest (15 March to 4 April accrue on the nights of
    // 15 March … 4 April; end of day 5 April accrues the 22nd): 22 × 0.18 = 3.96. Phone
    // installment 3: 408.40. Laptop installment 1 at 1.5% a month: payment 220.03, of which
    // interest 36.00. Closing = 360.00 + 3.96 + 408.40 + 220.03 = 992.39.
    world.run_until(date(2026, 4, 5));
    assert_eq!(world.last().new_interest, cny("39.96"));
    assert_eq!(world.last().closing_balance, cny("992.39"));

    // The customer puts the April statement into 3 installments at 0.7% (bill installment)
    // after end of day 6 April has accrued one more day on the revolving 360.00 (0.18):
    // 992.57 becomes plan 4: 330.85, 330.85, 330.87 plus 992.57 × 0.7% = 6.95 a month.
    world.run_until(date(2026, 4, 6));
    let converted = world
        .account
        .bill_installment(world.today, &flat, 3, &world.policy)
        .unwrap();
    world.events.push(format!(
        "{}: bill installment, plan {converted}",
        world.today
    ));
    assert_eq!(world.account.billed_balance(), cny("0.00"));
    let plan = &world.account.plans[usize::try_from(converted - 1).unwrap()];
    let parts: Vec<(Amount, Amount)> = plan
        .schedule
        .installments
        .iter()
        .map(|item| (item.principal, item.fee))
        .collect();
    assert_eq!(
        parts,
        vec![
            (cny("330.85"), cny("6.95")),
            (cny("330.85"), cny("6.95")),
            (cny("330.87"), cny("6.95"))
        ]
    );
    assert!(world
        .account
        .bill_installment(world.today, &flat, 3, &world.policy)
        .is_err());

    // 5 May: plan 4 installment 1 (330.79 + 6.95) and laptop installment 2; a late month:
    // nothing is paid until 1 June. Due 14 May; grace 3 days; penalties from 18 May.
    world.run_until(date(2026, 5, 5));
    let may = world.last().closing_balance;
    world.run_until(date(2026, 5, 15));
    assert_eq!(world.account.bucket, Bucket::M1);
    assert_eq!(world.account.status, AccountStatus::Frozen);
    assert!(world.account.authorize(world.today, cny("1.00")).is_err());
    world.run_until(date(2026, 6, 1));
    let owed = world.account.billed_balance();
    assert_eq!(may, cny("557.83"));
    world.repay(owed);
    // By hand: penalties start when days past due exceed the 3-day grace, on 18 May, and run
    // to 1 June: 15 days of 337.80 × 0.05% = 0.1689 → 0.17 and 220.03 × 0.05% = 0.110 →
    // 0.11, half-up: 15 × 0.28 = 4.20.
    assert_eq!(owed, may.checked_add(cny("4.20")).unwrap());
    world.run_until(date(2026, 6, 2));
    assert_eq!(world.account.bucket, Bucket::Current);
    assert_eq!(world.account.status, AccountStatus::Open);
    // From now on the customer pays every statement in full on its due date.
    world.autopay = true;

    // 10 June: half the laptop is returned: 1,200.00 off its unbilled installments, last first.
    world.run_until(date(2026, 6, 10));
    let posting = world.account.refund(laptop, cny("1200.00")).unwrap();
    world.post(&posting);
    world
        .events
        .push(format!("{}: refund 1200.00 of plan {laptop}", world.today));

    // 2 July: a thief buys a television on the stolen account; the customer reports it after
    // the August statement; it is written off on 10 August.
    world.run_until(date(2026, 7, 2));
    assert_eq!(world.account.status, AccountStatus::Open);
    let television = world.purchase("1000.00", &flat, 6);
    world.run_until(date(2026, 8, 10));
    // By hand: installment 1 (166.66 + fee 6.00) was billed 5 July and paid 14 July;
    // installment 2 was billed 5 August. The customer gets the 172.66 paid back as credit
    // balance, owes nothing for the television (833.34 principal and 6.00 fee cancelled), and
    // 1,000.00 goes to fraud-loss expense.
    let credit_before = world.account.credit_balance;
    let posting = world
        .account
        .write_off_stolen(world.today, television)
        .unwrap();
    assert_eq!(
        world.account.credit_balance,
        credit_before.checked_add(cny("172.66")).unwrap()
    );
    assert!(posting
        .legs
        .iter()
        .any(|leg| leg.role == LedgerRole::FraudLossExpense && leg.amount == cny("1000.00")));
    world.post(&posting);
    world.events.push(format!(
        "{}: stolen-account write-off of plan {television}",
        world.today
    ));

    world.run_until(date(2027, 1, 5));

    // The phone plan was settled; the customer owes nothing for the television.
    assert_eq!(
        world.account.plans[usize::try_from(phone - 1).unwrap()].status,
        tally_credit::account::PlanStatus::Settled
    );
    assert_eq!(
        world.account.plans[usize::try_from(television - 1).unwrap()].status,
        tally_credit::account::PlanStatus::WrittenOffFraud
    );
    // The books: the receivable equals what the account says is owed.
    let receivable = world
        .books
        .get(&LedgerRole::CustomerReceivable)
        .copied()
        .unwrap_or(0);
    assert_eq!(
        receivable,
        world.account.billed_balance().minor() + world.account.unpaid_principal().minor()
            - world
                .account
                .dues
                .iter()
                .map(|due| due.principal.minor())
                .sum::<i64>()
    );
    assert_eq!(world.books.values().sum::<i64>(), 0);

    // Every posting is accepted by the real ledger rules, in order, with the receivable never
    // below zero and the customers' credit balance never below zero, and the ledger ends with
    // the same balances.
    let mut ledger = MemoryLedger::new();
    let now: jiff::Timestamp = "2027-01-05T00:00:00Z".parse().unwrap();
    let roles = [
        (LedgerRole::CustomerReceivable, AccountKind::Asset),
        (LedgerRole::RepaymentClearing, AccountKind::Asset),
        (LedgerRole::MerchantPayable, AccountKind::Liability),
        (LedgerRole::CustomerCreditBalance, AccountKind::Liability),
        (LedgerRole::FeeIncome, AccountKind::Income),
        (LedgerRole::InterestIncome, AccountKind::Income),
        (LedgerRole::PenaltyIncome, AccountKind::Income),
        (LedgerRole::MerchantDiscountIncome, AccountKind::Income),
        (LedgerRole::FraudLossExpense, AccountKind::Expense),
        (LedgerRole::ChargeOffExpense, AccountKind::Expense),
    ];
    let mut ids = BTreeMap::new();
    for (role, kind) in roles {
        let flags = AccountFlags {
            credits_must_not_exceed_debits: role == LedgerRole::CustomerReceivable,
            debits_must_not_exceed_credits: role == LedgerRole::CustomerCreditBalance,
        };
        let command = Command::CreateAccount(NewAccount {
            code: format!("credit:{role:?}"),
            kind,
            currency: Currency::CNY,
            flags,
            metadata: BTreeMap::new(),
        });
        let Outcome::Account(account) = ledger.apply(&format!("{role:?}"), &command, now).unwrap()
        else {
            panic!("not an account");
        };
        ids.insert(role, account.id);
    }
    for (index, posting) in world.postings.iter().enumerate() {
        let entry = posting.to_new_entry(|role| ids[&role]);
        ledger
            .apply(&format!("posting-{index}"), &Command::PostEntry(entry), now)
            .unwrap_or_else(|error| panic!("{posting:?}: {error}"));
    }
    for (role, id) in &ids {
        let balance = ledger.account(*id).unwrap().balance;
        let debit_minus_credit = balance.debits_posted - balance.credits_posted;
        assert_eq!(
            debit_minus_credit,
            world.books.get(role).copied().unwrap_or(0),
            "{role:?}"
        );
    }

    insta::assert_json_snapshot!("statements", world.statements);
    insta::assert_json_snapshot!("events", world.events);
    insta::assert_json_snapshot!("books", world.books);
}
