//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types.

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{
    consortium, credit, customers, disputes, held, ledger, merchants, payments, payouts, profile,
    recon, reports, risk,
};
use crate::wire;
use axum::Json;
use tally_service::credit::views;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub mod constraints;
pub use constraints::{Constraints, PageSizes};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tally", description = "Ledger, credit, payments, risk and reconciliation API. Amounts are decimal strings in major units beside an ISO 4217 currency."),
    paths(
        ledger::create_account,
        ledger::get_account,
        ledger::get_balance,
        ledger::list_account_entries,
        ledger::post_entry,
        ledger::post_entries_batch,
        ledger::get_entry,
        ledger::create_hold,
        ledger::get_hold,
        ledger::post_hold,
        ledger::void_hold,
        customers::create_customer,
        customers::get_customer,
        customers::reveal_customer,
        customers::reveal_customer_profile,
        customers::erase_customer,
        customers::search_customers,
        customers::list_pii_lookups,
        customers::list_pii_reads,
        profile::change_phone,
        profile::change_name,
        profile::change_address,
        profile::bind_bank_card,
        held::held_operation,
        held::enter_code,
        credit::open_account,
        credit::get_account,
        credit::statements,
        credit::payoff_quote,
        credit::offers,
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
        credit::pay_out_credit_balance,
        credit::tasks,
        credit::add_task,
        credit::close_task,
        credit::record_contact,
        credit::task_contacts,
        credit::products,
        credit::add_product,
        payments::create_payment,
        payments::get_payment,
        payments::confirm_payment,
        payments::capture_payment,
        payments::cancel_payment,
        payments::refund_payment,
        payments::save_card,
        payments::list_cards,
        payments::review_payment,
        payments::release_delivery,
        payments::accrue_vault_yield,
        payments::get_balances,
        payments::top_up,
        payments::withdraw,
        payments::subscribe_to_vault,
        payments::redeem_from_vault,
        payments::create_webhook_endpoint,
        payments::list_webhook_endpoints,
        payments::list_webhook_deliveries,
        merchants::onboard_merchant,
        merchants::get_merchant,
        merchants::change_merchant_status,
        merchants::set_fee_schedule,
        merchants::run_settlement,
        merchants::get_statements,
        merchants::get_statements_csv,
        disputes::list_disputes,
        disputes::get_dispute,
        disputes::submit_evidence,
        disputes::accept_dispute,
        recon::list_runs,
        recon::get_run,
        recon::list_exceptions,
        recon::get_exception,
        recon::assign_exception,
        recon::resolve_exception,
        payouts::create_payout,
        payouts::create_payout_batch,
        payouts::get_payout,
        payouts::list_payouts,
        payouts::get_payout_batch,
        payouts::take_payout_batch_file,
        payouts::read_payout_return_file,
        payouts::run_scheduled_payouts,
        reports::get_flow_of_funds,
        risk::decide,
        risk::list_rule_sets,
        risk::upload_rule_set,
        risk::backtest_rule_set,
        risk::request_activation,
        risk::list_activation_requests,
        risk::decide_activation,
        risk::list_entries,
        risk::add_list_entry,
        risk::remove_list_entry,
        risk::list_cases,
        risk::get_case,
        risk::move_case,
        risk::claim_stolen_account,
        risk::restore_access,
        risk::evidence,
    ),
    components(schemas(
        ErrorBody, ErrorDetail,
        wire::CreateAccountRequest, wire::AccountBody, wire::FlagsBody, wire::BalanceBody,
        wire::AsOfBalanceBody, wire::PostEntryRequest, wire::PostEntriesBatchRequest,
        wire::BatchEntryRequest, wire::BatchEntryResult, wire::BatchEntryStatus, wire::EntriesBatchBody, wire::LegBody, wire::EntryBody,
        wire::CreateHoldRequest, wire::PostHoldRequest, wire::HoldBody, wire::PostedHoldBody,
        wire::AccountLegBody, wire::AccountLegPage,
        wire::PositiveAmount, wire::NotNegativeAmount, wire::SignedAmount,
        customers::CreateCustomerRequest, customers::CustomerBody, customers::CustomerList,
        customers::SearchRequest, customers::RevealRequest, customers::RevealedProfileBody,
        customers::EraseCustomerRequest, customers::CustomerErasureBody,
        customers::PiiReadBody, customers::PiiReadPage,
        customers::PiiLookupBody, customers::PiiLookupPage,
        profile::ChangePhoneRequest, profile::ChangeNameRequest, profile::ChangeAddressRequest, profile::BindBankCardRequest,
        profile::ProfileChangedBody, held::HeldOperationBody, held::CodeRequest,
        wire::credit::OpenAccountRequest, wire::credit::Application,
        wire::credit::LimitRequest, wire::credit::TemporaryLimitRequest,
        wire::credit::AuthorizeRequest, wire::credit::CaptureRequest, wire::credit::AmountRequest,
        wire::credit::BillInstallmentRequest, wire::credit::WriteOffRequest,
        wire::credit::NewTaskRequest, wire::credit::CloseTaskRequest, wire::credit::ProductBody,
        wire::credit::TermBody, wire::credit::OpeningBody, wire::credit::AccountChangedBody,
        wire::credit::AuthorizedBody, wire::credit::PlanCreatedBody, wire::credit::RepaymentBody,
        wire::credit::AppliedBody, wire::credit::PayoutBody, wire::credit::PayoffQuoteBody,
        wire::credit::OffersBody, wire::credit::OfferBody, wire::credit::StatementList,
        wire::credit::ProductList, wire::credit::ProductAddedBody, wire::credit::TaskList,
        wire::credit::TaskBody, wire::credit::TaskAddedBody, wire::credit::TaskClosedBody,
        wire::credit::NewContactRequest, wire::credit::ContactBody, wire::credit::ContactList,
        views::AccountView, views::AmountView, views::TemporaryLimitView,
        views::AuthorizationView, views::PlanView, views::InstallmentView,
        views::OpenStatementView, views::PlanMinimumView,
        wire::payments::CreatePaymentRequest, wire::payments::FundingRequest,
        wire::payments::CaptureMethodRequest, wire::payments::CapturePaymentRequest,
        wire::payments::RefundPaymentRequest, wire::payments::RefundPolicyRequest,
        wire::payments::DeclinedBody, wire::payments::SaveCardRequest, wire::payments::CardList,
        tally_service::payments::cards::CardView,
        wire::payments::CardMovementRequest, wire::payments::WalletWithdrawalRequest,
        wire::payments::VaultMovementRequest,
        wire::payments::WalletDeclinedBody, wire::payments::ConfirmRequest,
        wire::payments::ReviewRequest, wire::payments::ReviewDecision,
        wire::payments::VaultYieldRequest, tally_service::payments::vault_yield::YieldReport,
        tally_service::payments::wallets::WalletOperationView,
        tally_service::payments::wallets::BalancesView,
        tally_service::payments::wallets::BalanceView,
        tally_service::payments::views::PaymentView, tally_service::payments::views::LegView,
        tally_service::payments::views::RefundView, tally_service::payments::views::FailureView,
        tally_service::payments::views::TransitionView,
        tally_service::payments::views::DeliveryChangeView,
        tally_service::payments::views::CreditTermsView,
        tally_service::payments::views::TrueAprView,
        wire::payments::CreateWebhookEndpointRequest,
        wire::merchants::OnboardMerchantRequest, wire::merchants::FeeRequest,
        wire::merchants::FeeScheduleRequest, wire::merchants::SettlementTermsRequest,
        wire::merchants::MerchantTermsRequest, wire::merchants::MerchantStatusInput,
        wire::merchants::MerchantStatusRequest, wire::merchants::SettlementRunRequest,
        tally_service::payments::merchants::MerchantView,
        tally_service::payments::merchants::StatusChangeView,
        tally_service::payments::settlement::SettlementRunView,
        tally_service::payments::settlement::SettlementStatementView,
        tally_service::payments::settlement::SettlementBalances,
        tally_service::payments::settlement::SettlementStatementList,
        wire::disputes::DisputeEvidenceRequest,
        tally_service::payments::disputes::DisputeView,
        tally_service::payments::disputes::DisputeTakenFrom,
        tally_service::payments::disputes::DisputeList,
        wire::recon::RunList, wire::recon::ExceptionList, wire::recon::AssignExceptionRequest,
        wire::recon::AdjustingLegRequest, wire::recon::AdjustingEntryRequest,
        wire::recon::ResolveExceptionRequest,
        tally_service::recon::RunView, tally_service::recon::ExceptionView,
        tally_service::recon::views::RunSummary, tally_service::recon::views::ClassTotalsView,
        wire::payouts::CreatePayoutRequest, wire::payouts::CreatePayoutBatchRequest,
        wire::payouts::PayoutRunRequest,
        tally_service::payments::payouts::PayoutView,
        tally_service::payments::payouts::PayoutTransitionView,
        tally_service::payments::payouts::PayoutBatchView,
        tally_service::payments::payouts::PayoutList,
        tally_service::payments::payouts::PayoutRunView,
        payouts::HeldPayoutBatchBody, payouts::HeldPayoutItemBody,
        tally_service::reports::FlowOfFunds,
        tally_service::reports::flow_of_funds::Flows,
        tally_service::reports::flow_of_funds::BalanceFlow,
        tally_service::reports::flow_of_funds::MovementFlow,
        tally_service::payments::webhooks::WebhookEndpointView,
        tally_service::payments::webhooks::WebhookEndpointList,
        tally_service::payments::webhooks::WebhookDeliveryView,
        tally_service::payments::webhooks::WebhookDeliveryList,
        tally_service::payments::webhooks::WebhookAttemptView,
        wire::risk::RiskEventRequest, wire::risk::EventAmount, wire::risk::GeoPointBody,
        wire::risk::RiskDecisionBody, wire::risk::RuleSetVersionsBody,
        wire::risk::RuleSetVersionBody, wire::risk::UploadRuleSetRequest, wire::risk::BacktestRuleSetRequest,
        wire::risk::UploadedRuleSetBody, wire::risk::RequestActivationRequest,
        wire::risk::ActivationRequestBody, wire::risk::RequesterBody, wire::risk::DeciderBody,
        wire::risk::ActivationRequestEnvelope, wire::risk::ActivationRequestList,
        wire::risk::DecidedActivationBody, wire::risk::ActivationBody,
        wire::risk::AddListEntryRequest, wire::risk::ListEntryBody, wire::risk::ListEntryList,
        wire::risk::CaseBody, wire::risk::CaseEnvelope, wire::risk::CaseList,
        wire::risk::CaseLogLineBody, wire::risk::CaseWithLogBody, wire::risk::MoveCaseRequest,
        wire::risk::ClaimStolenAccountRequest, wire::risk::RestoreAccessRequest, wire::risk::ClaimBody, wire::risk::EvidenceBody,
        wire::risk::EvidenceEventBody,
    )),
    modifiers(&BearerKeys, &CommonResponses, &Constraints),
    tags(
        (name = "ledger", description = "Double-entry accounts, journal entries and holds"),
        (name = "credit", description = "Credit lines: opening through the credit decision, purchases as holds captured into installment plans, repayments, refunds, payoff, bill installment, stolen-account write-offs, credit balance payouts, statements and collections. Amounts are {value, currency} with the value a decimal string"),
        (name = "customers", description = "Customers with personal data encrypted, found by blind index (lookups in the body, rate limited per key and audited), masked unless read in clear with pii:read and a reason in the body (audited)"),
        (name = "payments", description = "Combined checkout: one order paid by the wallet, the vault, the credit line and a card at once, all or nothing; capture whole or in part (pro rata), cancel, refunds routed back to the sources by policy. Every write's Idempotency-Key is scoped to the API key"),
        (name = "merchants", description = "Merchants: onboarding (legal name, licence number and bank account sealed, shown masked), status (active, suspended, closed), fee schedule per payment method and settlement terms (T+N business days in the merchant's zone, holidays, rolling reserve)"),
        (name = "payouts", description = "Payouts of merchants' available balances to their settlement bank accounts, single or in batches sent as a bank file (CSV, UTF-8 or GBK) whose return file marks each payout paid, failed or returned (the money back in the available balance); scheduled payouts after a settlement run"),
        (name = "settlement", description = "The daily settlement run (resumable, exactly once) and each merchant's statement as JSON or CSV"),
        (name = "disputes", description = "Disputes (chargebacks) on payments' card legs, opened and decided by the channel: the amount taken from the merchant's pending, then available, then reserve balance; evidence before the deadline, acceptance; won returns the amount, lost charges the channel's fee"),
        (name = "recon", description = "Reconciliation of Tally's own books against the channel's settlement files: the daily runs and their exceptions as a worklist (assign, resolve with a note or an adjusting entry)"),
        (name = "reports", description = "Reports on Tally's books from the ledger: the daily flow of funds per currency as JSON or CSV"),
        (name = "risk", description = "Fraud decisions on events with rule set versions (upload, activate, roll back), block, allow and watch lists, and the analysts' case queue with stolen-account claims and evidence packages"),
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

/// The answers every route can give besides its own, added to each operation that does not
/// document them already, so that a client (or a contract tester) meets no status the
/// document does not name: the authentication layer's (on routes with a security
/// requirement), the strict extractors' (on routes with a body, a path parameter or a query
/// string), and the outages any route can meet.
struct CommonResponses;

impl CommonResponses {
    fn add(operation: &mut utoipa::openapi::path::Operation, status: &str, description: &str) {
        if operation.responses.responses.contains_key(status) {
            return;
        }
        let response = utoipa::openapi::ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_string(), response.into());
    }
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let secured = operation
                    .security
                    .as_ref()
                    .is_some_and(|requirements| !requirements.is_empty());
                if secured {
                    Self::add(
                        operation,
                        "401",
                        "No API key, or an unknown, expired or revoked one (`unauthorized`)",
                    );
                    Self::add(
                        operation,
                        "403",
                        "The API key lacks the route's scope (`forbidden`)",
                    );
                }
                Self::add(
                    operation,
                    "400",
                    "A path parameter, query string or body that does not parse \
                     (`invalid_id`, `invalid_query`, `malformed_json`, `unknown_field`, \
                     `invalid_body`, `invalid_request`), or text Tally cannot store \
                     (`invalid_text`)",
                );
                Self::add(
                    operation,
                    "414",
                    "The request target is longer than 8 KiB (`uri_too_long`)",
                );
                if operation.request_body.is_some() {
                    Self::add(
                        operation,
                        "413",
                        "The body is larger than the configured limit (`payload_too_large`)",
                    );
                    Self::add(
                        operation,
                        "415",
                        "The body is not `application/json` (`unsupported_media_type`)",
                    );
                }
                Self::add(operation, "500", "An internal error (`internal`)");
                Self::add(
                    operation,
                    "503",
                    "Storage is unavailable (`storage_unavailable`); retry",
                );
            }
        }
    }
}

