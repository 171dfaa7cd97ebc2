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
    // By hand: installments 1 to 3 billed 560.41 of the 2,400.00, so 1,839.59 was still to
    // bill. The refund shortens the plan: it comes off the last installments (12 to 8 to
    // nothing, 7 from 201.23 to 53.58), installments 4 to 6 keep their principal, and each
    // remaining period's interest is 1.5% of what is still owed at its start, 639.59 instead
    // of 1,839.59 before installment 4:
    //   4: 639.59 × 1.5% = 9.5939 → 9.59 (was 27.59, on 1,839.59)
    //   5: 447.15 × 1.5% = 6.7073 → 6.71 (was 24.71)
    //   6: 251.83 × 1.5% = 3.7775 → 3.78 (was 21.78)
    //   7:  53.58 × 1.5% = 0.8037 → 0.80 (was 5.00, the old interest scaled down)
    // The customer pays 58.20 less interest than the schedule before the fix charged.
    let plan = &world.account.plans[usize::try_from(laptop - 1).unwrap()];
    let remaining: Vec<(Amount, Amount)> = plan.schedule.installments[3..]
        .iter()
        .map(|item| (item.principal, item.interest))
        .collect();
    let zero = (cny("0.00"), cny("0.00"));
    assert_eq!(
        remaining,
        vec![
            (cny("192.44"), cny("9.59")),
            (cny("195.32"), cny("6.71")),
            (cny("198.25"), cny("3.78")),
            (cny("53.58"), cny("0.80")),
            zero,
            zero,
            zero,
            zero,
            zero,
        ]
    );
    // The principal parts and the refund still add up exactly to the principal.
    let parts: Vec<Amount> = plan
        .schedule
        .installments
        .iter()
        .map(|item| item.principal)
        .collect();
    assert_eq!(
        Amount::checked_sum(Currency::CNY, &parts)
            .unwrap()
            .checked_add(plan.refunded)
            .unwrap(),
        cny("2400.00")
    );

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

    // Every statement's header reconciles from its lines, by hand. Per statement: previous
    // balance; new principal, fees, interest and penalties; what payments, the credit
    // balance, refunds and write-offs took off billed items and the bill-installment
    // conversion; the closing balance, which the lines also add up to.
    //   5 May: 992.39 + 517.64 + 6.95 + 33.42 − 992.57 = 557.83; the new interest is the
    //   laptop's 33.24 and 0.18 accrued on 6 April on the revolving 360.00, converted with
    //   the April statement into plan 4 (so no line shows it).
    //   5 July: the refund took nothing billed (refunds 1,200.00, none applied).
    //   5 September: 374.69 + 198.25 + 3.78 − 29.37 − 172.66 (credit balance) − 172.66
    //   (the television's billed installment 2, written off) = 202.03.
    #[rustfmt::skip]
    let expected: [(&str, [&str; 11]); 13] = [
        // date        previous   principal fees     interest penalty paid      credit    refund  stolen    converted closing
        ("2026-01-05", ["0.00",   "0.00",   "0.00",  "0.00",  "0.00", "0.00",   "0.00",   "0.00", "0.00",   "0.00",   "0.00"]),
        ("2026-02-05", ["0.00",   "700.00", "8.40",  "0.00",  "0.00", "0.00",   "0.00",   "0.00", "0.00",   "0.00",   "708.40"]),
        ("2026-03-05", ["708.40", "400.00", "8.40",  "0.00",  "0.00", "708.40", "0.00",   "0.00", "0.00",   "0.00",   "408.40"]),
        ("2026-04-05", ["408.40", "584.03", "8.40",  "39.96", "0.00", "48.40",  "0.00",   "0.00", "0.00",   "0.00",   "992.39"]),
        ("2026-05-05", ["992.39", "517.64", "6.95",  "33.42", "0.00", "0.00",   "0.00",   "0.00", "0.00",   "992.57", "557.83"]),
        ("2026-06-05", ["557.83", "520.44", "6.95",  "30.44", "4.20", "562.03", "0.00",   "0.00", "0.00",   "0.00",   "557.83"]),
        ("2026-07-05", ["557.83", "689.97", "12.95", "9.59",  "0.00", "557.83", "0.00",   "0.00", "0.00",   "0.00",   "712.51"]),
        ("2026-08-05", ["712.51", "361.98", "6.00",  "6.71",  "0.00", "712.51", "0.00",   "0.00", "0.00",   "0.00",   "374.69"]),
        ("2026-09-05", ["374.69", "198.25", "0.00",  "3.78",  "0.00", "29.37",  "172.66", "0.00", "172.66", "0.00",   "202.03"]),
        ("2026-10-05", ["202.03", "53.58",  "0.00",  "0.80",  "0.00", "202.03", "0.00",   "0.00", "0.00",   "0.00",   "54.38"]),
        ("2026-11-05", ["54.38",  "0.00",   "0.00",  "0.00",  "0.00", "54.38",  "0.00",   "0.00", "0.00",   "0.00",   "0.00"]),
        ("2026-12-05", ["0.00",   "0.00",   "0.00",  "0.00",  "0.00", "0.00",   "0.00",   "0.00", "0.00",   "0.00",   "0.00"]),
        ("2027-01-05", ["0.00",   "0.00",   "0.00",  "0.00",  "0.00", "0.00",   "0.00",   "0.00", "0.00",   "0.00",   "0.00"]),
    ];
    assert_eq!(world.statements.len(), expected.len());
    for (statement, (statement_date, figures)) in world.statements.iter().zip(expected) {
        let [previous, principal, fees, interest, penalties, paid, credit, refunded, stolen, converted, closing] =
            figures.map(cny);
        assert_eq!(statement.statement_date.to_string(), statement_date);
        let header = [
            statement.previous_balance,
            statement.new_principal,
            statement.new_fees,
            statement.new_interest,
            statement.penalties,
            statement.payments_applied,
            statement.credit_balance_applied,
            statement.refunds_applied,
            statement.written_off_applied,
            statement.converted_to_installments,
            statement.closing_balance,
        ];
        assert_eq!(header, figures.map(cny), "{statement_date}");
        // The identity, written out: the hand figures above add up.
        let computed = previous.minor()
            + principal.minor()
            + fees.minor()
            + interest.minor()
            + penalties.minor()
            - paid.minor()
            - credit.minor()
            - refunded.minor()
            - stolen.minor()
            - converted.minor();
        assert_eq!(computed, closing.minor(), "{statement_date}");
        // And the lines add up to the closing balance.
        let lines: i64 = statement
            .lines
            .iter()
            .map(|line| {
                line.principal.minor()
                    + line.fee.minor()
                    + line.interest.minor()
                    + line.penalty.minor()
            })
            .sum();
        assert_eq!(lines, closing.minor(), "{statement_date}");
        statement.check_reconciles().unwrap();
    }
    // The cycle's whole amounts beside what they took off billed items.
    let july = &world.statements[6];
    assert_eq!(
        (july.refunds, july.refunds_applied),
        (cny("1200.00"), cny("0.00"))
    );
    let september = &world.statements[8];
    assert_eq!(
        (september.written_off, september.written_off_applied),
        (cny("839.34"), cny("172.66"))
    );
    // The laptop's lines after the refund: interest on what is still owed.
    let laptop_interest: Vec<(u32, Amount)> = world
        .statements
        .iter()
        .flat_map(|statement| &statement.lines)
        .filter(|line| line.plan_id == laptop && line.installment >= 4)
        .map(|line| (line.installment, line.interest))
        .collect();
    assert_eq!(
        laptop_interest,
        vec![
            (4, cny("9.59")),
            (5, cny("6.71")),
            (6, cny("3.78")),
            (7, cny("0.80"))
        ]
    );

    insta::assert_json_snapshot!("statements", world.statements);
    insta::assert_json_snapshot!("events", world.events);
    insta::assert_json_snapshot!("books", world.books);
}
