//! Back-testing a candidate rule set against the stored history: the events of the last
//! [`HISTORY_DAYS`] days replayed through the candidate and the live rule set (features
//! rebuilt as they were at each event's time, the lists as they are now), precision and
//! recall against what analysts decided, and the decisions that would change. Nothing is
//! stored and nothing goes live: `tally_risk::backtest` does the replay, on a blocking
//! thread.

use super::{list_entry, micros, RiskRequestError, RiskService, RiskServiceError, HISTORY_DAYS};
use jiff::SignedDuration;
use tally_risk::backtest::{backtest, BacktestInput, BacktestReport, Label};
use tally_risk::{EngineConfig, EntityField, Event, ListHit, ListKind, RuleSet, CONSORTIUM_SOURCE};

/// Changed decisions listed at most (the report counts them all).
pub const CHANGED_DECISIONS_SHOWN: usize = 200;
/// Analysts' decided cases read as labels at most.
const LABELLED_CASES_MAX: i64 = 100_000;

/// One stored decision the candidate would decide otherwise.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangedDecision {
    pub sequence: i64,
    pub event_id: String,
    pub customer: String,
    /// When the event happened, in microseconds since the epoch.
    pub at: i64,
    /// The action stored when it was decided.
    pub was: String,
    /// The candidate's action.
    pub would_be: String,
    /// The candidate's reason codes.
    pub reasons: Vec<String>,
}

/// What a back-test of stored history found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredBacktest {
    /// From the replay: actions, rule hits, precision and recall, the difference from the
    /// live rule set.
    pub report: BacktestReport,
    /// The live rule set's version the candidate is compared with.
    pub live_version: u32,
    /// Events the analysts' decisions label: fraud (a rejected review or held delivery)
    /// and clean (an approved one); every other event counts as clean.
    pub labelled_fraud: usize,
    pub labelled_clean: usize,
    /// Every stored decision the candidate would change, counted.
    pub changed_from_stored: usize,
    /// The first [`CHANGED_DECISIONS_SHOWN`] of them, oldest first.
    pub changed: Vec<ChangedDecision>,
}

impl RiskService {
    /// Back-tests `source` (a rule set, checked as an upload is: refused with its rule and
    /// line) against the stored history. Reads only.
    pub async fn backtest_stored(&self, source: &str) -> Result<StoredBacktest, RiskRequestError> {
        let candidate = RuleSet::parse(source)?;
        let live_version = self.state.lock().await.engine.active_version();
        let live_source = self
            .store
            .rule_sets()
            .await?
            .into_iter()
            .find(|(version, _)| *version == i64::from(live_version))
            .map(|(_, source)| source)
            .ok_or_else(|| {
                RiskServiceError::Inconsistent(format!(
                    "live rule set version {live_version} is not stored"
                ))
            })?;
        let live = RuleSet::parse(&live_source)?;
        let now = self.clock.now();
        let since = now - SignedDuration::from_hours(24 * HISTORY_DAYS);
        let rows = self.store.events_since(micros(since)).await?;
        let events = rows
            .iter()
            .map(|row| {
                Event::from_json(&row.body)
                    .map_err(|error| RiskServiceError::Inconsistent(error.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The consortium's hits as each decision recorded them: the log is not asked again.
        let recorded_hits: Vec<Vec<ListHit>> = rows
            .iter()
            .map(|row| recorded_consortium_hits(&row.decision))
            .collect();
        let lists = self
            .store
            .live_list_entries(micros(now))
            .await?
            .iter()
            .map(list_entry)
            .collect::<Result<Vec<_>, _>>()?;
        let mut labels = Vec::new();
        let (mut labelled_fraud, mut labelled_clean) = (0, 0);
        for (status, fraud) in [("rejected", true), ("approved", false)] {
            for case in self.store.cases(status, LABELLED_CASES_MAX).await? {
                if case.kind == "stolen_account" {
                    continue;
                }
                let Some(row) = case
                    .event_sequence
                    .and_then(|sequence| rows.iter().find(|row| row.sequence == sequence))
                else {
                    continue;
                };
                if fraud {
                    labelled_fraud += 1;
                } else {
                    labelled_clean += 1;
                }
                labels.push(Label {
                    event_id: row.event_id.clone(),
                    fraud,
                    attack: fraud.then(|| case.kind.clone()),
                    attack_id: None,
                });
            }
        }
        let stored: Vec<(i64, String, String, i64, String)> = rows
            .into_iter()
            .map(|row| (row.sequence, row.event_id, row.customer, row.at, row.action))
            .collect();
        let replay = tokio::task::spawn_blocking(move || {
            let mut changed = Vec::new();
            let mut changed_from_stored = 0;
            let mut index = 0;
            let report = backtest(
                BacktestInput {
                    candidate,
                    events: &events,
                    list_entries: &lists,
                    labels: Some(&labels),
                    live: Some(live),
                    config: EngineConfig::default(),
                    recorded_hits: &recorded_hits,
                },
                |_, decision| {
                    if let Some((sequence, event_id, customer, at, was)) = stored.get(index) {
                        if decision.action.as_str() != was {
                            changed_from_stored += 1;
                            if changed.len() < CHANGED_DECISIONS_SHOWN {
                                changed.push(ChangedDecision {
                                    sequence: *sequence,
                                    event_id: event_id.clone(),
                                    customer: customer.clone(),
                                    at: *at,
                                    was: was.clone(),
                                    would_be: decision.action.as_str().to_string(),
                                    reasons: decision
                                        .reasons
                                        .iter()
                                        .map(|reason| reason.to_string())
                                        .collect(),
                                });
                            }
                        }
                    }
                    index += 1;
                },
            );
            report.map(|report| (report, changed_from_stored, changed))
        })
        .await
        .map_err(|error| {
            RiskServiceError::Inconsistent(format!("the back-test stopped: {error}"))
        })??;
        let (report, changed_from_stored, changed) = replay;
        Ok(StoredBacktest {
            report,
            live_version,
            labelled_fraud,
            labelled_clean,
            changed_from_stored,
            changed,
        })
    }
}

/// The consortium list hits a stored decision recorded (its `list_hits` of source
/// `consortium`), as the engine was given them; none from a decision that is not JSON.
pub fn recorded_consortium_hits(decision_json: &str) -> Vec<ListHit> {
    let Ok(decision) = serde_json::from_str::<serde_json::Value>(decision_json) else {
        return Vec::new();
    };
    decision["list_hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|hit| hit["source"] == CONSORTIUM_SOURCE)
        .filter_map(|hit| {
            Some(ListHit {
                kind: serde_json::from_value::<ListKind>(hit["kind"].clone()).ok()?,
                field: serde_json::from_value::<EntityField>(hit["field"].clone()).ok()?,
                reason: hit["reason"].as_str()?.to_string(),
                source: CONSORTIUM_SOURCE.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consortium_hits_of_a_stored_decision_are_replayed() {
        let stored = r#"{"action":"reject","list_hits":[
            {"kind":"watch","field":"card","reason":"consortium record 9 by bank-a on the card: fraud, severity 3","source":"consortium"},
            {"kind":"block","field":"device","reason":"stolen phone","source":"manual"}]}"#;
        let hits = recorded_consortium_hits(stored);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].kind, ListKind::Watch);
        assert_eq!(hits[0].field, EntityField::Card);
        assert!(hits[0].reason.contains("record 9"));
        assert!(recorded_consortium_hits("not json").is_empty());
        assert!(recorded_consortium_hits(r#"{"action":"approve"}"#).is_empty());
    }
}
