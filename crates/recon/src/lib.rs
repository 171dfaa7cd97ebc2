//! Placeholder: this crate is being built; see its issue.
