//! The risk engine: a registry of rule set versions, the live feature state, the lists, and
//! `decide`, which turns one event into a decision.

use crate::decision::{Action, Decision, FiredRule, RuleFailure, ShadowDecision};
use crate::error::RiskError;
use crate::event::{Event, EventKind, ProfileField};
use crate::feature::{FeatureLimits, FeatureTables, FeatureValue};
use crate::list::{ListHit, ListKind, Lists, CONSORTIUM_SOURCE};
use crate::rule::{declare_variables, RuleMode, RuleSet};
use cel_interpreter::{Context, Value};
use foldhash::fast::FixedState;
use serde::Serialize;
use std::sync::Arc;
use tally_core::Currency;

/// A rule set version number, assigned by the engine from 1 upward in load order.
pub type Version = u32;

/// Settings of an engine. Everything that varies comes from the caller.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Seed of the hash of entity values (features and lists). It changes how values are
    /// hashed, never a decision. Pass a secret one in production so that nobody can pick
    /// colliding device ids (the default is public; the Tally service draws a random one at
    /// every start); keep the default where runs must repeat (back-tests, benchmarks).
    pub hash_seed: u64,
    pub limits: FeatureLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            hash_seed: 0x7a11_7215_c0de_0001,
            limits: FeatureLimits::default(),
        }
    }
}

/// A loaded version, as listed by [`RiskEngine::versions`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionInfo {
    pub version: Version,
    pub name: String,
    pub rules: usize,
    pub shadow_rules: usize,
    pub features: usize,
    pub active: bool,
}

/// What an activation did to the feature state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activation {
    pub version: Version,
    /// Features whose definition was already live keep their state.
    pub kept_features: Vec<String>,
    /// New features start empty: replay history through [`RiskEngine::rebuild`] so that
    /// they do not start blind.
    pub cold_features: Vec<String>,
}

/// One rule set version at work: its feature state and its evaluation context.
struct Runner {
    /// Index of the version in the registry.
    index: usize,
    features: FeatureTables,
    context: Context<'static>,
}

impl Runner {
    fn new(index: usize, rule_set: &RuleSet, features: FeatureTables) -> Runner {
        let mut context = Context::default();
        declare_variables(&mut context, &rule_set.features);
        Runner {
            index,
            features,
            context,
        }
    }
}

/// Text values handed to conditions, made once.
struct TextValues {
    kinds: Vec<Value>,
    profile_fields: Vec<Value>,
    currencies: Vec<(Currency, Value)>,
    empty: Value,
}

/// The engine. Single-threaded by design (`&mut self`): the server runs one engine behind a
/// lock; the pure core does no locking of its own.
pub struct RiskEngine {
    config: EngineConfig,
    hasher: FixedState,
    versions: Vec<Arc<RuleSet>>,
    live: Runner,
    /// A whole version evaluated beside the live one, recorded but not enforced.
    shadow: Option<Runner>,
    lists: Lists,
    texts: TextValues,
    replay_values: Vec<FeatureValue>,
    shadow_scratch: Decision,
}

impl std::fmt::Debug for RiskEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RiskEngine")
            .field("versions", &self.versions.len())
            .field("active", &self.active_version())
            .field("shadow", &self.shadow_version())
            .finish_non_exhaustive()
    }
}

fn text(value: &str) -> Value {
    Value::String(Arc::new(value.to_string()))
}

fn split_kept(rule_set: &RuleSet, kept: Vec<bool>) -> (Vec<String>, Vec<String>) {
    let mut kept_features = Vec::new();
    let mut cold_features = Vec::new();
    for (spec, kept) in rule_set.features.iter().zip(kept) {
        if kept {
            kept_features.push(spec.name.clone());
        } else {
            cold_features.push(spec.name.clone());
        }
    }
    (kept_features, cold_features)
}

