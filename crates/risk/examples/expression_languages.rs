//! Measures CEL (`cel-interpreter`) against GoRules ZEN (`zen-expression`) on the same
//! conditions over the same feature values, to choose the rule language of the risk engine.
//!
//! Run: `cargo run --release -p tally-risk --example expression_languages`

use std::time::Instant;

const FEATURES: &[&str] = &[
    "amount",
    "card_count_10m",
    "device_count_10m",
    "device_customers_30d",
    "address_customers_30d",
    "device_age",
    "since_profile_change",
    "since_activation",
    "travel_speed",
    "customer_sum_1d",
    "blocked",
];

const CONDITIONS: &[&str] = &[
    "card_count_10m >= 5 && amount <= 500",
    "device_count_10m >= 8",
    "device_customers_30d >= 4",
    "address_customers_30d >= 5",
    "device_age < 3600 && since_profile_change < 86400 && amount >= 100000",
    "since_activation >= 0 && since_activation < 86400 && customer_sum_1d >= 500000",
    "travel_speed > 900.0",
    "blocked > 0",
    "customer_sum_1d > 2000000",
    "amount > 5000000",
];

fn values(round: u64) -> [f64; 11] {
    let r = (round % 97) as f64;
    [
        1000.0 + r,
        r % 7.0,
        r % 11.0,
        r % 5.0,
        r % 6.0,
        r * 100.0,
        r * 1000.0,
        -1.0,
        r * 10.0,
        r * 10000.0,
        0.0,
    ]
}

fn cel(iterations: u64) -> f64 {
    use cel_interpreter::{Context, Program, Value};
    let programs: Vec<Program> = CONDITIONS
        .iter()
        .map(|source| Program::compile(source).expect("compiles"))
        .collect();
    let started = Instant::now();
    let mut fired = 0_u64;
    for round in 0..iterations {
        let mut context = Context::default();
        for (name, value) in FEATURES.iter().zip(values(round)) {
            if name.contains("speed") {
                context.add_variable_from_value(*name, Value::Float(value));
            } else {
                context.add_variable_from_value(*name, Value::Int(value as i64));
            }
        }
        for program in &programs {
            if let Ok(Value::Bool(true)) = program.execute(&context) {
                fired += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("cel: {fired} fired");
    elapsed
}

fn zen(iterations: u64) -> f64 {
    use zen_expression::variable::Variable;
    use zen_expression::vm::VM;
    use zen_expression::Isolate;
    let mut isolate = Isolate::new();
    let expressions: Vec<_> = CONDITIONS
        .iter()
        .map(|source| {
            isolate
                .compile_standard(&source.replace("&&", "and"))
                .expect("compiles")
        })
        .collect();
    let mut vm = VM::new();
    let started = Instant::now();
    let mut fired = 0_u64;
    for round in 0..iterations {
        let mut map = serde_json::Map::new();
        for (name, value) in FEATURES.iter().zip(values(round)) {
            map.insert((*name).to_string(), serde_json::json!(value));
        }
        let context: Variable = serde_json::Value::Object(map).into();
        let scope = zen_expression::scope::Scope::new(context);
        for expression in &expressions {
            if let Ok(Variable::Bool(true)) = expression.evaluate_with_scope(&scope, &mut vm) {
                fired += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("zen: {fired} fired");
    elapsed
}

fn main() {
    let iterations = 200_000;
    for run in 0..3 {
        let cel_seconds = cel(iterations);
        let zen_seconds = zen(iterations);
        println!(
            "run {run}: {} conditions x {} features; cel {:.0} decisions/s ({:.2} us each), zen {:.0} decisions/s ({:.2} us each)",
            CONDITIONS.len(),
            FEATURES.len(),
            iterations as f64 / cel_seconds,
            cel_seconds * 1e6 / iterations as f64,
            iterations as f64 / zen_seconds,
            zen_seconds * 1e6 / iterations as f64,
        );
    }
}
