//! Back-testing: replays history through a candidate rule set with the features rebuilt as
//! they were at each event's time, and reports actions, rule hits, precision and recall
//! against labels, and the difference from the live rule set.

use crate::decision::{Action, Decision};
use crate::engine::{EngineConfig, RiskEngine};
use crate::error::RiskError;
use crate::event::Event;
use crate::list::{ListEntry, ListHit};
use crate::rule::{RuleMode, RuleSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A fraud label for one event (labels are NDJSON, one per line). Events without a label
/// are taken as clean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub event_id: String,
    pub fraud: bool,
    /// The attack kind, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
    /// Events of one attack share an id; recall is also reported per attack instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack_id: Option<u32>,
}

impl Label {
    pub fn from_json(text: &str) -> Result<Label, RiskError> {
        serde_json::from_str(text).map_err(|error| RiskError::InvalidLabel {
            message: error.to_string(),
        })
    }
}

/// Hits of one rule over the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHits {
    pub rule_id: String,
    pub mode: RuleMode,
    pub hits: usize,
}

/// Catch rate of one attack kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttackCatch {
    pub events: usize,
    pub events_flagged: usize,
    pub instances: usize,
    /// Instances with at least one event flagged.
    pub instances_caught: usize,
}

/// Precision and recall of "flagged" (any action but approve) against labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabelMetrics {
    pub fraud_events: usize,
    pub clean_events: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: f64,
    pub recall: f64,
    /// Clean events flagged / clean events.
    pub false_positive_rate: f64,
    /// Clean events flagged, by action.
    pub false_positives_by_action: BTreeMap<String, usize>,
    pub by_attack: BTreeMap<String, AttackCatch>,
}

/// How the candidate's decisions differ from the live rule set's on the same history.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveDiff {
    pub live_rule_set: String,
    pub events_changed: usize,
    /// "live_action -> candidate_action" counts, for the events that changed.
    pub transitions: BTreeMap<String, usize>,
    pub live_labels: Option<LabelMetrics>,
}

/// The result of a back-test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    pub rule_set: String,
    pub events: usize,
    pub actions: BTreeMap<String, usize>,
    pub rule_hits: Vec<RuleHits>,
    pub labels: Option<LabelMetrics>,
    pub live_diff: Option<LiveDiff>,
}

struct LabelCounter<'a> {
    labels: &'a HashMap<&'a str, &'a Label>,
    metrics: LabelMetrics,
    caught_instances: BTreeMap<(String, u32), bool>,
}

impl<'a> LabelCounter<'a> {
    fn new(labels: &'a HashMap<&'a str, &'a Label>) -> Self {
        LabelCounter {
            labels,
            metrics: LabelMetrics::default(),
            caught_instances: BTreeMap::new(),
        }
    }

    fn count(&mut self, decision: &Decision) {
        let flagged = decision.action != Action::Approve;
        let label = self
            .labels
            .get(decision.event_id.as_str())
            .filter(|label| label.fraud);
        match label {
            Some(label) => {
                self.metrics.fraud_events += 1;
                if flagged {
                    self.metrics.true_positives += 1;
                } else {
                    self.metrics.false_negatives += 1;
                }
                let attack = label
                    .attack
                    .clone()
                    .unwrap_or_else(|| "unknown".to_string());
                let entry = self.metrics.by_attack.entry(attack.clone()).or_default();
                entry.events += 1;
                entry.events_flagged += usize::from(flagged);
                let instance = self
                    .caught_instances
                    .entry((attack, label.attack_id.unwrap_or(0)))
                    .or_insert(false);
                *instance |= flagged;
            }
            None => {
                self.metrics.clean_events += 1;
                if flagged {
                    self.metrics.false_positives += 1;
                    *self
                        .metrics
                        .false_positives_by_action
                        .entry(decision.action.as_str().to_string())
                        .or_default() += 1;
                }
            }
        }
    }

    fn finish(mut self) -> LabelMetrics {
        for ((attack, _), caught) in &self.caught_instances {
            let entry = self.metrics.by_attack.entry(attack.clone()).or_default();
            entry.instances += 1;
            entry.instances_caught += usize::from(*caught);
        }
        let metrics = &mut self.metrics;
        let ratio = |part: usize, whole: usize| {
            if whole == 0 {
                0.0
            } else {
                part as f64 / whole as f64
            }
        };
        metrics.precision = ratio(
            metrics.true_positives,
            metrics.true_positives + metrics.false_positives,
        );
        metrics.recall = ratio(metrics.true_positives, metrics.fraud_events);
        metrics.false_positive_rate = ratio(metrics.false_positives, metrics.clean_events);
        self.metrics
    }
}

