//! The HTTP channel against the bank simulator over real HTTP on 127.0.0.1: operations and
//! idempotency, faults, notifications, disputes and settlement files.

mod disputes;
mod faults;
mod notifications;
mod operations;
mod settlement;
mod support;