/// The document, with the serving process's largest page as the maximum of paged listings.
pub async fn document(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> Json<utoipa::openapi::OpenApi> {
    let mut document = ApiDocument::openapi();
    PageSizes(state.limits.page_size_max).modify(&mut document);
    Json(document)
}

/// The consortium log's own document, served by [`crate::consortium_app`] on its listener.
/// No security scheme: members sign their requests, and the reads are public.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tally consortium log",
        description = "The consortium's append-only, Merkle-tree risk record log (`tally consortium serve`, a listener of its own). Members do not send API keys: each write or query carries, in its body, a request signed with the member's Ed25519 key over its canonical bytes (member name, sequence number, time and action); the log checks the signature against the member's key in the log, refuses a sequence number not above the member's last (a replay) and a time too far from its own. Publications and queries also carry the identifier with the salt that opens the commitment the member signed; it is checked, blinded and dropped, never stored. The reads (checkpoint, proofs, entries, tiles, members and query counts) need no authentication, as in any transparency log."
    ),
    paths(
        consortium::propose,
        consortium::approve,
        consortium::publish,
        consortium::retract,
        consortium::query,
        consortium::members,
        consortium::query_count,
        consortium::checkpoint,
        consortium::inclusion_proof,
        consortium::consistency_proof,
        consortium::entries,
        consortium::entry,
        consortium::tile,
        consortium::entry_bundle,
        consortium::status,
    ),
    components(schemas(
        ErrorBody, ErrorDetail,
        wire::consortium::SignedMemberRequest, wire::consortium::IdentifierBody,
        wire::consortium::LoggedBody, wire::consortium::EffectBody, wire::consortium::EffectKind,
        wire::consortium::QueryAnswerBody, wire::consortium::RecordBody,
        wire::consortium::MemberList, wire::consortium::MemberBody,
        wire::consortium::MemberStatusName, wire::consortium::QueryCountBody,
        wire::consortium::InclusionProofBody, wire::consortium::ConsistencyProofBody,
        wire::consortium::LogStatusBody, wire::consortium::IntegrityBody,
        wire::consortium::IntegrityStateName,
    )),
    modifiers(&CommonResponses),
    tags(
        (name = "consortium", description = "Signed member requests (proposals, approvals, record publications and retractions, queries), members and their query counts, the signed checkpoint, inclusion and consistency proofs, entries and tiles (C2SP tlog-tiles paths under the prefix `/v1/consortium`), the log's status and integrity checks"),
    )
)]
pub struct ConsortiumApiDocument;

pub async fn consortium_document() -> Json<utoipa::openapi::OpenApi> {
    Json(ConsortiumApiDocument::openapi())
}
