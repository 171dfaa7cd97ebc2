//! Credit payment rules of Tally ("consume first, pay later"), as pure logic with no I/O.
//!
//! A shopper's [`Account`] has a limit; purchases are authorised against available credit
//! (limit − unpaid principal − held), captured into a [`Plan`] priced by a [`Product`]
//! (flat fee, annuity, equal principal, interest-free, pay-in-N) whose [`Schedule`] says what
//! falls due when; every plan discloses its [`TrueApr`]. [`Account::end_of_day`] bills
//! installments, cuts statements, accrues daily interest and penalties and ages delinquency;
//! repayments, refunds, early payoff, bill installment, stolen-account write-offs,
//! charge-offs and paying a credit balance back to the customer are methods on the account. Every operation returns the balanced journal
//! [`Posting`]s it implies, on [`LedgerRole`]s the store maps to ledger accounts.
//!
//! Time enters only as the dates the caller passes; amounts are `tally_core::Amount`; rates
//! are `rust_decimal::Decimal`; there is no floating point in this crate.
//!
//! # Decisions
//!
//! - **Rounding.** Fees, installment interest, the annuity payment, daily interest and daily
//!   penalties are rounded to the minor unit with the mode the product or policy names
//!   (default half-up), once per item and period (per item and day for daily charges).
//!   The penalty cap rounds down; the principal share of the minimum payment rounds up.
//!   Reported rates keep 10 decimals, half-even.
//! - **Pricing tiers.** The credit decision gives an account a pricing tier; a term of a
//!   customer-charged product (flat fee, annuity, equal principal) may list a rate per tier
//!   (`tier_rates`), and each plan is priced at its account's tier rate when listed, else at
//!   the term's rate. The schedule records the rate and tier used, so a plan's price is
//!   explained by its own data even after the catalog changes.
//! - **Remainders.** An even principal split gives every installment the principal / n
//!   truncated and puts all the left-over minor units on the installment the product names
//!   (`remainder_on`, default the last). An annuity's equal payment is the exact payment
//!   rounded; interest is charged on the actual (rounded) declining balance, and the last
//!   installment takes the remaining balance. Pay-in-N: the first share is rounded, the rest
//!   split as above. So principal parts always sum exactly to the principal (property-tested).
//! - **True APR.** The internal rate of return of the customer's cash flows per period
//!   (rounded installments included), found by bisection in `Decimal`, equal periods (months
//!   not counted in days). Nominal APR = periodic × periods a year (12; 26 for pay-in-N every
//!   two weeks); the effective annual rate (1 + periodic)^periods − 1 is reported beside it.
//! - **Refunds shorten the plan, for every product.** A refund comes off the installments
//!   not yet billed, the last first, then billed principal still owed, then principal
//!   already paid (to the credit balance): no remaining installment's principal rises and
//!   the plan ends sooner. The charges follow what is still owed: a flat fee (per
//!   installment, on the original principal) shrinks with the principal left on its
//!   installment, rounded down; annuity and equal-principal interest is charged again on
//!   the principal still owed at the start of each remaining period, with the rate and
//!   rounding the schedule keeps ([`DecliningBalance`]; inferred, half-up, for schedules
//!   stored before), never above the figure before the refund; interest-free and pay-in-N
//!   plans charge the customer nothing and give back the merchant discount in proportion.
//!   Why not re-amortise (equal payments over the same remaining term) or keep the
//!   payment: the first stretches the principal over more periods and costs the customer
//!   more interest, the second raises the principal of installments already disclosed;
//!   shortening keeps every disclosed installment or lowers it, and is one rule for all
//!   products.
//! - **Statements reconcile.** A statement's closing balance is what its lines still owe,
//!   and is the previous balance + new principal, fees, interest (installment and daily)
//!   and penalties − what payments, the credit balance, refunds and stolen-account
//!   write-offs took off billed items − what a bill installment converted
//!   ([`Statement::check_reconciles`]). `payments`, `refunds` and `written_off` stay the
//!   cycle's whole amounts, billed or not, beside their `…_applied` parts.
//! - **Allocation order** (configurable, [`AllocationOrder`]): penalties, overdue interest,
//!   overdue fees, overdue principal, current fees, current interest, current principal;
//!   within a step the oldest due date first. What is left becomes credit balance, which
//!   settles billed items at the next end of day.
//! - **Cycle.** A purchase is billed on the first statement day strictly after it; due date
//!   = statement date + `due_days` (9; 1 to 28 for a new account, so a statement falls due
//!   at the latest on the next statement date). Accounts opened before that rule may hold
//!   `due_days` 0 to 31 and keep working: plans for an existing account are built on its
//!   stored cycle ([`Cycle::check_stored`]); with 29 to 31 a statement not yet due when the
//!   next is cut waits in `Account::earlier_statements` and is judged at the end of its own
//!   due date (money paid between the later cut and that date counts first towards its
//!   minimum, the rest towards the open statement's); with 0 a statement is due the day it
//!   is cut and judged at the next end of day, so only a zero minimum can be met. Minimum =
//!   everything overdue + current fees, interest and
//!   penalties + 10% of current principal. The statement is judged at the end of its due
//!   date (payments dated on or before it count), before a statement cut that day. If the
//!   minimum is met the remainder revolves to the next due date at 0.05% a day (from the day
//!   after the due date, not back-dated to the purchase); if not, it is overdue: after a
//!   3-day grace, 0.05% a day on its principal, fee and interest, capped at 25% of what the
//!   item billed.
//! - **Minimum met.** What the customer's money settled on the account between the statement
//!   and the end of the due date (repayments, early payoffs, credit balance applied; each
//!   minor unit once) reaches the minimum less the part of it refunds and stolen-account
//!   write-offs took away (per plan, as cut; never below zero). See [`account::OpenStatement`].
//! - **Buckets** by days past due from the oldest unpaid due date: M1 = 1–30 … M6 = 151–180,
//!   M6+ = over 180; default actions: freeze and contact at M1, contact at M3, charge-off at
//!   M6+, run when an end of day's bucket is above the previous end of day's (a payment
//!   during the day cannot hide the rise). A delinquency freeze lifts when the account is
//!   current again.
//! - **Credit balance payout.** The customer's credit balance (overpayments, refunds and
//!   write-offs of what they had paid) is theirs: [`Account::pay_out_credit_balance`] moves
//!   part or all of it to a payable to the customer (`customer_payout_payable`) until the
//!   payment system settles the transfer. Billed items still owed come first (end of day
//!   settles them from the credit balance), so at most the credit balance less the billed
//!   balance is paid out (`credit_payout_exceeds_credit_balance`). An open, frozen or closed
//!   account pays out; a charged-off one does not (`credit_account_charged_off`: the balance
//!   stays against the debt charged off). A payout is not a payment: it counts towards no
//!   minimum. Statements show what was paid out in their cycle.
//! - **Overflow.** Money moves through `tally_core::Amount`'s checked arithmetic only:
//!   nothing is clamped at `i64::MAX` or wrapped. A capture or bill installment whose plan,
//!   or whose account with it, could come to owe more than an amount holds is refused
//!   (`credit_amount_too_large`); any other step after which a sum would not fit (a
//!   repayment that would take the credit balance past it, an end of day whose interest and
//!   penalties would take what is owed past it) is refused with `amount_overflow`, and the
//!   store keeps the state from before. A broken invariant is `credit_internal`. Postings
//!   move exactly what they are given: legs whose sum would not fit stay apart. The minimum
//!   payment is computed in one place (`Minimum::of`, in `account/statement.rs`), for the
//!   statement and for each plan's part of it.
//! - **Plain data for end of day.** Accounts, plans and due items are serde structs the store
//!   persists as they are; `end_of_day` reuses the caller's [`DayOutcome`] and allocates only
//!   for new due items, postings and statements.

pub mod account;
pub mod allocation;
mod amounts;
pub mod collections;
pub mod decision;
pub mod error;
pub mod finance;
pub mod posting;
pub mod product;
pub mod schedule;

pub use account::{
    Account, AccountPolicy, AccountStatus, Authorization, Bucket, ContactTask, DayOutcome, Plan,
    Statement,
};
pub use allocation::{allocate, AllocationOrder, AllocationStep, Applied, Component, Due};
pub use collections::{
    worklist, CallOutcome, ContactPlan, ContactRefusal, ContactRules, Promise, Task, TaskKind,
};
pub use decision::{Applicant, CreditPolicy, Decision, DeclineReason};
pub use error::CreditError;
pub use finance::TrueApr;
pub use posting::{LedgerRole, Posting};
pub use product::{Catalog, EarlyPayoffRule, FeeModel, Pricing, Product, RemainderOn, TermPricing};
pub use schedule::{Cycle, DecliningBalance, Installment, Schedule};
