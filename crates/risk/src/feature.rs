//! Velocity features over sliding windows, kept in memory with a bounded size per key.
//!
//! Windows are half-open, `(t - window, t]`: an event exactly one window before the event
//! being decided is out, an event at the same instant is in. Aggregates include the event
//! being decided (it is recorded first, then read), except `last_seen_age`, which is the
//! age of the previous sighting. Every event is recorded whatever the decision, so that
//! rejected attempts still count (card testing is a burst of rejected attempts).

use crate::event::{EntityField, Event, EventKind, GeoPoint, ProfileField};
use foldhash::fast::FixedState;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use tally_core::Currency;

/// The longest window a feature may declare: 90 days.
pub const WINDOW_MAX_MS: i64 = 90 * 24 * 3600 * 1000;

/// What a feature computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureKind {
    /// Events of the key in the window.
    Count,
    /// Sum of event amounts (minor units of one currency) of the key in the window.
    Sum,
    /// Distinct values of `of` seen with the key in the window.
    DistinctCount,
    /// Seconds since the key (or the pair key, `of`) was first seen; 0 if first seen now,
    /// -1 if never seen within the window.
    FirstSeenAge,
    /// Seconds since the key (or the pair) was last seen before this event; -1 if never.
    LastSeenAge,
    /// Kilometres between this event's geo point and the key's previous one; -1 if unknown.
    TravelDistance,
    /// Implied speed in km/h between this event and the key's previous geo point; -1 if
    /// unknown.
    TravelSpeed,
}

impl FeatureKind {
    pub fn parse(text: &str) -> Option<FeatureKind> {
        Some(match text {
            "count" => FeatureKind::Count,
            "sum" => FeatureKind::Sum,
            "distinct_count" => FeatureKind::DistinctCount,
            "first_seen_age" => FeatureKind::FirstSeenAge,
            "last_seen_age" => FeatureKind::LastSeenAge,
            "travel_distance" => FeatureKind::TravelDistance,
            "travel_speed" => FeatureKind::TravelSpeed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Count => "count",
            FeatureKind::Sum => "sum",
            FeatureKind::DistinctCount => "distinct_count",
            FeatureKind::FirstSeenAge => "first_seen_age",
            FeatureKind::LastSeenAge => "last_seen_age",
            FeatureKind::TravelDistance => "travel_distance",
            FeatureKind::TravelSpeed => "travel_speed",
        }
    }
}

/// A validated feature declaration from a rule set.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    pub name: String,
    pub kind: FeatureKind,
    /// The entity the feature is kept per.
    pub key: EntityField,
    /// The second entity for distinct counts and pair ages ("devices per customer").
    pub of: Option<EntityField>,
    /// Window (or look-back, for ages and travel) in milliseconds, at most [`WINDOW_MAX_MS`].
    pub window_ms: i64,
    /// Event kinds that are recorded; empty means all.
    pub event_kinds: Vec<EventKind>,
    /// For `profile_change` events: which fields are recorded; empty means all.
    pub profile_fields: Vec<ProfileField>,
    /// For sums: the currency summed; events in other currencies are not recorded.
    pub currency: Option<Currency>,
}

impl FeatureSpec {
    /// Whether `other` computes the same thing: everything but the name. A feature renamed
    /// in a new rule set version keeps its state.
    pub fn same_definition(&self, other: &FeatureSpec) -> bool {
        self.kind == other.kind
            && self.key == other.key
            && self.of == other.of
            && self.window_ms == other.window_ms
            && self.event_kinds == other.event_kinds
            && self.profile_fields == other.profile_fields
            && self.currency == other.currency
    }

    fn records(&self, event: &Event) -> bool {
        let kind_ok = self.event_kinds.is_empty() || self.event_kinds.contains(&event.kind);
        let field_ok = self.profile_fields.is_empty()
            || event
                .profile_field
                .is_some_and(|field| self.profile_fields.contains(&field));
        let currency_ok = match (self.kind, self.currency) {
            (FeatureKind::Sum, Some(currency)) => event
                .amount
                .is_some_and(|amount| amount.currency() == currency),
            _ => true,
        };
        kind_ok && field_ok && currency_ok
    }
}

