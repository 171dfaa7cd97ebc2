//! The edge of "overdue" in repayment allocation: an item is overdue from the day after its
//! due date, never on it. A payment made on the due date settles the item as current (its
//! fee, interest and principal in the current steps' order), and only items due before the
//! payment's date are settled by the overdue steps.

use jiff::civil::{date, Date};
use tally_core::{Amount, Currency};
use tally_credit::{allocate, AllocationOrder, AllocationStep, Applied, Component, Due};

fn yuan(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

/// An item of plan `plan_id` owing 100.00 principal, 2.00 fee and 3.00 interest, due on
/// `due_date`.
fn item(plan_id: u32, due_date: Date) -> Due {
    Due {
        plan_id,
        installment: 1,
        statement_date: due_date - jiff::Span::new().days(20),
        due_date,
        revolving: false,
        principal: yuan(10_000),
        fee: yuan(200),
        interest: yuan(300),
        penalty: yuan(0),
        penalty_charged: yuan(0),
        billed: yuan(10_500),
    }
}

fn applied(plan_id: u32, component: Component, minor: i64) -> Applied {
    Applied {
        plan_id,
        installment: 1,
        component,
        amount: yuan(minor),
    }
}

#[test]
fn an_item_is_overdue_from_the_day_after_its_due_date() {
    let due = item(1, date(2026, 3, 10));
    assert!(!due.is_overdue(date(2026, 3, 9)));
    assert!(
        !due.is_overdue(date(2026, 3, 10)),
        "an item is not overdue on its due date"
    );
    assert!(due.is_overdue(date(2026, 3, 11)));

    let mut paid = due;
    paid.principal = yuan(0);
    paid.fee = yuan(0);
    paid.interest = yuan(0);
    assert!(
        !paid.is_overdue(date(2026, 4, 1)),
        "an item that owes nothing is never overdue"
    );
}

#[test]
fn the_payment_date_decides_which_items_the_overdue_and_current_steps_settle() {
    // Current steps first, so that an item taken for overdue (or for current) by mistake is
    // settled at a different place in the sequence.
    let order = AllocationOrder(vec![
        AllocationStep::CurrentPrincipal,
        AllocationStep::CurrentInterest,
        AllocationStep::CurrentFee,
        AllocationStep::Penalty,
        AllocationStep::OverdueFee,
        AllocationStep::OverdueInterest,
        AllocationStep::OverduePrincipal,
    ]);
    order.validate().expect("every step once");
    let paid_on = date(2026, 3, 10);
    let mut dues = vec![
        item(1, date(2026, 2, 10)), // due a month before the payment: overdue
        item(2, paid_on),           // due on the payment's date: current
        item(3, date(2026, 4, 10)), // due after it: current
    ];
    let mut parts = Vec::new();
    // Enough for both current items in full, then part of the overdue one's fee.
    let left = allocate(&mut dues, yuan(21_150), paid_on, &order, &mut parts).expect("allocated");
    assert_eq!(left, yuan(0));
    assert_eq!(
        parts,
        vec![
            // Current principal, oldest due date first: plan 2 (due today), then plan 3.
            applied(2, Component::Principal, 10_000),
            applied(3, Component::Principal, 10_000),
            applied(2, Component::Interest, 300),
            applied(3, Component::Interest, 300),
            applied(2, Component::Fee, 200),
            applied(3, Component::Fee, 200),
            // Only then the overdue item, by the overdue steps.
            applied(1, Component::Fee, 150),
        ]
    );
    assert_eq!(dues[0].fee, yuan(50));
    assert_eq!(dues[0].principal, yuan(10_000));
    assert!(!dues[1].owes() && !dues[2].owes());
}

#[test]
fn a_payment_the_day_after_the_due_date_settles_that_item_as_overdue() {
    let order = AllocationOrder::default();
    let due_date = date(2026, 3, 10);
    let mut dues = vec![item(1, due_date), item(2, date(2026, 4, 10))];
    let mut parts = Vec::new();
    let left = allocate(
        &mut dues,
        yuan(10_400),
        date(2026, 3, 11),
        &order,
        &mut parts,
    )
    .expect("allocated");
    assert_eq!(left, yuan(0));
    // The default order: overdue interest, fee and principal of plan 1, then plan 2's
    // current fee.
    assert_eq!(
        parts,
        vec![
            applied(1, Component::Interest, 300),
            applied(1, Component::Fee, 200),
            applied(1, Component::Principal, 9_900),
        ]
    );
}

#[test]
fn an_allocation_order_lists_each_step_exactly_once() {
    assert!(AllocationOrder::default().validate().is_ok());
    // Seven steps, but one twice and one missing: a payment could never settle the missing
    // component.
    let mut repeated = AllocationOrder::default();
    repeated.0[6] = AllocationStep::Penalty;
    let refused = repeated.validate().expect_err("a step is missing");
    assert_eq!(refused.code(), "credit_invalid_configuration");
    // Every step, and one of them again.
    let mut longer = AllocationOrder::default();
    longer.0.push(AllocationStep::CurrentPrincipal);
    let refused = longer.validate().expect_err("a step is listed twice");
    assert_eq!(refused.code(), "credit_invalid_configuration");
    // A step short.
    let mut shorter = AllocationOrder::default();
    shorter.0.pop();
    assert!(shorter.validate().is_err());
}
