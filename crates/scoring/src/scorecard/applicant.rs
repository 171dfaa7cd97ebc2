//! An applicant's attribute values, and the result of scoring one: the points each
//! attribute earned and the adverse reasons.

use super::*;

/// A value of one applicant attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Missing,
    Number(f64),
    Text(String),
}

/// An applicant: attribute values by feature name. Attributes the model does not use are
/// ignored; attributes it uses but the applicant lacks are missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applicant {
    values: BTreeMap<String, Value>,
}

impl Applicant {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.values.insert(name.into(), value);
        self
    }

    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.values.insert(name.into(), value);
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// From a JSON object: strings are text, numbers are numbers, null is missing, booleans
    /// are the text `true`/`false`. Nested values are refused.
    pub fn from_json(json: &serde_json::Value) -> Result<Applicant, ScoringError> {
        let object = json.as_object().ok_or_else(|| {
            ScoringError::InvalidApplicant("expected a JSON object of attribute values".into())
        })?;
        let mut applicant = Applicant::new();
        for (name, value) in object {
            let value = match value {
                serde_json::Value::Null => Value::Missing,
                serde_json::Value::Bool(flag) => Value::Text(flag.to_string()),
                serde_json::Value::Number(number) => match number.as_f64() {
                    Some(number) => Value::Number(number),
                    None => Value::Missing,
                },
                serde_json::Value::String(text) => Value::Text(text.clone()),
                _ => {
                    return Err(ScoringError::InvalidApplicant(format!(
                        "attribute {name:?}: expected a string, number or null"
                    )))
                }
            };
            applicant.insert(name.clone(), value);
        }
        Ok(applicant)
    }

    /// From one CSV row: every cell is text.
    pub fn from_record(headers: &[String], cells: &[String]) -> Applicant {
        let mut applicant = Applicant::new();
        for (name, cell) in headers.iter().zip(cells) {
            applicant.insert(name.clone(), Value::Text(cell.clone()));
        }
        applicant
    }
}

/// How an attribute value found its bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// The value fell in one of the trained bins.
    Bin,
    /// The value was missing.
    Missing,
    /// A number was expected and the text does not parse; treated as missing.
    Invalid,
    /// A category not seen in training.
    Unseen,
}

/// The points one attribute earned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    pub feature: String,
    pub bin: String,
    pub points: f64,
    #[serde(rename = "match")]
    pub matched: Match,
}

/// An adverse reason: an attribute whose bin cost points against the best bin of its feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCode {
    /// Stable code: the feature name.
    pub code: String,
    pub bin: String,
    pub points: f64,
    /// Points below the best bin of the same feature.
    pub points_lost: f64,
}

/// The result of scoring one applicant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreResult {
    pub score: f64,
    pub probability_of_default: f64,
    pub attributes: Vec<Attribute>,
    /// Up to [`REASONS_MAX`] adverse reasons, the costliest first.
    pub reasons: Vec<ReasonCode>,
}