/// A feature value as rules see it: integers for counts, sums (minor units) and ages
/// (seconds), floats for distances and speeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FeatureValue {
    Integer(i64),
    Float(f64),
}

impl FeatureValue {
    pub fn as_f64(self) -> f64 {
        match self {
            FeatureValue::Integer(value) => value as f64,
            FeatureValue::Float(value) => value,
        }
    }
}

/// Limits on memory per key. Named with the unit last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureLimits {
    /// Window entries kept per key for counts and sums; past it the two oldest entries
    /// are merged (the merged entry keeps the later timestamp, so counts never undercount).
    pub entries_per_key_max: usize,
    /// Distinct values kept per key; past it the least recently seen value is forgotten.
    pub values_per_key_max: usize,
    /// How late (behind the latest event of a key) an event may arrive and still see exact
    /// windows: entries are kept this long past their window.
    pub lateness_max_ms: i64,
}

impl Default for FeatureLimits {
    fn default() -> Self {
        FeatureLimits {
            entries_per_key_max: 512,
            values_per_key_max: 128,
            lateness_max_ms: 10 * 60 * 1000,
        }
    }
}

/// One window entry: events merged at one timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WindowEntry {
    at_ms: i64,
    count: u32,
    sum: i64,
}

/// One value seen with a key.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sighting {
    value_hash: u64,
    first_ms: i64,
    last_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum KeyState {
    /// Sorted by time.
    Window {
        entries: VecDeque<WindowEntry>,
        latest_ms: i64,
    },
    Sightings {
        sightings: Vec<Sighting>,
        latest_ms: i64,
    },
    Travel {
        last: Option<(i64, GeoPoint)>,
    },
}

impl KeyState {
    fn latest_ms(&self) -> i64 {
        match self {
            KeyState::Window { latest_ms, .. } | KeyState::Sightings { latest_ms, .. } => {
                *latest_ms
            }
            KeyState::Travel { last } => last.map_or(i64::MIN, |(at, _)| at),
        }
    }
}

impl KeyState {
    /// Empty state: reads give the same values as an unknown key.
    fn fresh(kind: FeatureKind) -> KeyState {
        match kind {
            FeatureKind::Count | FeatureKind::Sum => KeyState::Window {
                entries: VecDeque::new(),
                latest_ms: i64::MIN,
            },
            FeatureKind::DistinctCount | FeatureKind::FirstSeenAge | FeatureKind::LastSeenAge => {
                KeyState::Sightings {
                    sightings: Vec::new(),
                    latest_ms: i64::MIN,
                }
            }
            FeatureKind::TravelDistance | FeatureKind::TravelSpeed => {
                KeyState::Travel { last: None }
            }
        }
    }
}

/// The features of a rule set that share a key field, with one hash map from the key value
/// to the states of all of them: one lookup per key field and event, not one per feature.
#[derive(Debug, Clone)]
struct KeyTable {
    field: EntityField,
    /// Indices of the features in this table, in rule set order.
    features: Vec<usize>,
    keys: HashMap<Box<str>, Vec<KeyState>, FixedState>,
}

/// The state of all the features of a rule set.
#[derive(Debug, Clone)]
pub(crate) struct FeatureTables {
    specs: Vec<FeatureSpec>,
    /// For each feature: its table and its slot in that table.
    slots: Vec<(usize, usize)>,
    tables: Vec<KeyTable>,
    hash_seed: u64,
}

