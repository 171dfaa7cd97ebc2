//! Decisions: the action taken on an event, with everything needed to explain and replay it.

use crate::feature::FeatureValue;
use crate::list::ListHit;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::sync::Arc;

/// What happens to the event, from least to most severe. The most severe triggered action
/// wins. Step-up lets the customer clear the event with extra verification; review asks an
/// analyst; hold delivery lets the order stand but stops the parcel before the last mile;
/// reject stops the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Approve,
    StepUp,
    Review,
    HoldDelivery,
    Reject,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Approve,
        Action::StepUp,
        Action::Review,
        Action::HoldDelivery,
        Action::Reject,
    ];

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::StepUp => "step_up",
            Action::Review => "review",
            Action::HoldDelivery => "hold_delivery",
            Action::Reject => "reject",
        }
    }

    /// Whether the case queue should open a case for it.
    pub fn opens_case(self) -> bool {
        matches!(self, Action::Review | Action::HoldDelivery)
    }
}

/// A rule whose condition held for the event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FiredRule {
    pub rule_id: Arc<str>,
    pub reason: Arc<str>,
    pub action: Action,
    pub score: i64,
    /// Shadow rules are recorded but change nothing.
    pub shadow: bool,
}

/// A condition that failed at run time (a type error on unusual input): the rule is
/// treated as not fired and the failure is kept with the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFailure {
    pub rule_id: Arc<str>,
    pub message: String,
}

/// The decision on one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub event_id: String,
    pub action: Action,
    /// Sum of the scores of the enforced rules that fired.
    pub score: i64,
    /// Reason codes of the enforced rules that fired and of the threshold reached, in rule
    /// order, without repeats.
    pub reasons: Vec<Arc<str>>,
    /// Every rule that fired, shadow ones marked.
    pub fired_rules: Vec<FiredRule>,
    /// The feature values the rules saw.
    #[serde(serialize_with = "serialize_features")]
    pub features: FeatureValues,
    pub list_hits: Vec<ListHit>,
    pub rule_set_version: u32,
    pub failures: Vec<RuleFailure>,
    /// What the shadow version would have decided, when one runs. Changes nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Box<ShadowDecision>>,
}

/// The outcome of the shadow version for the same event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowDecision {
    pub rule_set_version: u32,
    pub action: Action,
    pub score: i64,
    pub reasons: Vec<Arc<str>>,
    pub fired_rules: Vec<FiredRule>,
    #[serde(serialize_with = "serialize_features")]
    pub features: FeatureValues,
}

impl From<&Decision> for ShadowDecision {
    fn from(decision: &Decision) -> Self {
        ShadowDecision {
            rule_set_version: decision.rule_set_version,
            action: decision.action,
            score: decision.score,
            reasons: decision.reasons.clone(),
            fired_rules: decision.fired_rules.clone(),
            features: decision.features.clone(),
        }
    }
}

/// Feature names (shared with the rule set, never copied) and the values for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureValues {
    pub names: Arc<[Arc<str>]>,
    pub values: Vec<FeatureValue>,
}

impl FeatureValues {
    pub fn get(&self, name: &str) -> Option<FeatureValue> {
        self.names
            .iter()
            .position(|known| &**known == name)
            .and_then(|index| self.values.get(index).copied())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, FeatureValue)> {
        self.names
            .iter()
            .map(|name| &**name)
            .zip(self.values.iter().copied())
    }
}

fn serialize_features<S: Serializer>(
    features: &FeatureValues,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(features.values.len()))?;
    for (name, value) in features.iter() {
        map.serialize_entry(name, &value)?;
    }
    map.end()
}

impl Decision {
    /// An empty decision to be filled by [`crate::RiskEngine::decide_into`], so that a hot
    /// loop reuses its buffers.
    pub fn empty() -> Decision {
        Decision {
            event_id: String::new(),
            action: Action::Approve,
            score: 0,
            reasons: Vec::new(),
            fired_rules: Vec::new(),
            features: FeatureValues {
                names: Arc::from(Vec::new()),
                values: Vec::new(),
            },
            list_hits: Vec::new(),
            rule_set_version: 0,
            failures: Vec::new(),
            shadow: None,
        }
    }

    pub fn fired(&self, rule_id: &str) -> bool {
        self.fired_rules
            .iter()
            .any(|rule| &*rule.rule_id == rule_id)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
