//! The simulated world, drawn from the seed before anything runs: applicants with their
//! scorecard attributes and behaviour, the calendar, and the size of each story. Everything
//! random in the demo comes from here, so one seed always tells the same story.

use jiff::civil::Date;
use jiff::ToSpan;
use serde_json::{Map, Value};
use tally_core::SplitMix64;

/// The first business day of every demo: fixed, so that the same seed gives the same
/// calendar (statement dates, days past due) whatever day the demo runs.
pub const FIRST_DAY: Date = jiff::civil::date(2026, 5, 1);

/// How big a business to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub applicants: usize,
    pub months: i32,
    /// Attacks of each kind (card testing, shared address, bust-out).
    pub attacks_per_kind: usize,
    /// Accounts taken over by a thief, each ending in a confirmed stolen-account claim.
    pub takeovers: usize,
    /// Combined-checkout payments (wallet and credit line).
    pub payments: usize,
}

impl Size {
    pub fn named(name: &str) -> Option<Size> {
        match name {
            "small" => Some(Size {
                applicants: 60,
                months: 3,
                attacks_per_kind: 1,
                takeovers: 1,
                payments: 10,
            }),
            "default" => Some(Size {
                applicants: 400,
                months: 6,
                attacks_per_kind: 3,
                takeovers: 2,
                payments: 60,
            }),
            "large" => Some(Size {
                applicants: 3000,
                months: 12,
                attacks_per_kind: 10,
                takeovers: 5,
                payments: 300,
            }),
            _ => None,
        }
    }

    /// The last simulated business day.
    pub fn last_day(&self) -> Result<Date, jiff::Error> {
        FIRST_DAY.checked_add(self.months.months())?.yesterday()
    }
}

/// How a customer treats its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Repays the whole billed balance the day after each statement.
    PaysInFull,
    /// Repays the minimum the day after each statement: the rest revolves.
    PaysMinimum,
    /// Buys in its first days and never repays: it goes through the delinquency buckets.
    NeverPays,
}

/// One applicant as the simulation drew it.
#[derive(Debug, Clone)]
pub struct Applicant {
    pub index: usize,
    pub name: String,
    pub phone: String,
    pub national_id: String,
    pub attributes: Value,
    /// Monthly income and debt payments in fen.
    pub monthly_income: i64,
    pub monthly_debt_payments: i64,
    pub statement_day: i8,
    pub due_days: i32,
    /// Days after [`FIRST_DAY`] the application comes in.
    pub applies_on_day: i64,
    pub behaviour: Behaviour,
    /// Chance in a thousand of a purchase on any day.
    pub purchases_per_thousand_days: u64,
}

const SURNAMES: [&str; 16] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN_NAMES: [&str; 16] = [
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛",
];
/// Area codes of the national id (Beijing, Shanghai, Guangzhou, Shenzhen, Chengdu, Hangzhou).
const AREAS: [&str; 6] = ["110101", "310101", "440103", "440303", "510104", "330102"];
const NATIONAL_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const NATIONAL_ID_CHECKS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// A PRC resident identity number with a valid check character.
pub fn national_id(random: &mut SplitMix64, birth: Date) -> String {
    let area = AREAS[random.index_below(AREAS.len())];
    let sequence = random.range(100, 999);
    let body = format!(
        "{area}{:04}{:02}{:02}{sequence:03}",
        birth.year(),
        birth.month(),
        birth.day()
    );
    let sum: u32 = body
        .chars()
        .filter_map(|character| character.to_digit(10))
        .zip(NATIONAL_ID_WEIGHTS)
        .map(|(digit, weight)| digit * weight)
        .sum();
    let check = NATIONAL_ID_CHECKS[(sum % 11) as usize];
    format!("{body}{check}")
}

/// A Chinese mobile number unique to `index` within the demo (`tag` keeps groups apart).
pub fn phone(tag: u32, index: usize) -> String {
    format!("+86 13{tag}{index:08}")
}

/// The scorecard's attributes, each drawn from the model's own bins in proportion to the
/// training rows that fell in them: a population like the one the scorecard was fitted on.
fn attributes(random: &mut SplitMix64, scorecard: &Value, age: i16) -> Map<String, Value> {
    let mut attributes = Map::new();
    let features = scorecard["features"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for feature in &features {
        let Some(name) = feature["name"].as_str() else {
            continue;
        };
        if name == "age_in_years" {
            attributes.insert(name.into(), Value::from(age));
            continue;
        }
        let bins = feature["bins"].as_array().cloned().unwrap_or_default();
        let weights: Vec<u64> = bins
            .iter()
            .map(|bin| bin["good"].as_u64().unwrap_or(0) + bin["bad"].as_u64().unwrap_or(0))
            .collect();
        let total: u64 = weights.iter().sum();
        if total == 0 {
            continue;
        }
        let mut pick = random.below(total);
        let mut chosen = &bins[0];
        for (bin, weight) in bins.iter().zip(&weights) {
            if pick < *weight {
                chosen = bin;
                break;
            }
            pick -= weight;
        }
        let value = match chosen["categories"].as_array() {
            Some(categories) if !categories.is_empty() => {
                categories[random.index_below(categories.len())].clone()
            }
            _ => {
                // A numeric bin `[lower, upper)`: a whole number inside it.
                let lower = chosen["lower"]
                    .as_f64()
                    .map_or(0, |lower| lower.ceil() as i64);
                let upper = chosen["upper"]
                    .as_f64()
                    .map_or(lower + 24, |upper| upper.ceil() as i64 - 1);
                Value::from(random.range(lower, upper.max(lower)))
            }
        };
        attributes.insert(name.into(), value);
    }
    attributes
}

/// Draws `size.applicants` applicants from `seed`.
pub fn applicants(seed: u64, size: &Size, scorecard: &Value) -> anyhow::Result<Vec<Applicant>> {
    let mut random = SplitMix64::new(seed);
    let mut drawn = Vec::with_capacity(size.applicants);
    for index in 0..size.applicants {
        let age = i16::try_from(random.range(20, 66))?;
        let birth = FIRST_DAY
            .checked_sub(i32::from(age).years())?
            .checked_sub(random.range(1, 360).days())?;
        let name = format!(
            "{}{}",
            SURNAMES[random.index_below(SURNAMES.len())],
            GIVEN_NAMES[random.index_below(GIVEN_NAMES.len())]
        );
        let national_id = national_id(&mut random, birth);
        let attributes = attributes(&mut random, scorecard, age);
        let behaviour = match random.below(100) {
            0..=74 => Behaviour::PaysInFull,
            75..=89 => Behaviour::PaysMinimum,
            _ => Behaviour::NeverPays,
        };
        drawn.push(Applicant {
            index,
            name,
            phone: phone(8, index),
            national_id,
            attributes: Value::Object(attributes),
            monthly_income: random.range(6_000, 40_000) * 100,
            monthly_debt_payments: random.range(0, 3_000) * 100,
            statement_day: i8::try_from(random.range(1, 28))?,
            due_days: 20,
            // Applications come in over the first month.
            applies_on_day: random.range(0, 29),
            behaviour,
            purchases_per_thousand_days: u64::try_from(random.range(20, 60))?,
        });
    }
    Ok(drawn)
}
