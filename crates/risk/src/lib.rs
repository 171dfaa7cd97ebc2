//! Tally's real-time risk engine: events, velocity features, lists, rules in CEL, decisions
//! with reasons, rule set versions, back-testing and generated attack scenarios.
//!
//! # Design
//!
//! - **Pure core.** No I/O, no clock, no randomness of its own: event times come from the
//!   caller, the scenario generator takes a seed, the benchmark's timer lives in its caller.
//!   The store and the HTTP server plug in around [`RiskEngine`]: `decide(&Event)`,
//!   `load_rule_set(text) -> Version`, `activate(version)`, `versions()`,
//!   `rebuild(history)`, `prune(now)`, and [`Lists`] which a store fills. History for
//!   back-tests comes as NDJSON or Parquet ([`history`]) from a reader the caller opens.
//! - **One flow per event.** `decide` records the event in every feature (whatever the
//!   decision, so rejected attempts still count), reads the feature values as of the
//!   event's time, matches the lists, and evaluates the compiled conditions of the active
//!   rule set. The most severe enforced action wins; a score threshold can add one. The
//!   [`Decision`] carries the reason codes, fired rules (shadow ones marked), list hits,
//!   feature values and the rule set version: enough to explain and to replay it.
//! - **Shadow, two ways.** A rule with `mode = "shadow"` fires and is recorded but changes
//!   nothing. A whole version can run in shadow beside the live one (`set_shadow`): each
//!   decision then carries the shadow version's outcome, and activating that version
//!   promotes it with the feature state it built up.
//! - **Conditions in CEL** (`cel-interpreter`), compiled once when a set loads, checked for
//!   unknown variables and for a boolean result on a sample event, refused with rule id,
//!   line and message. Chosen over ZEN (`zen-expression`) after measuring both on the
//!   default pack's 15 conditions over the same recorded features
//!   (`comparisons/risk-engines/benches/expression_languages.rs`, 2-core shared VM,
//!   median of 3 runs of 5): with a context reused in place CEL does 450,000 decisions/s
//!   (2.2 us) against ZEN's 305,000 (3.3 us); with a fresh context per decision ZEN is
//!   ahead (181,000 against 140,000), but the engine never builds a fresh one. CEL is also
//!   a specified, widely used language (Kubernetes, Envoy), its compiled programs are
//!   `Send + Sync` (ZEN's values are `Rc`), and it is a lighter build. ZEN's decimal
//!   numbers buy nothing here: amounts reach rules as integer minor units. Against CEL:
//!   `cel-parser` 0.10 panics on some malformed input, so compilation runs under
//!   `catch_unwind` and a panic is a refusal.
//! - **Features in bounded memory.** The features of a rule set are grouped by key field
//!   (customer, device, card, ...); each group has one hash map from the key value to the
//!   states of all its features, so an event costs one lookup per key field, not one per
//!   feature (the default pack: 4 lookups for 16 features). A state is a small sorted ring
//!   of (time, count, sum) entries, a small table of value hashes with first and last
//!   sighting, or the last geo point. Per-key memory is capped ([`FeatureLimits`]); past
//!   the cap the oldest entries merge (counts never undercount) or the least recently seen
//!   value is forgotten; `prune(now)` drops keys with nothing left in their windows.
//!   Windows are half-open `(t - window, t]` and exact at the edges; late events up to
//!   `lateness_max_ms` see exact counts and sums; an event further behind its key's
//!   latest event still counts itself in its own aggregates (older entries it would have
//!   seen may be gone), and is forgotten at once. Keys are hashed with a caller-seeded
//!   foldhash. Activating a version keeps the state of identically defined features and
//!   reports the new ones as cold.
//! - **Restart = replay.** Feature state is a pure function of the events in decision
//!   order: `rebuild(history)` after a restart gives identical features, and a back-test
//!   that replays the same history reproduces the live decisions.
//! - **Hot path.** Conditions compiled once; the evaluation context is allocated once per
//!   rule set and its values overwritten in place; rules can be limited to event kinds;
//!   `decide_into` reuses the decision's buffers.
//! - **What the shell adds** (`tally_store::risk`, `tally_service::risk`, the risk routes and the
//!   case queue). The store keeps each rule set's `source` with its version (and loads them in
//!   version order on start, so the numbers match), every event in decision order, every `Decision`
//!   (it is `Serialize`), and the list entries; on start it fills [`Lists`] and calls `rebuild`
//!   with the last 90 days of events. The server holds one engine behind a mutex (the engine is
//!   `Send`; do not shard it by customer, since device, card and address features span customers),
//!   maps [`RiskError::code`] to its error responses, and opens a case when [`Action::opens_case`].
//!   A stored decision replays with `evaluate` on an engine built from its version's source.

pub mod backtest;
pub mod bench;
pub mod decision;
pub mod engine;
pub mod error;
pub mod event;
pub mod feature;
pub mod history;
pub mod list;
pub mod rule;
pub mod scenario;

pub use backtest::{backtest, BacktestInput, BacktestReport, Label, LabelMetrics};
pub use decision::{Action, Decision, FeatureValues, FiredRule, ShadowDecision};
pub use engine::{Activation, EngineConfig, RiskEngine, Version, VersionInfo};
pub use error::RiskError;
pub use event::{EntityField, Event, EventKind, GeoPoint, ProfileField};
pub use feature::{FeatureKind, FeatureLimits, FeatureSpec, FeatureValue};
pub use list::{ListEntry, ListHit, ListKind, Lists, CONSORTIUM_SOURCE};
pub use rule::{RuleMode, RuleSet};
pub use scenario::{generate, AttackKind, Scenario, ScenarioConfig};

/// The default rule pack shipped with Tally (`rules/default.toml`).
pub const DEFAULT_RULES: &str = include_str!("../../../rules/default.toml");
