//! Measures CEL (`cel-interpreter`) against GoRules ZEN (`zen-expression`) on the same
//! conditions (the default pack's) over the same feature values (recorded from generated
//! traffic), to choose the rule language of the risk engine. Each language is measured
//! naively (a fresh context per decision) and with its context reused in place.
//!
//! Run, from `comparisons/risk-engines`: `cargo bench --bench expression_languages`

#![allow(clippy::unwrap_used, clippy::expect_used)] // A measurement: a panic is the report.

use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Instant;
use tally_risk::scenario::{generate, ScenarioConfig};
use tally_risk::{
    Decision, EngineConfig, Event, FeatureValue, ListKind, RiskEngine, RuleSet, DEFAULT_RULES,
};

/// One decision's inputs: every variable a condition can read, by name.
struct Inputs {
    texts: Vec<(&'static str, String)>,
    booleans: Vec<(&'static str, bool)>,
    numbers: Vec<(String, FeatureValue)>,
}

fn inputs(event: &Event, decision: &Decision) -> Inputs {
    let listed = |kind| decision.list_hits.iter().any(|hit| hit.kind == kind);
    let mut numbers: Vec<(String, FeatureValue)> = decision
        .features
        .iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    numbers.push((
        "amount".into(),
        FeatureValue::Integer(event.amount.map_or(0, |a| a.minor())),
    ));
    Inputs {
        texts: vec![
            ("kind", event.kind.as_str().to_string()),
            (
                "profile_field",
                event.profile_field.map_or("", |f| f.as_str()).to_string(),
            ),
            (
                "currency",
                event
                    .amount
                    .map_or(String::new(), |a| a.currency().code().to_string()),
            ),
        ],
        booleans: vec![
            ("has_device", event.device.is_some()),
            ("has_geo", event.geo.is_some()),
            ("block_listed", listed(ListKind::Block)),
            ("allow_listed", listed(ListKind::Allow)),
            ("watch_listed", listed(ListKind::Watch)),
        ],
        numbers,
    }
}

fn zen_condition(cel: &str) -> String {
    cel.replace("&&", " and ")
        .replace("||", " or ")
        .replace("!=", "\u{1}")
        .replace('!', " not ")
        .replace('\u{1}', "!=")
}

fn cel_value(value: FeatureValue) -> cel_interpreter::Value {
    match value {
        FeatureValue::Integer(value) => cel_interpreter::Value::Int(value),
        FeatureValue::Float(value) => cel_interpreter::Value::Float(value),
    }
}

fn zen_number(value: FeatureValue) -> zen_expression::variable::Variable {
    let number = match value {
        FeatureValue::Integer(value) => Decimal::from(value),
        FeatureValue::Float(value) => Decimal::from_f64_retain(value).unwrap_or_default(),
    };
    zen_expression::variable::Variable::Number(number)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let scenario = generate(&ScenarioConfig {
        customers: 5000,
        days: 7,
        attacks_per_kind: 20,
        seed: 3,
        ..ScenarioConfig::default()
    });
    let rule_set = RuleSet::parse(DEFAULT_RULES).unwrap();
    let mut engine = RiskEngine::new(
        RuleSet::parse(DEFAULT_RULES).unwrap(),
        EngineConfig::default(),
    );
    for entry in &scenario.list_entries {
        engine.lists_mut().add(entry.clone()).unwrap();
    }
    let sample: Vec<(Event, Decision)> = scenario
        .events
        .iter()
        .take(50_000)
        .map(|event| (event.clone(), engine.decide(event).unwrap()))
        .collect();
    let all_inputs: Vec<Inputs> = sample
        .iter()
        .map(|(event, decision)| inputs(event, decision))
        .collect();
    let conditions: Vec<&str> = rule_set
        .rules
        .iter()
        .map(|rule| rule.condition.as_str())
        .collect();
    let expected: usize = sample
        .iter()
        .map(|(_, decision)| decision.fired_rules.len())
        .sum();
    println!(
        "{} events, {} conditions, {} variables; {} rules fired live",
        sample.len(),
        conditions.len(),
        all_inputs[0].numbers.len() + 8,
        expected
    );

    let cel_programs: Vec<cel_interpreter::Program> = conditions
        .iter()
        .map(|c| cel_interpreter::Program::compile(c).unwrap())
        .collect();
    let mut zen_isolate = zen_expression::Isolate::new();
    let zen_programs: Vec<_> = conditions
        .iter()
        .map(|c| zen_isolate.compile_standard(&zen_condition(c)).unwrap())
        .collect();

    let mut results: Vec<(&str, Vec<f64>)> = vec![
        ("cel fresh context", vec![]),
        ("cel reused context (the engine)", vec![]),
        ("zen fresh context", vec![]),
        ("zen reused context", vec![]),
    ];
    for _ in 0..5 {
        // CEL, a fresh context with the standard functions per decision.
        let started = Instant::now();
        let mut fired = 0;
        for inputs in &all_inputs {
            let mut context = cel_interpreter::Context::default();
            for (name, text) in &inputs.texts {
                context.add_variable_from_value(
                    *name,
                    cel_interpreter::Value::String(Arc::new(text.clone())),
                );
            }
            for (name, value) in &inputs.booleans {
                context.add_variable_from_value(*name, cel_interpreter::Value::Bool(*value));
            }
            for (name, value) in &inputs.numbers {
                context.add_variable_from_value(name.as_str(), cel_value(*value));
            }
            for program in &cel_programs {
                fired += usize::from(matches!(
                    program.execute(&context),
                    Ok(cel_interpreter::Value::Bool(true))
                ));
            }
        }
        results[0]
            .1
            .push(all_inputs.len() as f64 / started.elapsed().as_secs_f64());
        assert_eq!(fired, expected);

        // CEL as the engine runs it: one context, values overwritten in place.
        let started = Instant::now();
        let mut scratch = Decision::empty();
        for (event, decision) in &sample {
            engine
                .evaluate(event, &decision.features.values, &mut scratch)
                .unwrap();
        }
        results[1]
            .1
            .push(sample.len() as f64 / started.elapsed().as_secs_f64());

        // ZEN, a fresh object per decision, compiled bytecode, one VM.
        let mut vm = zen_expression::vm::VM::new();
        let started = Instant::now();
        let mut fired = 0;
        for inputs in &all_inputs {
            let context = zen_expression::variable::Variable::empty_object();
            for (name, text) in &inputs.texts {
                context.dot_insert(
                    name,
                    zen_expression::variable::Variable::String(text.as_str().into()),
                );
            }
            for (name, value) in &inputs.booleans {
                context.dot_insert(name, zen_expression::variable::Variable::Bool(*value));
            }
            for (name, value) in &inputs.numbers {
                context.dot_insert(name, zen_number(*value));
            }
            let scope = zen_expression::scope::Scope::new(context);
            for program in &zen_programs {
                fired += usize::from(matches!(
                    program.evaluate_with_scope(&scope, &mut vm),
                    Ok(zen_expression::variable::Variable::Bool(true))
                ));
            }
        }
        results[2]
            .1
            .push(all_inputs.len() as f64 / started.elapsed().as_secs_f64());
        assert_eq!(fired, expected);

        // ZEN with one object whose values are overwritten in place.
        let context = zen_expression::variable::Variable::empty_object();
        for (name, text) in &all_inputs[0].texts {
            context.dot_insert(
                name,
                zen_expression::variable::Variable::String(text.as_str().into()),
            );
        }
        for (name, value) in &all_inputs[0].booleans {
            context.dot_insert(name, zen_expression::variable::Variable::Bool(*value));
        }
        for (name, value) in &all_inputs[0].numbers {
            context.dot_insert(name, zen_number(*value));
        }
        let object = context.as_object().unwrap();
        let keys: Vec<_> = {
            let map = object.borrow();
            let names = all_inputs[0]
                .texts
                .iter()
                .map(|(name, _)| name.to_string())
                .chain(
                    all_inputs[0]
                        .booleans
                        .iter()
                        .map(|(name, _)| name.to_string()),
                )
                .chain(all_inputs[0].numbers.iter().map(|(name, _)| name.clone()));
            names
                .map(|name| {
                    map.keys()
                        .find(|key| key.as_str() == name)
                        .cloned()
                        .unwrap()
                })
                .collect()
        };
        let scope = zen_expression::scope::Scope::new(context.clone());
        let started = Instant::now();
        let mut fired = 0;
        for inputs in &all_inputs {
            {
                let mut map = object.borrow_mut();
                let mut key = keys.iter();
                for (_, text) in &inputs.texts {
                    *map.get_mut(key.next().unwrap()).unwrap() =
                        zen_expression::variable::Variable::String(text.as_str().into());
                }
                for (_, value) in &inputs.booleans {
                    *map.get_mut(key.next().unwrap()).unwrap() =
                        zen_expression::variable::Variable::Bool(*value);
                }
                for (_, value) in &inputs.numbers {
                    *map.get_mut(key.next().unwrap()).unwrap() = zen_number(*value);
                }
            }
            for program in &zen_programs {
                fired += usize::from(matches!(
                    program.evaluate_with_scope(&scope, &mut vm),
                    Ok(zen_expression::variable::Variable::Bool(true))
                ));
            }
        }
        results[3]
            .1
            .push(all_inputs.len() as f64 / started.elapsed().as_secs_f64());
        assert_eq!(fired, expected);
    }
    for (name, rates) in results {
        let rate = median(rates);
        println!(
            "{name:34} {rate:>10.0} decisions/s  {:>6.2} us per decision (median of 5)",
            1e6 / rate
        );
    }
}
