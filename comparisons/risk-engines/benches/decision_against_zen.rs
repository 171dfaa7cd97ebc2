//! Tally's risk engine against GoRules `zen-engine`: the same stateless decision (the
//! default pack's rule conditions over the feature values recorded from generated traffic)
//! through both, in the same run, with the ratio and a rule-by-rule agreement check.
//!
//! Run, from `comparisons/risk-engines`: `cargo bench --bench decision_against_zen`

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark: a panic is the report.

use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tally_risk::bench::{self, BenchConfig};
use tally_risk::{Decision, EngineConfig, FeatureValue, RiskEngine, RuleSet, DEFAULT_RULES};
use zen_engine::model::DecisionContent;

/// zen-engine's evaluation is async but does no I/O here: poll it to completion.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

/// CEL to ZEN for the operators the default pack uses.
fn zen_condition(cel: &str) -> String {
    cel.replace("&&", " and ")
        .replace("||", " or ")
        .replace("!=", "\u{1}")
        .replace('!', " not ")
        .replace('\u{1}', "!=")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // Record the feature values each event saw, then evaluate only the rules on them.
    let config = BenchConfig::default();
    let (events, list_entries) = bench::traffic(&config);
    let rule_set = RuleSet::parse(DEFAULT_RULES).unwrap();
    let names: Vec<String> = rule_set.features.iter().map(|f| f.name.clone()).collect();
    let mut engine = RiskEngine::new(
        RuleSet::parse(DEFAULT_RULES).unwrap(),
        EngineConfig::default(),
    );
    for entry in &list_entries {
        engine.lists_mut().add(entry.clone()).unwrap();
    }
    let sample: Vec<_> = events.iter().take(100_000).collect();
    let mut recorded: Vec<(Vec<FeatureValue>, Decision)> = Vec::with_capacity(sample.len());
    for event in &sample {
        let decision = engine.decide(event).unwrap();
        recorded.push((decision.features.values.clone(), decision));
    }

    // zen-engine graph: input -> expression node (one boolean per rule) -> output.
    let expressions: Vec<Value> = rule_set
        .rules
        .iter()
        .map(|rule| json!({"id": &*rule.id, "key": &*rule.id, "value": zen_condition(&rule.condition)}))
        .collect();
    let graph = json!({
        "nodes": [
            {"id": "input", "name": "input", "type": "inputNode", "content": {}},
            {"id": "rules", "name": "rules", "type": "expressionNode", "content": {"expressions": expressions}},
            {"id": "output", "name": "output", "type": "outputNode", "content": {}}
        ],
        "edges": [
            {"id": "e1", "sourceId": "input", "targetId": "rules"},
            {"id": "e2", "sourceId": "rules", "targetId": "output"}
        ]
    });
    let content: DecisionContent = serde_json::from_value(graph).unwrap();
    let zen = zen_engine::DecisionEngine::default()
        .create_decision(Arc::new(content))
        .unwrap();
    let contexts: Vec<zen_expression::variable::Variable> = sample
        .iter()
        .zip(&recorded)
        .map(|(event, (values, decision))| {
            let mut map = Map::new();
            map.insert("kind".into(), json!(event.kind.as_str()));
            map.insert(
                "profile_field".into(),
                json!(event.profile_field.map_or("", |field| field.as_str())),
            );
            map.insert(
                "amount".into(),
                json!(event.amount.map_or(0, |a| a.minor())),
            );
            map.insert(
                "currency".into(),
                json!(event
                    .amount
                    .map_or(String::new(), |a| a.currency().code().to_string())),
            );
            map.insert("has_device".into(), json!(event.device.is_some()));
            map.insert("has_geo".into(), json!(event.geo.is_some()));
            for (kind, name) in [
                (tally_risk::ListKind::Block, "block_listed"),
                (tally_risk::ListKind::Allow, "allow_listed"),
                (tally_risk::ListKind::Watch, "watch_listed"),
            ] {
                map.insert(
                    name.into(),
                    json!(decision.list_hits.iter().any(|hit| hit.kind == kind)),
                );
            }
            for (name, value) in names.iter().zip(values) {
                let value = match value {
                    FeatureValue::Integer(value) => json!(value),
                    FeatureValue::Float(value) => json!(value),
                };
                map.insert(name.clone(), value);
            }
            Value::Object(map).into()
        })
        .collect();

    // Agreement check: zen-engine fires the same rules as Tally.
    let mut disagreements = 0;
    for ((_, decision), context) in recorded.iter().zip(&contexts).take(20_000) {
        let response = block_on(zen.evaluate(context.clone())).unwrap();
        let result = response.result.to_value();
        for rule in &rule_set.rules {
            let zen_fired = result
                .get(&*rule.id)
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if zen_fired != decision.fired(&rule.id) {
                disagreements += 1;
            }
        }
    }

    let mut tally_rates = Vec::new();
    let mut zen_rates = Vec::new();
    let mut scratch = Decision::empty();
    for _ in 0..5 {
        let started = Instant::now();
        for (event, (values, _)) in sample.iter().zip(&recorded) {
            engine.evaluate(event, values, &mut scratch).unwrap();
        }
        tally_rates.push(sample.len() as f64 / started.elapsed().as_secs_f64());
        let zen_count = 20_000;
        let started = Instant::now();
        for context in contexts.iter().take(zen_count) {
            let response = block_on(zen.evaluate(context.clone())).unwrap();
            std::hint::black_box(response);
        }
        zen_rates.push(zen_count as f64 / started.elapsed().as_secs_f64());
    }
    let tally = median(tally_rates);
    let zen_rate = median(zen_rates);
    println!(
        "stateless decision ({} rules over recorded features), median of 5: tally {:.0}/s, zen-engine {:.0}/s, ratio tally/zen {:.1}x; rule-level disagreements on 20,000 events: {}",
        rule_set.rules.len(),
        tally,
        zen_rate,
        tally / zen_rate,
        disagreements
    );
}
