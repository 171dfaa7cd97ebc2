//! Reports on Tally's books, computed from the ledger: the daily flow of funds of the
//! payment service per currency ([`flow_of_funds`]).

pub mod flow_of_funds;

pub use flow_of_funds::{flow_of_funds, FlowOfFunds, ReportError};
