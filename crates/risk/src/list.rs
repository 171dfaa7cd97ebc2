//! Block, allow and watch lists on any entity field, with a reason and an expiry.
//!
//! The lists are an in-memory structure that a store fills (on start) and keeps current
//! (on every change through the API). Consortium hits arrive as entries with their own
//! `source`. Lists do nothing by themselves: rules read `block_listed`, `allow_listed` and
//! `watch_listed`, so every effect of a list is written in the rule set.

use crate::error::RiskError;
use crate::event::{EntityField, Event};
use foldhash::fast::FixedState;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Which list an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Block,
    Allow,
    Watch,
}

/// One list entry: `field = value` is on list `kind` for `reason` until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListEntry {
    pub kind: ListKind,
    pub field: EntityField,
    pub value: String,
    pub reason: String,
    /// Where the entry came from: "manual", "consortium", a case id.
    #[serde(default = "manual")]
    pub source: String,
    pub added_at: Timestamp,
    /// No expiry when absent. An entry is in force while `at < expires_at`.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// The source of list hits that come from a consortium log's records: rules read them as
/// `consortium_listed` (and as the kind of list the caller gave them).
pub const CONSORTIUM_SOURCE: &str = "consortium";

fn manual() -> String {
    "manual".to_string()
}

impl ListEntry {
    fn in_force_at(&self, at: Timestamp) -> bool {
        self.added_at <= at && self.expires_at.is_none_or(|expires| at < expires)
    }
}

/// A list entry that matched an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListHit {
    pub kind: ListKind,
    pub field: EntityField,
    pub reason: String,
    pub source: String,
}

/// All list entries, indexed by field and value.
#[derive(Debug, Clone)]
pub struct Lists {
    by_field: Vec<HashMap<Box<str>, Vec<ListEntry>, FixedState>>,
}

impl Default for Lists {
    fn default() -> Self {
        Lists::new(0)
    }
}

impl Lists {
    /// Empty lists; `hash_seed` keys the hash of entity values (pass a secret one in
    /// production so that nobody can choose values that collide).
    pub fn new(hash_seed: u64) -> Self {
        Lists {
            by_field: (0..EntityField::COUNT)
                .map(|_| HashMap::with_hasher(FixedState::with_seed(hash_seed)))
                .collect(),
        }
    }

    /// Adds an entry, replacing one of the same kind, field and value.
    pub fn add(&mut self, entry: ListEntry) -> Result<(), RiskError> {
        Self::check(&entry)?;
        let entries = self.by_field[entry.field.index()]
            .entry(Box::from(entry.value.as_str()))
            .or_default();
        entries.retain(|existing| existing.kind != entry.kind);
        entries.push(entry);
        Ok(())
    }

    /// Refuses an entry `add` would refuse, without changing anything.
    pub fn check(entry: &ListEntry) -> Result<(), RiskError> {
        if entry.value.is_empty() || entry.reason.is_empty() {
            return Err(RiskError::InvalidListEntry {
                message: "value and reason must not be empty".to_string(),
            });
        }
        if entry
            .expires_at
            .is_some_and(|expires| expires <= entry.added_at)
        {
            return Err(RiskError::InvalidListEntry {
                message: "expires_at must be after added_at".to_string(),
            });
        }
        Ok(())
    }

    /// Removes the entry of `kind` for `field = value`; true if there was one.
    pub fn remove(&mut self, kind: ListKind, field: EntityField, value: &str) -> bool {
        let map = &mut self.by_field[field.index()];
        let Some(entries) = map.get_mut(value) else {
            return false;
        };
        let before = entries.len();
        entries.retain(|entry| entry.kind != kind);
        let removed = entries.len() != before;
        if entries.is_empty() {
            map.remove(value);
        }
        removed
    }

    /// Forgets entries that have expired at `now`.
    pub fn remove_expired(&mut self, now: Timestamp) {
        for map in &mut self.by_field {
            map.retain(|_, entries| {
                entries.retain(|entry| entry.expires_at.is_none_or(|expires| now < expires));
                !entries.is_empty()
            });
        }
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &ListEntry> {
        self.by_field
            .iter()
            .flat_map(|map| map.values().flat_map(|entries| entries.iter()))
    }

    /// Appends the entries in force at the event's time that match one of its entities.
    pub fn hits_into(&self, event: &Event, hits: &mut Vec<ListHit>) {
        for field in EntityField::ALL {
            let Some(value) = event.entity(field) else {
                continue;
            };
            let Some(entries) = self.by_field[field.index()].get(value) else {
                continue;
            };
            for entry in entries.iter().filter(|entry| entry.in_force_at(event.at)) {
                hits.push(ListHit {
                    kind: entry.kind,
                    field,
                    reason: entry.reason.clone(),
                    source: entry.source.clone(),
                });
            }
        }
    }
}
