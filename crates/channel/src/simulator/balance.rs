//! A card's balance at the simulated bank and the five ways money moves on it. Each move
//! returns the new balance or an error and leaves `self` alone, so a refused move changes
//! nothing; every balance keeps
//! `available = opening − held − captured + refunded + paid_out`.

use tally_core::{Amount, MoneyError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CardBalance {
    pub opening: Amount,
    /// What the card can still spend.
    pub available: Amount,
    /// Held by authorisations not yet captured or voided.
    pub held: Amount,
    /// Taken by captures; refunds do not lower it.
    pub captured: Amount,
    pub refunded: Amount,
    pub paid_out: Amount,
}

impl CardBalance {
    pub(crate) fn opening(opening: Amount) -> Self {
        let zero = Amount::zero(opening.currency());
        CardBalance {
            opening,
            available: opening,
            held: zero,
            captured: zero,
            refunded: zero,
            paid_out: zero,
        }
    }

    /// Whether `amount` can be held: the caller refuses with `insufficient_funds` otherwise.
    pub(crate) fn covers(&self, amount: Amount) -> bool {
        amount.currency() == self.available.currency() && amount.minor() <= self.available.minor()
    }

    /// An authorisation holds `amount` (the caller checked [`CardBalance::covers`]).
    pub(crate) fn hold(&self, amount: Amount) -> Result<Self, MoneyError> {
        Ok(CardBalance {
            available: self.available.checked_sub(amount)?,
            held: self.held.checked_add(amount)?,
            ..*self
        })
    }

    /// A hold of `authorized` ends: `captured` of it is taken, the rest released.
    pub(crate) fn capture(&self, authorized: Amount, captured: Amount) -> Result<Self, MoneyError> {
        let released = authorized.checked_sub(captured)?;
        Ok(CardBalance {
            available: self.available.checked_add(released)?,
            held: self.held.checked_sub(authorized)?,
            captured: self.captured.checked_add(captured)?,
            ..*self
        })
    }

    /// A hold of `authorized` is voided: all of it released.
    pub(crate) fn release(&self, authorized: Amount) -> Result<Self, MoneyError> {
        self.capture(authorized, Amount::zero(authorized.currency()))
    }

    pub(crate) fn refund(&self, amount: Amount) -> Result<Self, MoneyError> {
        Ok(CardBalance {
            available: self.available.checked_add(amount)?,
            refunded: self.refunded.checked_add(amount)?,
            ..*self
        })
    }

    pub(crate) fn pay_out(&self, amount: Amount) -> Result<Self, MoneyError> {
        Ok(CardBalance {
            available: self.available.checked_add(amount)?,
            paid_out: self.paid_out.checked_add(amount)?,
            ..*self
        })
    }

    /// `opening − held − captured + refunded + paid_out`, in i128 so it cannot overflow.
    #[cfg(test)]
    fn expected_available(&self) -> i128 {
        i128::from(self.opening.minor())
            - i128::from(self.held.minor())
            - i128::from(self.captured.minor())
            + i128::from(self.refunded.minor())
            + i128::from(self.paid_out.minor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Currency;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    #[test]
    fn every_move_keeps_the_available_balance_equation() {
        let balance = CardBalance::opening(cny(10_000));
        assert!(balance.covers(cny(10_000)));
        assert!(!balance.covers(cny(10_001)));
        assert!(!balance.covers(Amount::new(1, Currency::USD)));
        let steps = [
            balance.hold(cny(4_000)).expect("held"),
            balance
                .hold(cny(4_000))
                .and_then(|held| held.capture(cny(4_000), cny(2_500)))
                .expect("captured"),
            balance
                .hold(cny(4_000))
                .and_then(|held| held.release(cny(4_000)))
                .expect("released"),
            balance.refund(cny(300)).expect("refunded"),
            balance.pay_out(cny(700)).expect("paid out"),
        ];
        for step in steps {
            assert_eq!(
                i128::from(step.available.minor()),
                step.expected_available(),
                "{step:?}"
            );
        }
        let captured = steps[1];
        assert_eq!((captured.available, captured.held), (cny(7_500), cny(0)));
        assert_eq!(steps[2].available, cny(10_000));
    }

    #[test]
    fn an_overflow_is_an_error_not_a_wrap() {
        let balance = CardBalance::opening(cny(i64::MAX));
        assert!(balance.pay_out(cny(1)).is_err());
        assert_eq!(balance.available, cny(i64::MAX), "unchanged");
    }
}