impl FeatureTables {
    pub(crate) fn new(specs: &[FeatureSpec], hash_seed: u64) -> Self {
        let mut tables: Vec<KeyTable> = Vec::new();
        let mut slots = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let table = match tables.iter().position(|table| table.field == spec.key) {
                Some(table) => table,
                None => {
                    tables.push(KeyTable {
                        field: spec.key,
                        features: Vec::new(),
                        keys: HashMap::with_hasher(FixedState::with_seed(hash_seed)),
                    });
                    tables.len() - 1
                }
            };
            slots.push((table, tables[table].features.len()));
            tables[table].features.push(index);
        }
        FeatureTables {
            specs: specs.to_vec(),
            slots,
            tables,
            hash_seed,
        }
    }

    pub(crate) fn specs(&self) -> &[FeatureSpec] {
        &self.specs
    }

    /// New tables for `specs` that keep the state of every feature defined identically
    /// here. Returns the tables and, per new feature, whether its state was kept.
    pub(crate) fn carry_over(&mut self, specs: &[FeatureSpec]) -> (FeatureTables, Vec<bool>) {
        let mut next = FeatureTables::new(specs, self.hash_seed);
        // Each new feature's source: a feature defined the same way, preferring one of the
        // same name; one old feature may feed several new ones (then it is copied).
        let sources: Vec<Option<usize>> = specs
            .iter()
            .map(|spec| {
                let same = |old: &&FeatureSpec| old.same_definition(spec);
                self.specs
                    .iter()
                    .position(|old| same(&old) && old.name == spec.name)
                    .or_else(|| self.specs.iter().position(|old| same(&old)))
            })
            .collect();
        for (new_index, source) in sources.iter().enumerate() {
            if let Some(old_index) = *source {
                let used_later = sources[new_index + 1..].contains(&Some(old_index));
                next.take_states(new_index, self, old_index, used_later);
            }
        }
        (next, sources.iter().map(Option::is_some).collect())
    }

    /// Gives feature `to` of these tables, for every key, the state of feature `from` of
    /// `source` (copied when `copy`, otherwise moved out, leaving it fresh). The definitions
    /// must be the same.
    fn take_states(&mut self, to: usize, source: &mut FeatureTables, from: usize, copy: bool) {
        let kind = source.specs[from].kind;
        let (source_table, source_slot) = source.slots[from];
        let (table, slot) = self.slots[to];
        let kinds: Vec<FeatureKind> = self.tables[table]
            .features
            .iter()
            .map(|feature| self.specs[*feature].kind)
            .collect();
        for (key, states) in &mut source.tables[source_table].keys {
            let state = if copy {
                states[source_slot].clone()
            } else {
                std::mem::replace(&mut states[source_slot], KeyState::fresh(kind))
            };
            let target = self.tables[table]
                .keys
                .entry(key.clone())
                .or_insert_with(|| kinds.iter().map(|kind| KeyState::fresh(*kind)).collect());
            target[slot] = state;
        }
    }

    /// Fills the features marked in `cold` from `history` (in decision order), leaving the
    /// others as they are: what an activation does to the features it starts cold.
    pub(crate) fn warm(
        &mut self,
        cold: &[bool],
        history: &mut dyn Iterator<Item = &Event>,
        limits: &FeatureLimits,
        hasher: &FixedState,
        values: &mut Vec<FeatureValue>,
    ) {
        let specs: Vec<FeatureSpec> = self
            .specs
            .iter()
            .zip(cold)
            .filter(|(_, cold)| **cold)
            .map(|(spec, _)| spec.clone())
            .collect();
        if specs.is_empty() {
            return;
        }
        let mut scratch = FeatureTables::new(&specs, self.hash_seed);
        for event in history {
            scratch.observe(event, limits, hasher, values);
        }
        let targets = cold
            .iter()
            .enumerate()
            .filter(|(_, cold)| **cold)
            .map(|(index, _)| index);
        for (from, to) in targets.enumerate() {
            self.take_states(to, &mut scratch, from, false);
        }
    }

    /// Keys held per feature table, for metrics.
    pub(crate) fn key_counts(&self) -> Vec<(String, usize)> {
        self.tables
            .iter()
            .map(|table| (table.field.as_str().to_string(), table.keys.len()))
            .collect()
    }

    /// Records the event in every feature (where its filter takes it) and writes each
    /// feature's value as of the event's time into `values`, in rule set order. Replaying
    /// history calls the same function, so a rebuilt state is identical to the live one.
    pub(crate) fn observe(
        &mut self,
        event: &Event,
        limits: &FeatureLimits,
        hasher: &FixedState,
        values: &mut Vec<FeatureValue>,
    ) {
        values.clear();
        values.extend(self.specs.iter().map(|spec| missing_value(spec.kind)));
        for table in &mut self.tables {
            let Some(key) = event.entity(table.field) else {
                continue;
            };
            let states = match table.keys.get_mut(key) {
                Some(states) => states,
                None => {
                    let records = table
                        .features
                        .iter()
                        .any(|feature| self.specs[*feature].records(event));
                    if !records {
                        continue;
                    }
                    let fresh = table
                        .features
                        .iter()
                        .map(|feature| KeyState::fresh(self.specs[*feature].kind))
                        .collect();
                    table.keys.entry(Box::from(key)).or_insert(fresh)
                }
            };
            for (state, feature) in states.iter_mut().zip(&table.features) {
                values[*feature] =
                    observe_state(&self.specs[*feature], state, event, limits, hasher);
            }
        }
    }

    /// Forgets keys whose every entry is older than its window (plus lateness) at `now_ms`.
    pub(crate) fn prune(&mut self, now_ms: i64, limits: &FeatureLimits) {
        for table in &mut self.tables {
            let horizons: Vec<i64> = table
                .features
                .iter()
                .map(|feature| now_ms - self.specs[*feature].window_ms - limits.lateness_max_ms)
                .collect();
            table.keys.retain(|_, states| {
                states
                    .iter()
                    .zip(&horizons)
                    .any(|(state, horizon)| state.latest_ms() > *horizon)
            });
        }
    }
}

