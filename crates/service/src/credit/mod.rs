//! The credit service: operations on credit accounts, end of day, the service's own ledger
//! accounts, the credit decision, and opening an account through it.

pub mod commands;
pub mod decision;
pub mod end_of_day;
pub mod ledger_accounts;
pub mod opening;
pub mod operations;
pub mod views;
