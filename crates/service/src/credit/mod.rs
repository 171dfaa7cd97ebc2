//! The credit service: operations on credit accounts, end of day, the service's own ledger
//! accounts, and the credit decision at opening.

pub mod commands;
pub mod decision;
pub mod end_of_day;
pub mod ledger_accounts;
pub mod operations;
pub mod views;