/// Records the event in one feature's state for the event's key (if the feature's filter
/// takes it) and returns the value as of the event's time.
fn observe_state(
    spec: &FeatureSpec,
    state: &mut KeyState,
    event: &Event,
    limits: &FeatureLimits,
    hasher: &FixedState,
) -> FeatureValue {
    let at_ms = event.at_millisecond();
    let records = spec.records(event);
    match state {
        KeyState::Window { entries, latest_ms } => {
            if records {
                let amount = event.amount.map_or(0, |amount| amount.minor());
                record_window(entries, latest_ms, at_ms, amount);
            }
            let start = entries.partition_point(|entry| entry.at_ms <= at_ms - spec.window_ms);
            let end = entries.partition_point(|entry| entry.at_ms <= at_ms);
            // The value is read before anything is evicted, so that the aggregate includes
            // the event being decided even when it is far behind the key's latest event.
            let value = match spec.kind {
                FeatureKind::Sum => FeatureValue::Integer(
                    entries
                        .range(start..end)
                        .fold(0_i64, |total, entry| total.saturating_add(entry.sum)),
                ),
                _ => FeatureValue::Integer(
                    entries
                        .range(start..end)
                        .map(|entry| i64::from(entry.count))
                        .sum(),
                ),
            };
            if records {
                evict_window(entries, *latest_ms, spec.window_ms, limits);
            }
            value
        }
        KeyState::Sightings {
            sightings,
            latest_ms,
        } => {
            let value_hash = match spec.of {
                Some(of) => match event.entity(of) {
                    Some(value) => hasher.hash_one(value),
                    None => return missing_value(spec.kind),
                },
                None => 0,
            };
            let window_start = at_ms - spec.window_ms;
            let previous = sightings
                .iter()
                .find(|sighting| sighting.value_hash == value_hash)
                .copied();
            if records {
                record_sighting(
                    sightings,
                    latest_ms,
                    value_hash,
                    at_ms,
                    spec.window_ms,
                    limits,
                );
            }
            let value = match spec.kind {
                FeatureKind::DistinctCount => FeatureValue::Integer(
                    sightings
                        .iter()
                        .filter(|sighting| {
                            sighting.last_ms > window_start && sighting.first_ms <= at_ms
                        })
                        .count() as i64,
                ),
                FeatureKind::FirstSeenAge => {
                    let found = sightings
                        .iter()
                        .find(|sighting| sighting.value_hash == value_hash);
                    match found {
                        Some(sighting)
                            if sighting.first_ms <= at_ms && sighting.last_ms > window_start =>
                        {
                            FeatureValue::Integer((at_ms - sighting.first_ms) / 1000)
                        }
                        _ => FeatureValue::Integer(-1),
                    }
                }
                _ => match previous {
                    // The previous sighting strictly before this event, inside the window.
                    Some(sighting)
                        if sighting.last_ms <= at_ms && sighting.last_ms > window_start =>
                    {
                        FeatureValue::Integer((at_ms - sighting.last_ms) / 1000)
                    }
                    _ => FeatureValue::Integer(-1),
                },
            };
            value
        }
        KeyState::Travel { last } => {
            let value = match (event.geo, *last) {
                (Some(here), Some((previous_ms, there)))
                    if previous_ms <= at_ms && previous_ms > at_ms - spec.window_ms =>
                {
                    let distance = here.distance_km(&there);
                    match spec.kind {
                        FeatureKind::TravelDistance => FeatureValue::Float(distance),
                        _ => {
                            let hours = (at_ms - previous_ms) as f64 / 3_600_000.0;
                            // Two points at once: any distance is an impossible speed;
                            // one minute is the resolution below which speeds explode.
                            let hours = hours.max(1.0 / 60.0);
                            FeatureValue::Float(distance / hours)
                        }
                    }
                }
                _ => FeatureValue::Float(-1.0),
            };
            if records {
                if let Some(here) = event.geo {
                    if last.is_none_or(|(previous_ms, _)| previous_ms <= at_ms) {
                        *last = Some((at_ms, here));
                    }
                }
            }
            value
        }
    }
}