impl RiskEngine {
    /// An engine whose version 1 is `rule_set`, active.
    pub fn new(rule_set: RuleSet, config: EngineConfig) -> Self {
        let rule_set = Arc::new(rule_set);
        let features = FeatureTables::new(&rule_set.features, config.hash_seed);
        let live = Runner::new(0, &rule_set, features);
        RiskEngine {
            config,
            hasher: FixedState::with_seed(config.hash_seed),
            versions: vec![rule_set],
            live,
            shadow: None,
            lists: Lists::new(config.hash_seed),
            texts: TextValues {
                kinds: EventKind::ALL
                    .iter()
                    .map(|kind| text(kind.as_str()))
                    .collect(),
                profile_fields: ProfileField::ALL
                    .iter()
                    .map(|field| text(field.as_str()))
                    .collect(),
                currencies: Vec::new(),
                empty: text(""),
            },
            replay_values: Vec::new(),
            shadow_scratch: Decision::empty(),
        }
    }

    /// Parses a rule set text and builds an engine on it with the default configuration
    /// (the public hash seed: for back-tests and benchmarks, where runs must repeat).
    pub fn from_rule_set_text(text: &str) -> Result<Self, RiskError> {
        RiskEngine::from_rule_set_text_with(text, EngineConfig::default())
    }

    /// Parses a rule set text and builds an engine on it with `config`.
    pub fn from_rule_set_text_with(text: &str, config: EngineConfig) -> Result<Self, RiskError> {
        Ok(RiskEngine::new(RuleSet::parse(text)?, config))
    }

    /// The settings the engine was built with.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// Validates and compiles a rule set and keeps it as a new version, not yet active.
    /// A set that does not compile is refused and nothing changes.
    pub fn load_rule_set(&mut self, text: &str) -> Result<Version, RiskError> {
        let rule_set = RuleSet::parse(text)?;
        self.versions.push(Arc::new(rule_set));
        Ok(self.versions.len() as Version)
    }

    /// Keeps an already parsed rule set as a new version, not yet active: lets a caller
    /// check a set (`RuleSet::parse`) and store it before the engine changes.
    pub fn load_parsed(&mut self, rule_set: RuleSet) -> Version {
        self.versions.push(Arc::new(rule_set));
        self.versions.len() as Version
    }

    /// The version number the next loaded rule set gets.
    pub fn next_version(&self) -> Version {
        self.versions.len() as Version + 1
    }

    /// Whether activating `version` now would start some of its features cold (a feature
    /// not defined identically in the live set), without changing anything: lets a
    /// caller fetch the history to warm them before it activates.
    pub fn activation_starts_cold(&self, version: Version) -> Result<bool, RiskError> {
        let index = self.index_of(version)?;
        if self
            .shadow
            .as_ref()
            .is_some_and(|shadow| shadow.index == index)
        {
            return Ok(false);
        }
        let live = self.live.features.specs();
        Ok(self.versions[index]
            .features
            .iter()
            .any(|spec| !live.iter().any(|old| old.same_definition(spec))))
    }

    /// Whether `version` is loaded (`UnknownVersion` if not), without changing anything.
    pub fn check_version(&self, version: Version) -> Result<(), RiskError> {
        self.index_of(version).map(|_| ())
    }

    fn index_of(&self, version: Version) -> Result<usize, RiskError> {
        (version as usize)
            .checked_sub(1)
            .filter(|index| *index < self.versions.len())
            .ok_or(RiskError::UnknownVersion(version))
    }

    /// Makes `version` the live rule set without a restart (activating an older version is
    /// a roll-back). If `version` is running in shadow, it is promoted with the feature
    /// state it built up. Otherwise features defined identically in the old and the new
    /// version keep their state; the others start empty and are reported as cold.
    pub fn activate(&mut self, version: Version) -> Result<Activation, RiskError> {
        let index = self.index_of(version)?;
        let rule_set = Arc::clone(&self.versions[index]);
        if self
            .shadow
            .as_ref()
            .is_some_and(|shadow| shadow.index == index)
        {
            if let Some(shadow) = self.shadow.take() {
                self.live = shadow;
                let names = rule_set
                    .features
                    .iter()
                    .map(|spec| spec.name.clone())
                    .collect();
                return Ok(Activation {
                    version,
                    kept_features: names,
                    cold_features: Vec::new(),
                });
            }
        }
        let (features, kept) = self.live.features.carry_over(&rule_set.features);
        self.live = Runner::new(index, &rule_set, features);
        let (kept_features, cold_features) = split_kept(&rule_set, kept);
        Ok(Activation {
            version,
            kept_features,
            cold_features,
        })
    }

