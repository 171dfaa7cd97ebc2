//! The payment service: combined checkout over the wallet, the vault, the credit line and
//! a bank card, all or nothing; captures, refunds, and recovery of payments left mid-way
//! (see [`checkout`] for the intent log that makes every step exactly once).

pub mod accounts;
pub mod cards;
pub mod checkout;
pub mod disputes;
pub mod error;
pub mod merchant_entries;
pub mod merchants;
pub mod notifications;
pub mod payouts;
pub mod record;
pub mod risk_control;
pub mod settlement;

pub mod vault_yield;
pub mod views;
pub mod wallets;
pub mod webhooks;

pub use checkout::{ConfirmInput, CreatePayment, PaymentService, PaymentsConfig, RecoveryReport};
pub use error::PaymentServiceError;
pub use views::PaymentView;