fn missing_value(kind: FeatureKind) -> FeatureValue {
    match kind {
        FeatureKind::Count | FeatureKind::Sum | FeatureKind::DistinctCount => {
            FeatureValue::Integer(0)
        }
        FeatureKind::FirstSeenAge | FeatureKind::LastSeenAge => FeatureValue::Integer(-1),
        FeatureKind::TravelDistance | FeatureKind::TravelSpeed => FeatureValue::Float(-1.0),
    }
}

fn record_window(
    entries: &mut VecDeque<WindowEntry>,
    latest_ms: &mut i64,
    at_ms: i64,
    amount: i64,
) {
    *latest_ms = (*latest_ms).max(at_ms);
    let position = entries.partition_point(|entry| entry.at_ms <= at_ms);
    match position
        .checked_sub(1)
        .and_then(|index| entries.get_mut(index))
    {
        Some(entry) if entry.at_ms == at_ms => {
            entry.count = entry.count.saturating_add(1);
            entry.sum = entry.sum.saturating_add(amount);
        }
        _ => entries.insert(
            position,
            WindowEntry {
                at_ms,
                count: 1,
                sum: amount,
            },
        ),
    }
}

/// Forgets window entries older than the key's latest time less window and lateness, and
/// merges the oldest past the per-key bound.
fn evict_window(
    entries: &mut VecDeque<WindowEntry>,
    latest_ms: i64,
    window_ms: i64,
    limits: &FeatureLimits,
) {
    let horizon = latest_ms - window_ms - limits.lateness_max_ms;
    while entries.front().is_some_and(|entry| entry.at_ms <= horizon) {
        entries.pop_front();
    }
    while entries.len() > limits.entries_per_key_max.max(2) {
        // Merge the two oldest into the later of them: never undercounts.
        if let Some(oldest) = entries.pop_front() {
            if let Some(next) = entries.front_mut() {
                next.count = next.count.saturating_add(oldest.count);
                next.sum = next.sum.saturating_add(oldest.sum);
            }
        }
    }
}

fn record_sighting(
    sightings: &mut Vec<Sighting>,
    latest_ms: &mut i64,
    value_hash: u64,
    at_ms: i64,
    window_ms: i64,
    limits: &FeatureLimits,
) {
    *latest_ms = (*latest_ms).max(at_ms);
    match sightings
        .iter_mut()
        .find(|sighting| sighting.value_hash == value_hash)
    {
        Some(sighting) => {
            if sighting.last_ms <= at_ms - window_ms {
                // Forgotten: its last sighting left the window, so it is new again.
                sighting.first_ms = at_ms;
            }
            sighting.first_ms = sighting.first_ms.min(at_ms);
            sighting.last_ms = sighting.last_ms.max(at_ms);
        }
        None => sightings.push(Sighting {
            value_hash,
            first_ms: at_ms,
            last_ms: at_ms,
        }),
    }
    // The sighting of the event being decided is never forgotten here, even far behind
    // the key's latest event, so that its own value includes it.
    let horizon = *latest_ms - window_ms - limits.lateness_max_ms;
    sightings.retain(|sighting| sighting.value_hash == value_hash || sighting.last_ms > horizon);
    if sightings.len() > limits.values_per_key_max.max(1) {
        if let Some((index, _)) = sightings
            .iter()
            .enumerate()
            .filter(|(_, sighting)| sighting.value_hash != value_hash)
            .min_by_key(|(_, sighting)| sighting.last_ms)
        {
            sightings.swap_remove(index);
        }
    }
}
