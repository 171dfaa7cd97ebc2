//! Storage of Tally on SQLite (the embedded default) and PostgreSQL, through sqlx.
//!
//! Reads go straight to a connection pool. Every ledger write goes through the
//! [`LedgerWriter`]: one task per process that owns one connection, collects the writes
//! waiting in its queue into a batch, applies the pure ledger rules to the accounts the
//! batch touches, and commits the batch in one transaction before anyone hears "ok".
//! That gives group commit (one disk flush for many writes) and serial application, so two
//! writes racing for one balance are decided one after the other. Across processes the
//! batch transaction is serialised by the database: SQLite's write lock (`BEGIN
//! IMMEDIATE`) and a PostgreSQL transaction-scoped advisory lock.

mod backend;
pub mod blind_indexes;
pub mod console;
pub mod consortium;
pub mod credit;
pub mod credit_operations;
pub mod customers;
pub mod database;
pub mod disputes;
pub mod erasure;
pub mod error;
pub mod fingerprint_backfill;
pub mod funding_lock;
pub mod held_operations;
pub mod keys;
pub mod lists;
pub mod merchants;
pub mod payments;
pub mod payouts;
pub mod profile_changes;
pub mod reads;
pub mod recon;
pub mod reports;
pub mod risk;
mod rows;
pub mod sealed_texts;
pub mod testing;
pub mod webhooks;
pub mod write_turns;
pub mod writer;

pub use database::{Backend, Database};
pub use error::{StoreError, WriteError};
pub use keys::{ApiKey, KeyLifecycleError, NewApiKey};
pub use rows::CurrencyTotals;
pub use writer::{LedgerWriter, WriterConfig};