    /// Fills the live features an activation started cold from `history` (in decision
    /// order), leaving the features it kept as they are (their state is the live state).
    /// Call it right after [`RiskEngine::activate`] returned `activation`.
    pub fn warm<'a>(
        &mut self,
        activation: &Activation,
        history: impl IntoIterator<Item = &'a Event>,
    ) {
        let cold: Vec<bool> = self
            .live
            .features
            .specs()
            .iter()
            .map(|spec| activation.cold_features.contains(&spec.name))
            .collect();
        let mut history = history.into_iter();
        self.live.features.warm(
            &cold,
            &mut history,
            &self.config.limits,
            &self.hasher,
            &mut self.replay_values,
        );
    }

    /// Runs `version` in shadow beside the live set (or stops shadowing with `None`): every
    /// decision then also carries what the shadow version would have decided, which changes
    /// nothing. Its features start from a copy of the live state where they are defined
    /// identically; the others are reported cold (replay history with `rebuild` to warm
    /// them). Activating the shadow version later keeps its state.
    pub fn set_shadow(
        &mut self,
        version: Option<Version>,
    ) -> Result<Option<Activation>, RiskError> {
        let Some(version) = version else {
            self.shadow = None;
            return Ok(None);
        };
        let index = self.index_of(version)?;
        let rule_set = Arc::clone(&self.versions[index]);
        let (features, kept) = self.live.features.clone().carry_over(&rule_set.features);
        self.shadow = Some(Runner::new(index, &rule_set, features));
        let (kept_features, cold_features) = split_kept(&rule_set, kept);
        Ok(Some(Activation {
            version,
            kept_features,
            cold_features,
        }))
    }

    /// Loads and activates in one step.
    pub fn load_and_activate(&mut self, text: &str) -> Result<Activation, RiskError> {
        let version = self.load_rule_set(text)?;
        self.activate(version)
    }

    pub fn active_version(&self) -> Version {
        self.live.index as Version + 1
    }

    pub fn shadow_version(&self) -> Option<Version> {
        self.shadow
            .as_ref()
            .map(|shadow| shadow.index as Version + 1)
    }

    pub fn active_rule_set(&self) -> &RuleSet {
        &self.versions[self.live.index]
    }

    pub fn rule_set(&self, version: Version) -> Option<&RuleSet> {
        (version as usize)
            .checked_sub(1)
            .and_then(|index| self.versions.get(index))
            .map(|set| &**set)
    }

    pub fn versions(&self) -> Vec<VersionInfo> {
        self.versions
            .iter()
            .enumerate()
            .map(|(index, set)| VersionInfo {
                version: index as Version + 1,
                name: set.name.clone(),
                rules: set.rules.len(),
                shadow_rules: set
                    .rules
                    .iter()
                    .filter(|rule| rule.mode == RuleMode::Shadow)
                    .count(),
                features: set.features.len(),
                active: index == self.live.index,
            })
            .collect()
    }

    pub fn lists(&self) -> &Lists {
        &self.lists
    }

    pub fn lists_mut(&mut self) -> &mut Lists {
        &mut self.lists
    }

    /// Records an event into the feature state without deciding: how history is replayed.
    pub fn replay(&mut self, event: &Event) {
        let limits = &self.config.limits;
        self.live
            .features
            .observe(event, limits, &self.hasher, &mut self.replay_values);
        if let Some(shadow) = &mut self.shadow {
            shadow
                .features
                .observe(event, limits, &self.hasher, &mut self.replay_values);
        }
    }

    /// Forgets all feature state and replays `history` in the order it was decided, so a
    /// restart does not blind the engine. The result is identical to the live state.
    pub fn rebuild<'a>(&mut self, history: impl IntoIterator<Item = &'a Event>) {
        let seed = self.config.hash_seed;
        self.live.features = FeatureTables::new(self.live.features.specs(), seed);
        if let Some(shadow) = &mut self.shadow {
            shadow.features = FeatureTables::new(shadow.features.specs(), seed);
        }
        for event in history {
            self.replay(event);
        }
    }

    /// Forgets feature keys with nothing left in their window at `now_ms` (bounded memory
    /// across keys; call it periodically from the shell).
    pub fn prune(&mut self, now_ms: i64) {
        self.live.features.prune(now_ms, &self.config.limits);
        if let Some(shadow) = &mut self.shadow {
            shadow.features.prune(now_ms, &self.config.limits);
        }
    }

    /// Keys held per key field (customer, device, ...) of the live set, for metrics.
    pub fn feature_key_counts(&self) -> Vec<(String, usize)> {
        self.live.features.key_counts()
    }

    /// Decides on one event: records it in the features, reads the lists, evaluates the
    /// live rule set (and the shadow version, if one runs).
    pub fn decide(&mut self, event: &Event) -> Result<Decision, RiskError> {
        let mut decision = Decision::empty();
        self.decide_into(event, &mut decision)?;
        Ok(decision)
    }

    /// [`RiskEngine::decide`] into a decision whose buffers are reused.
    pub fn decide_into(&mut self, event: &Event, decision: &mut Decision) -> Result<(), RiskError> {
        self.decide_into_with_hits(event, &[], decision)
    }

    /// [`RiskEngine::decide`] with list hits the caller found outside the engine's lists
    /// (records of a consortium log, source [`CONSORTIUM_SOURCE`]), added to the lists' own
    /// hits before the rules read them: the engine stays without I/O, and a remote list is
    /// one more list hit, explained as every other.
    pub fn decide_with_hits(
        &mut self,
        event: &Event,
        hits: &[ListHit],
    ) -> Result<Decision, RiskError> {
        let mut decision = Decision::empty();
        self.decide_into_with_hits(event, hits, &mut decision)?;
        Ok(decision)
    }

    /// [`RiskEngine::decide_with_hits`] into a decision whose buffers are reused.
    pub fn decide_into_with_hits(
        &mut self,
        event: &Event,
        hits: &[ListHit],
        decision: &mut Decision,
    ) -> Result<(), RiskError> {
        event.validate()?;
        let rule_set = &self.versions[self.live.index];
        prepare(decision, event, self.live.index, rule_set);
        self.live.features.observe(
            event,
            &self.config.limits,
            &self.hasher,
            &mut decision.features.values,
        );
        decision.list_hits.clear();
        self.lists.hits_into(event, &mut decision.list_hits);
        decision.list_hits.extend_from_slice(hits);
        evaluate_rules(
            rule_set,
            &mut self.live.context,
            &mut self.texts,
            event,
            decision,
        );
        decision.shadow = None;
        if let Some(shadow) = &mut self.shadow {
            let shadow_set = &self.versions[shadow.index];
            let scratch = &mut self.shadow_scratch;
            prepare(scratch, event, shadow.index, shadow_set);
            shadow.features.observe(
                event,
                &self.config.limits,
                &self.hasher,
                &mut scratch.features.values,
            );
            scratch.list_hits.clone_from(&decision.list_hits);
            evaluate_rules(
                shadow_set,
                &mut shadow.context,
                &mut self.texts,
                event,
                scratch,
            );
            decision.shadow = Some(Box::new(ShadowDecision::from(&*scratch)));
        }
        Ok(())
    }

    /// A stateless decision: evaluates the live rules on `event` with the given feature
    /// values (in the order of the rule set's features) without touching the feature state.
    /// For what-if explanations, replays of stored decisions, and the benchmark's comparison.
    pub fn evaluate(
        &mut self,
        event: &Event,
        feature_values: &[FeatureValue],
        decision: &mut Decision,
    ) -> Result<(), RiskError> {
        let rule_set = &self.versions[self.live.index];
        if feature_values.len() != rule_set.features.len() {
            return Err(RiskError::event(format!(
                "expected {} feature values, got {}",
                rule_set.features.len(),
                feature_values.len()
            )));
        }
        prepare(decision, event, self.live.index, rule_set);
        decision.features.values.clear();
        decision.features.values.extend_from_slice(feature_values);
        decision.list_hits.clear();
        self.lists.hits_into(event, &mut decision.list_hits);
        evaluate_rules(
            rule_set,
            &mut self.live.context,
            &mut self.texts,
            event,
            decision,
        );
        decision.shadow = None;
        Ok(())
    }
}

