//! What a credit-line leg will cost the shopper, disclosed before the payment is confirmed:
//! the schedule, charges and true APR the credit crate computes for the leg's amount over
//! the term picked, with the product and pricing tier the capture will use.
//!
//! Why computed at creation and kept with the payment: the disclosure is what the shopper
//! is shown and agrees to by confirming, so every later read (and the webhooks) shows the
//! same figures. The capture builds its plan by the same function from the same product and
//! tier; its dates follow the capture day, the amounts do not (periods are counted in
//! months, not days).

use crate::credit::operations::OperationError;
use crate::credit::views::installment_views;
use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use crate::payments::views::{CreditTermsView, TrueAprView};
use jiff::Timestamp;
use tally_credit::{CreditError, Schedule};
use tally_payments::{Payment, PaymentError, Source};

impl PaymentService {
    /// The terms of each leg of `payment` that is paid on credit (`None` for the others),
    /// leg by leg. Refuses a term the configured product does not offer
    /// (`installment_term_not_offered`), like a term outside 1, 3, 6, 12 and 24.
    pub(in crate::payments::checkout) async fn credit_terms(
        &self,
        payment: &Payment,
        now: Timestamp,
    ) -> Result<Vec<Option<CreditTermsView>>, PaymentServiceError> {
        let mut terms = Vec::with_capacity(payment.legs.len());
        for leg in &payment.legs {
            let Source::CreditLine { account, term } = &leg.source else {
                terms.push(None);
                continue;
            };
            let credit = self
                .credit
                .as_ref()
                .ok_or(PaymentServiceError::CreditUnavailable)?;
            let stored = credit
                .operations
                .load(*account)
                .await
                .map_err(|error| match error {
                    OperationError::AccountNotFound(id) => {
                        PaymentServiceError::CreditAccountNotFound(id)
                    }
                    other => PaymentServiceError::Invalid(other.to_string()),
                })?;
            let catalog = credit.operations.catalog();
            let code = &self.config.credit_product;
            let product = catalog.product(code).ok_or_else(|| {
                PaymentServiceError::Invalid(format!(
                    "the credit product {code:?} that payments use is not in the catalog"
                ))
            })?;
            let date = now.to_zoned(self.config.time_zone.clone()).date();
            let refused = |error: CreditError| match error {
                CreditError::TermNotOffered { periods, .. } => {
                    PaymentServiceError::Rules(PaymentError::InstallmentTermNotOffered(periods))
                }
                other => PaymentServiceError::Invalid(other.to_string()),
            };
            terms.push(Some(
                disclose(
                    &Schedule::build_for_tier(
                        product,
                        stored.account.pricing_tier.as_deref(),
                        leg.amount,
                        *term,
                        date,
                        stored.account.cycle,
                    )
                    .map_err(refused)?,
                    code,
                )
                .map_err(refused)?,
            ));
        }
        Ok(terms)
    }
}

/// The disclosure of `schedule`, a plan of product `product`: exact decimals throughout.
pub(crate) fn disclose(schedule: &Schedule, product: &str) -> Result<CreditTermsView, CreditError> {
    let charges = schedule.total_charges()?;
    let apr = schedule.true_apr()?;
    Ok(CreditTermsView {
        installments: installment_views(&schedule.installments),
        periods: schedule.periods,
        principal: schedule.principal.into(),
        product: product.to_string(),
        total_charges: charges.into(),
        total_repayable: schedule.principal.checked_add(charges)?.into(),
        true_apr: TrueAprView {
            effective_annual: apr.effective_annual.to_string(),
            nominal_annual: apr.nominal_annual.to_string(),
            nominal_percent: apr.nominal_percent().to_string(),
            periodic: apr.periodic.to_string(),
            periods_per_year: apr.periods_per_year,
        },
    })
}
