//! How a credit posting becomes journal legs: zero legs dropped, a negative amount moved to
//! the other side, legs merged only on the same role and side, the imbalance that tells a
//! broken rule from a balanced one, and the ledger entry the store posts.

use tally_core::{AccountId, Amount, Currency};
use tally_credit::posting::PostingLeg;
use tally_credit::{LedgerRole, Posting};
use tally_ledger::Side;

fn yuan(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn leg(role: LedgerRole, side: Side, minor: i64) -> PostingLeg {
    PostingLeg {
        role,
        side,
        amount: yuan(minor),
    }
}

#[test]
fn legs_merge_only_on_the_same_role_and_side() {
    let posting = Posting::new("purchase")
        .debit(LedgerRole::CustomerReceivable, yuan(1_000))
        .credit(LedgerRole::MerchantPayable, yuan(970))
        .credit(LedgerRole::MerchantDiscountIncome, yuan(30))
        .debit(LedgerRole::CustomerReceivable, yuan(500))
        .credit(LedgerRole::MerchantPayable, yuan(500))
        // Same role, other side: a leg of its own.
        .credit(LedgerRole::CustomerReceivable, yuan(200))
        .debit(LedgerRole::FeeIncome, yuan(200));
    assert_eq!(posting.description, "purchase");
    assert_eq!(
        posting.legs,
        vec![
            leg(LedgerRole::CustomerReceivable, Side::Debit, 1_500),
            leg(LedgerRole::MerchantPayable, Side::Credit, 1_470),
            leg(LedgerRole::MerchantDiscountIncome, Side::Credit, 30),
            leg(LedgerRole::CustomerReceivable, Side::Credit, 200),
            leg(LedgerRole::FeeIncome, Side::Debit, 200),
        ]
    );
    assert_eq!(posting.imbalance(), 0);
}

#[test]
fn a_negative_amount_moves_on_the_other_side_and_zero_moves_nothing() {
    let posting = Posting::new("reversal")
        .debit(LedgerRole::CustomerReceivable, yuan(-300))
        .credit(LedgerRole::InterestIncome, yuan(-300))
        .debit(LedgerRole::FeeIncome, yuan(0))
        .credit(LedgerRole::PenaltyIncome, yuan(0));
    assert_eq!(
        posting.legs,
        vec![
            leg(LedgerRole::CustomerReceivable, Side::Credit, 300),
            leg(LedgerRole::InterestIncome, Side::Debit, 300),
        ]
    );
    assert!(!posting.is_empty());
    let nothing = Posting::new("nothing")
        .debit(LedgerRole::CustomerReceivable, yuan(0))
        .credit(LedgerRole::RepaymentClearing, yuan(0));
    assert!(nothing.legs.is_empty());
    assert!(nothing.is_empty(), "a posting of zero legs is not sent");
}

#[test]
fn the_imbalance_is_debits_less_credits() {
    let more_debit = Posting::new("unbalanced")
        .debit(LedgerRole::CustomerReceivable, yuan(1_000))
        .credit(LedgerRole::MerchantPayable, yuan(997));
    assert_eq!(more_debit.imbalance(), 3);
    let more_credit = Posting::new("unbalanced")
        .debit(LedgerRole::CustomerReceivable, yuan(990))
        .credit(LedgerRole::MerchantPayable, yuan(1_000));
    assert_eq!(more_credit.imbalance(), -10);
    // Beyond an amount's range: i128.
    let huge = Posting::new("huge")
        .debit(LedgerRole::CustomerReceivable, yuan(i64::MAX))
        .debit(LedgerRole::CustomerReceivable, yuan(i64::MAX));
    assert_eq!(huge.imbalance(), 2 * i128::from(i64::MAX));
}

#[test]
fn the_ledger_entry_has_each_leg_on_the_account_kept_for_its_role() {
    let account = |text: &str| text.parse::<AccountId>().expect("a uuid");
    let receivable = account("00000000-0000-0000-0000-000000000001");
    let payable = account("00000000-0000-0000-0000-000000000002");
    let posting = Posting::new("capture")
        .debit(LedgerRole::CustomerReceivable, yuan(1_234))
        .credit(LedgerRole::MerchantPayable, yuan(1_234));
    let entry = posting.to_new_entry(|role| match role {
        LedgerRole::CustomerReceivable => receivable,
        LedgerRole::MerchantPayable => payable,
        other => panic!("no account for {other:?}"),
    });
    assert_eq!(entry.description, "capture");
    assert!(entry.metadata.is_empty());
    let legs: Vec<(AccountId, Side, Amount)> = entry
        .legs
        .iter()
        .map(|leg| (leg.account_id, leg.side, leg.amount))
        .collect();
    assert_eq!(
        legs,
        vec![
            (receivable, Side::Debit, yuan(1_234)),
            (payable, Side::Credit, yuan(1_234)),
        ]
    );
}
