//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types.

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{credit, customers, ledger};
use crate::wire;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tally", description = "Ledger, credit, payments, risk and reconciliation API. Amounts are decimal strings in major units beside an ISO 4217 currency."),
    paths(
        ledger::create_account,
        ledger::get_account,
        ledger::get_balance,
        ledger::list_account_entries,
        ledger::post_entry,
        ledger::get_entry,
        ledger::create_hold,
        ledger::get_hold,
        ledger::post_hold,
        ledger::void_hold,
        customers::create_customer,
        customers::get_customer,
        customers::find_customers,
        customers::list_pii_reads,
        credit::open_account,
        credit::get_account,
        credit::statements,
        credit::payoff_quote,
        credit::set_limit,
        credit::set_temporary_limit,
        credit::change_status,
        credit::authorize,
        credit::capture,
        credit::void,
        credit::repay,
        credit::refund,
        credit::pay_off,
        credit::bill_installment,
        credit::write_off_stolen,
        credit::tasks,
        credit::add_task,
        credit::close_task,
        credit::products,
        credit::add_product,
    ),
    components(schemas(
        ErrorBody, ErrorDetail,
        wire::CreateAccountRequest, wire::AccountBody, wire::FlagsBody, wire::BalanceBody,
        wire::AsOfBalanceBody, wire::PostEntryRequest, wire::LegBody, wire::EntryBody,
        wire::CreateHoldRequest, wire::PostHoldRequest, wire::HoldBody, wire::PostedHoldBody,
        wire::AccountLegBody, wire::AccountLegPage,
        customers::CreateCustomerRequest, customers::CustomerBody, customers::CustomerList,
        customers::PiiReadBody, customers::PiiReadPage,
    )),
    modifiers(&BearerKeys),
    tags(
        (name = "ledger", description = "Double-entry accounts, journal entries and holds"),
        (name = "credit", description = "Credit lines: opening through the credit decision, purchases as holds captured into installment plans, repayments, refunds, payoff, bill installment, stolen-account write-offs, statements and collections. Amounts are {value, currency} with the value a decimal string"),
        (name = "customers", description = "Customers with personal data encrypted, found by blind index, masked unless read with pii:read and a reason (audited)"),
    )
)]
pub struct ApiDocument;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Tally API key, created with `tally keys create`"))
                    .build(),
            ),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDocument::openapi())
}
