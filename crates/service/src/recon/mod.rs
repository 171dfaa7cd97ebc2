//! Reconciliation of Tally's own books: each business date, the channel operations the
//! journal recorded (the ledger side, read from the database in pages) matched against the
//! channel's settlement file by `tally_recon`, the run stored with every exception, timing
//! items carried to the next day's run and matched there ([`run`]); the exceptions as a
//! worklist: list, assign, resolve with a note or an adjusting entry ([`worklist`]).

pub mod error;
pub mod ledger_side;
pub mod run;
pub mod views;
pub mod worklist;

pub use error::ReconServiceError;
pub use run::{reconcile_books, BooksRun, BooksRunOptions};
pub use views::{ExceptionView, RunView};
pub use worklist::{AdjustingLeg, ReconWorklist, Resolution};