/// Resets a decision for `event` under the version at `index`.
fn prepare(decision: &mut Decision, event: &Event, index: usize, rule_set: &RuleSet) {
    decision.event_id.clear();
    decision.event_id.push_str(&event.id);
    decision.rule_set_version = index as Version + 1;
    if !Arc::ptr_eq(&decision.features.names, &rule_set.feature_names) {
        decision.features.names = Arc::clone(&rule_set.feature_names);
    }
}

/// Sets the context's variables from the event, its list hits and its feature values,
/// then evaluates the rules and thresholds into the decision.
fn evaluate_rules(
    rule_set: &RuleSet,
    context: &mut Context<'static>,
    texts: &mut TextValues,
    event: &Event,
    decision: &mut Decision,
) {
    decision.score = 0;
    decision.reasons.clear();
    decision.fired_rules.clear();
    decision.failures.clear();
    if let Context::Root { variables, .. } = &mut *context {
        let mut set = |name: &str, value: Value| {
            if let Some(slot) = variables.get_mut(name) {
                *slot = value;
            }
        };
        set("kind", texts.kinds[event.kind as usize].clone());
        set(
            "profile_field",
            event.profile_field.map_or_else(
                || texts.empty.clone(),
                |field| texts.profile_fields[field as usize].clone(),
            ),
        );
        set(
            "amount",
            Value::Int(event.amount.map_or(0, |amount| amount.minor())),
        );
        let currency = match event.amount {
            None => texts.empty.clone(),
            Some(amount) => {
                let code = amount.currency();
                match texts.currencies.iter().find(|(known, _)| *known == code) {
                    Some((_, value)) => value.clone(),
                    None => {
                        let value = text(code.code());
                        texts.currencies.push((code, value.clone()));
                        value
                    }
                }
            }
        };
        set("currency", currency);
        set("has_device", Value::Bool(event.device.is_some()));
        set("has_geo", Value::Bool(event.geo.is_some()));
        let listed = |kind: ListKind| decision.list_hits.iter().any(|hit| hit.kind == kind);
        set("block_listed", Value::Bool(listed(ListKind::Block)));
        set("allow_listed", Value::Bool(listed(ListKind::Allow)));
        set("watch_listed", Value::Bool(listed(ListKind::Watch)));
        set(
            "consortium_listed",
            Value::Bool(
                decision
                    .list_hits
                    .iter()
                    .any(|hit| hit.source == CONSORTIUM_SOURCE),
            ),
        );
        for (name, value) in rule_set
            .feature_names
            .iter()
            .zip(decision.features.values.iter())
        {
            set(
                name,
                match *value {
                    FeatureValue::Integer(value) => Value::Int(value),
                    FeatureValue::Float(value) => Value::Float(value),
                },
            );
        }
    }

    let kind_bit = event.kind.bit();
    let mut action = Action::Approve;
    for rule in &rule_set.rules {
        if rule.event_kinds_mask & kind_bit == 0 {
            continue;
        }
        match rule.program.execute(context) {
            Ok(Value::Bool(true)) => {
                let shadow = rule.mode == RuleMode::Shadow;
                decision.fired_rules.push(FiredRule {
                    rule_id: Arc::clone(&rule.id),
                    reason: Arc::clone(&rule.reason),
                    action: rule.action,
                    score: rule.score,
                    shadow,
                });
                if !shadow {
                    decision.score = decision.score.saturating_add(rule.score);
                    action = action.max(rule.action);
                    if !decision.reasons.contains(&rule.reason) {
                        decision.reasons.push(Arc::clone(&rule.reason));
                    }
                }
            }
            Ok(Value::Bool(false)) => {}
            Ok(other) => decision.failures.push(RuleFailure {
                rule_id: Arc::clone(&rule.id),
                message: format!("the condition gave {other:?}, not a boolean"),
            }),
            Err(error) => decision.failures.push(RuleFailure {
                rule_id: Arc::clone(&rule.id),
                message: error.to_string(),
            }),
        }
    }
    if let Some(threshold) = rule_set
        .thresholds
        .iter()
        .find(|threshold| decision.score >= threshold.score_at_least)
    {
        action = action.max(threshold.action);
        if !decision.reasons.contains(&threshold.reason) {
            decision.reasons.push(Arc::clone(&threshold.reason));
        }
    }
    decision.action = action;
}
