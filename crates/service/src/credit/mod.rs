//! The credit service: operations on credit accounts, end of day, the service's own ledger
//! accounts, the credit decision, opening an account through it, and the collections
//! queue's contacts.

pub mod collections;
pub mod commands;
pub mod decision;
pub mod end_of_day;
pub mod ledger_accounts;
pub mod opening;
pub mod operations;
pub mod sweep;
pub mod views;
