//! Property test: every windowed feature equals a brute-force oracle computed from the full
//! event list, for random event streams (in order and out of order within the lateness).

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use tally_core::{Amount, Currency};
use tally_risk::{Event, EventKind, FeatureValue, RiskEngine};

const RULES: &str = r#"
name = "oracle"

[[features]]
name = "count_10m"
kind = "count"
key = "customer"
window = "10m"
event_kinds = ["transaction"]

[[features]]
name = "sum_10m"
kind = "sum"
key = "customer"
window = "10m"
event_kinds = ["transaction"]
currency = "CNY"

[[features]]
name = "devices_10m"
kind = "distinct_count"
key = "customer"
of = "device"
window = "10m"

[[features]]
name = "since_last"
kind = "last_seen_age"
key = "customer"
window = "10m"
"#;

#[derive(Debug, Clone)]
struct Step {
    second: i64,
    customer: u8,
    device: u8,
    transaction: bool,
    minor: i64,
}

fn step() -> impl Strategy<Value = Step> {
    (0_i64..60, 0_u8..3, 0_u8..4, any::<bool>(), 1_i64..10_000).prop_map(
        |(gap, customer, device, transaction, minor)| Step {
            second: gap,
            customer,
            device,
            transaction,
            minor,
        },
    )
}

fn event(index: usize, second: i64, step: &Step) -> Event {
    let at = Timestamp::from_second(1_800_000_000 + second).unwrap();
    let kind = if step.transaction {
        EventKind::Transaction
    } else {
        EventKind::Login
    };
    let mut event = Event::new(format!("e{index}"), kind, at, format!("c{}", step.customer));
    event.device = Some(format!("d{}", step.device));
    if step.transaction {
        event.amount = Some(Amount::new(step.minor, Currency::CNY));
    }
    event
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn features_match_a_brute_force_oracle(steps in proptest::collection::vec(step(), 1..120), shuffle in any::<u64>()) {
        // Times advance by the random gaps; then a few neighbours swap (late events, well
        // within the ten-minute lateness the engine keeps).
        let mut second = 0;
        let mut events: Vec<Event> = steps.iter().enumerate().map(|(index, step)| {
            second += step.second;
            event(index, second, step)
        }).collect();
        let mut random = tally_core::SplitMix64::new(shuffle);
        for index in 1..events.len() {
            if random.below(4) == 0 {
                events.swap(index - 1, index);
            }
        }
        let mut engine = RiskEngine::from_rule_set_text(RULES).unwrap();
        let window = SignedDuration::from_secs(600);
        for (position, current) in events.iter().enumerate() {
            let decision = engine.decide(current).unwrap();
            // The oracle sees the events decided so far (this one included) of the same key.
            let seen: Vec<&Event> = events[..=position]
                .iter()
                .filter(|other| other.customer == current.customer)
                .collect();
            let in_window = |other: &&&Event| other.at > current.at - window && other.at <= current.at;
            let transactions: Vec<&&Event> = seen
                .iter()
                .filter(|other| other.kind == EventKind::Transaction)
                .filter(in_window)
                .collect();
            let count = transactions.len() as i64;
            let sum: i64 = transactions.iter().map(|other| other.amount.unwrap().minor()).sum();
            let mut devices: Vec<&str> = seen
                .iter()
                .filter(in_window)
                .map(|other| other.device.as_deref().unwrap())
                .collect();
            devices.sort_unstable();
            devices.dedup();
            prop_assert_eq!(decision.features.get("count_10m"), Some(FeatureValue::Integer(count)));
            prop_assert_eq!(decision.features.get("sum_10m"), Some(FeatureValue::Integer(sum)));
            // Distinct counts are exact for events in time order; a late event may also
            // see values whose only sightings are later than itself.
            let in_order = events[..position].iter().all(|other| other.at <= current.at);
            if in_order {
                prop_assert_eq!(
                    decision.features.get("devices_10m"),
                    Some(FeatureValue::Integer(devices.len() as i64))
                );
                let previous = seen[..seen.len() - 1]
                    .iter()
                    .map(|other| other.at)
                    .filter(|at| *at > current.at - window)
                    .max();
                let expected = previous.map_or(-1, |at| (current.at - at).get_seconds());
                prop_assert_eq!(decision.features.get("since_last"), Some(FeatureValue::Integer(expected)));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    /// Whatever text a condition holds, loading refuses or accepts it and never panics
    /// through (the CEL parser's own panics are caught and reported as refusals).
    #[test]
    fn any_condition_text_is_accepted_or_refused(condition in "[a-z_ 0-9()<>=!&|'.,+*/-]{0,40}") {
        let text = format!(
            "{RULES}\n[[rules]]\nid = \"fuzz\"\ncondition = '''{condition}'''\naction = \"review\"\nreason = \"FUZZ\"\n"
        );
        if let Err(error) = tally_risk::RuleSet::parse(&text) {
            prop_assert!(!error.to_string().is_empty());
        }
    }
}