/// What to back-test.
pub struct BacktestInput<'a> {
    pub candidate: RuleSet,
    /// History in the order it was decided.
    pub events: &'a [Event],
    pub list_entries: &'a [ListEntry],
    pub labels: Option<&'a [Label]>,
    /// The live rule set, to report the difference.
    pub live: Option<RuleSet>,
    pub config: EngineConfig,
    /// Hits each event had from outside the engine's lists when it was decided (a
    /// consortium log's records, as stored with the decision), by position in `events`;
    /// shorter than `events` (or empty) where none were recorded. A back-test replays what
    /// was known then: it never asks the log again.
    pub recorded_hits: &'a [Vec<ListHit>],
}

/// Replays the history through the candidate (and the live set, if given), calling
/// `on_decision` with each candidate decision.
pub fn backtest(
    input: BacktestInput<'_>,
    mut on_decision: impl FnMut(&Event, &Decision),
) -> Result<BacktestReport, RiskError> {
    let name = input.candidate.name.clone();
    let mut rule_hits: Vec<RuleHits> = input
        .candidate
        .rules
        .iter()
        .map(|rule| RuleHits {
            rule_id: rule.id.to_string(),
            mode: rule.mode,
            hits: 0,
        })
        .collect();
    let rule_index: HashMap<String, usize> = rule_hits
        .iter()
        .enumerate()
        .map(|(index, hits)| (hits.rule_id.clone(), index))
        .collect();
    let mut candidate = RiskEngine::new(input.candidate, input.config);
    let mut live = input.live.map(|set| {
        let name = set.name.clone();
        (RiskEngine::new(set, input.config), name)
    });
    for entry in input.list_entries {
        candidate.lists_mut().add(entry.clone())?;
        if let Some((engine, _)) = &mut live {
            engine.lists_mut().add(entry.clone())?;
        }
    }
    let label_map: HashMap<&str, &Label> = input
        .labels
        .unwrap_or_default()
        .iter()
        .map(|label| (label.event_id.as_str(), label))
        .collect();
    let mut counter = input.labels.map(|_| LabelCounter::new(&label_map));
    let mut live_counter = input.labels.map(|_| LabelCounter::new(&label_map));
    let mut actions: BTreeMap<String, usize> = Action::ALL
        .iter()
        .map(|action| (action.as_str().to_string(), 0))
        .collect();
    let mut diff = live.as_ref().map(|(_, name)| LiveDiff {
        live_rule_set: name.clone(),
        ..LiveDiff::default()
    });
    let mut decision = Decision::empty();
    let mut live_decision = Decision::empty();
    for (position, event) in input.events.iter().enumerate() {
        let recorded = input
            .recorded_hits
            .get(position)
            .map_or(&[][..], Vec::as_slice);
        candidate.decide_into_with_hits(event, recorded, &mut decision)?;
        *actions
            .entry(decision.action.as_str().to_string())
            .or_default() += 1;
        for fired in &decision.fired_rules {
            if let Some(index) = rule_index.get(&*fired.rule_id) {
                rule_hits[*index].hits += 1;
            }
        }
        if let Some(counter) = &mut counter {
            counter.count(&decision);
        }
        if let (Some((engine, _)), Some(diff)) = (&mut live, &mut diff) {
            engine.decide_into_with_hits(event, recorded, &mut live_decision)?;
            if live_decision.action != decision.action {
                diff.events_changed += 1;
                *diff
                    .transitions
                    .entry(format!(
                        "{} -> {}",
                        live_decision.action.as_str(),
                        decision.action.as_str()
                    ))
                    .or_default() += 1;
            }
            if let Some(counter) = &mut live_counter {
                counter.count(&live_decision);
            }
        }
        on_decision(event, &decision);
    }
    if let Some(diff) = &mut diff {
        diff.live_labels = live_counter.map(LabelCounter::finish);
    }
    Ok(BacktestReport {
        rule_set: name,
        events: input.events.len(),
        actions,
        rule_hits,
        labels: counter.map(LabelCounter::finish),
        live_diff: diff,
    })
}
