//! Rule sets: the TOML file, its validation, and conditions compiled once into CEL programs.
//!
//! A rule set declares its velocity features and its rules. Each rule has an id, a
//! description, a condition in CEL (the Common Expression Language, cel.dev), a score
//! contribution, an action, a reason code and a mode (enforce or shadow). Score thresholds
//! can add an action when the enforced scores add up. A rule set that does not compile is
//! refused with the rule id, the line in the file and the message.

use crate::decision::Action;
use crate::error::RiskError;
use crate::event::{EntityField, EventKind, ProfileField};
use crate::feature::{FeatureKind, FeatureSpec, WINDOW_MAX_MS};
use cel_interpreter::{Context, Program, Value};
use serde::Deserialize;
use std::sync::Arc;
use tally_core::Currency;
use toml::Spanned;

/// Rules in one set, at most.
pub const RULES_MAX: usize = 1000;
/// Features in one set, at most.
pub const FEATURES_MAX: usize = 256;
/// Characters in one condition, at most.
pub const CONDITION_LENGTH_MAX: usize = 4096;

/// The variables every condition can read besides the rule set's features.
pub const EVENT_VARIABLES: &[(&str, &str)] = &[
    ("kind", "event kind: \"login\", \"credit_activation\", \"transaction\", \"profile_change\", \"payout\""),
    ("profile_field", "for profile_change: \"password\", \"phone\", \"address\", \"bank_card\"; otherwise \"\""),
    ("amount", "amount in integer minor units (fen, cents); 0 when the event has none"),
    ("currency", "ISO 4217 code of the amount; \"\" when the event has none"),
    ("has_device", "whether the event carries a device id"),
    ("has_geo", "whether the event carries a geo point"),
    ("block_listed", "an entity of the event is on the block list"),
    ("allow_listed", "an entity of the event is on the allow list"),
    ("watch_listed", "an entity of the event is on the watch list"),
    ("consortium_listed", "an entity of the event has a live record in the consortium log (a list hit whose source is \"consortium\", found by the caller)"),
];

/// Whether a rule decides or is only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleMode {
    Enforce,
    Shadow,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: Arc<str>,
    pub description: String,
    pub condition: String,
    pub score: i64,
    pub action: Action,
    pub reason: Arc<str>,
    pub mode: RuleMode,
    /// Line of the rule's condition in the rule set file.
    pub line: usize,
    /// Bit set of the event kinds the rule applies to (all when the file names none).
    pub(crate) event_kinds_mask: u8,
    pub(crate) program: Program,
}

/// An action added when the enforced scores of the fired rules reach `score_at_least`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub score_at_least: i64,
    pub action: Action,
    pub reason: Arc<str>,
}

/// A validated, compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    pub name: String,
    pub description: String,
    pub features: Vec<FeatureSpec>,
    pub rules: Vec<Rule>,
    /// Sorted by `score_at_least`, highest first.
    pub thresholds: Vec<Threshold>,
    /// The file the set was loaded from, kept so that a store can save and list it.
    pub source: String,
    pub(crate) feature_names: Arc<[Arc<str>]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSetFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    features: Vec<Spanned<FeatureFile>>,
    #[serde(default)]
    rules: Vec<Spanned<RuleFile>>,
    #[serde(default)]
    thresholds: Vec<ThresholdFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureFile {
    name: String,
    kind: String,
    key: String,
    #[serde(default)]
    of: Option<String>,
    window: String,
    #[serde(default)]
    event_kinds: Vec<String>,
    #[serde(default)]
    profile_fields: Vec<String>,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    #[serde(default)]
    description: String,
    condition: Spanned<String>,
    #[serde(default)]
    score: i64,
    #[serde(default = "approve")]
    action: String,
    reason: String,
    #[serde(default = "enforce")]
    mode: String,
    #[serde(default)]
    event_kinds: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdFile {
    score_at_least: i64,
    action: String,
    reason: String,
}

fn approve() -> String {
    "approve".to_string()
}

fn enforce() -> String {
    "enforce".to_string()
}

/// Compiles a CEL condition. The CEL parser (antlr4rust under cel-parser 0.10) panics on
/// some malformed input instead of returning an error; a panic here is turned into a parse
/// error so that a bad upload can never take the server down.
fn compile_condition(condition: &str) -> Result<Program, (usize, String)> {
    let compiled = std::panic::catch_unwind(|| Program::compile(condition));
    match compiled {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(errors)) => {
            let first = errors.errors.first();
            // The parser counts lines inside the condition from 1.
            let inner_line = first.map_or(1, |error| error.pos.0.max(1) as usize);
            let message = first.map_or_else(|| errors.to_string(), |error| error.msg.clone());
            Err((inner_line, message))
        }
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the parser gave up".to_string());
            Err((1, format!("syntax error (the CEL parser failed: {detail})")))
        }
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len())).map_or(1, |prefix| {
        prefix.bytes().filter(|byte| *byte == b'\n').count() + 1
    })
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

/// Parses "90s", "10m", "1h", "30d" into milliseconds.
pub fn parse_window(text: &str) -> Option<i64> {
    let unit_ms = match text.chars().last()? {
        's' => 1000,
        'm' => 60 * 1000,
        'h' => 3600 * 1000,
        'd' => 24 * 3600 * 1000,
        _ => return None,
    };
    let number: i64 = text.get(..text.len() - 1)?.parse().ok()?;
    number.checked_mul(unit_ms)
}

fn kinds_mask(names: &[String], line: usize) -> Result<(Vec<EventKind>, u8), RiskError> {
    let mut kinds = Vec::new();
    let mut mask = 0_u8;
    for name in names {
        let kind = EventKind::parse(name).ok_or_else(|| RiskError::InvalidRuleSet {
            line,
            message: format!("unknown event kind {name:?}"),
        })?;
        kinds.push(kind);
        mask |= kind.bit();
    }
    if mask == 0 {
        mask = u8::MAX;
    }
    Ok((kinds, mask))
}

impl RuleSet {
    /// Parses, validates and compiles a rule set file.
    pub fn parse(text: &str) -> Result<RuleSet, RiskError> {
        let file: RuleSetFile =
            toml::from_str(text).map_err(|error| RiskError::InvalidRuleSet {
                line: error.span().map_or(1, |span| line_of(text, span.start)),
                message: error.message().to_string(),
            })?;
        if file.rules.len() > RULES_MAX || file.features.len() > FEATURES_MAX {
            return Err(RiskError::InvalidRuleSet {
                line: 1,
                message: format!("at most {RULES_MAX} rules and {FEATURES_MAX} features"),
            });
        }
        let mut features = Vec::with_capacity(file.features.len());
        for spanned in &file.features {
            let line = line_of(text, spanned.span().start);
            features.push(feature_spec(spanned.get_ref(), line, &features)?);
        }
        let feature_names: Arc<[Arc<str>]> = features
            .iter()
            .map(|feature: &FeatureSpec| Arc::from(feature.name.as_str()))
            .collect();
        let mut context = trial_context(&features);
        let mut rules: Vec<Rule> = Vec::with_capacity(file.rules.len());
        for spanned in file.rules {
            let rule_line = line_of(text, spanned.span().start);
            let rule = spanned.into_inner();
            let line = line_of(text, rule.condition.span().start);
            let refuse = |message: String| RiskError::RuleDoesNotCompile {
                rule_id: rule.id.clone(),
                line,
                message,
            };
            if rule.id.is_empty() || rules.iter().any(|existing| *existing.id == *rule.id) {
                return Err(RiskError::InvalidRuleSet {
                    line: rule_line,
                    message: format!("rule id {:?} is empty or used twice", rule.id),
                });
            }
            let condition = rule.condition.get_ref().clone();
            if condition.len() > CONDITION_LENGTH_MAX {
                return Err(refuse(format!(
                    "the condition is longer than {CONDITION_LENGTH_MAX} characters"
                )));
            }
            let program = compile_condition(&condition).map_err(|(inner_line, message)| {
                RiskError::RuleDoesNotCompile {
                    rule_id: rule.id.clone(),
                    line: line + inner_line - 1,
                    message,
                }
            })?;
            let references = program.references();
            for variable in references.variables() {
                let known = EVENT_VARIABLES.iter().any(|(name, _)| *name == variable)
                    || features.iter().any(|feature| feature.name == variable);
                if !known {
                    return Err(refuse(format!(
                        "unknown variable {variable:?}: not a feature of this rule set nor an event variable"
                    )));
                }
            }
            for kind in ["transaction", "login"] {
                set_text(&mut context, "kind", kind);
                match program.execute(&context) {
                    Ok(Value::Bool(_)) => {}
                    Ok(other) => {
                        return Err(refuse(format!(
                            "the condition must be a boolean, it gave {other:?}"
                        )))
                    }
                    Err(error) => {
                        return Err(refuse(format!(
                            "the condition fails on a sample event: {error}"
                        )))
                    }
                }
            }
            let action = Action::parse(&rule.action)
                .ok_or_else(|| refuse(format!("unknown action {:?}", rule.action)))?;
            let mode = match rule.mode.as_str() {
                "enforce" => RuleMode::Enforce,
                "shadow" => RuleMode::Shadow,
                other => return Err(refuse(format!("unknown mode {other:?}: enforce or shadow"))),
            };
            if rule.reason.is_empty() {
                return Err(refuse("the reason code must not be empty".to_string()));
            }
            let (_, event_kinds_mask) = kinds_mask(&rule.event_kinds, rule_line)?;
            rules.push(Rule {
                id: Arc::from(rule.id.as_str()),
                description: rule.description,
                condition,
                score: rule.score,
                action,
                reason: Arc::from(rule.reason.as_str()),
                mode,
                line,
                event_kinds_mask,
                program,
            });
        }
        let mut thresholds = Vec::with_capacity(file.thresholds.len());
        for threshold in file.thresholds {
            let action =
                Action::parse(&threshold.action).ok_or_else(|| RiskError::InvalidRuleSet {
                    line: 1,
                    message: format!("unknown threshold action {:?}", threshold.action),
                })?;
            thresholds.push(Threshold {
                score_at_least: threshold.score_at_least,
                action,
                reason: Arc::from(threshold.reason.as_str()),
            });
        }
        thresholds.sort_by_key(|threshold| std::cmp::Reverse(threshold.score_at_least));
        Ok(RuleSet {
            name: file.name,
            description: file.description,
            features,
            rules,
            thresholds,
            source: text.to_string(),
            feature_names,
        })
    }

    pub fn feature_names(&self) -> &[Arc<str>] {
        &self.feature_names
    }
}

fn feature_spec(
    file: &FeatureFile,
    line: usize,
    earlier: &[FeatureSpec],
) -> Result<FeatureSpec, RiskError> {
    let refuse = |message: String| RiskError::InvalidRuleSet {
        line,
        message: format!("feature {:?}: {message}", file.name),
    };
    if !is_identifier(&file.name) {
        return Err(refuse("the name must be lower_snake_case".to_string()));
    }
    if EVENT_VARIABLES.iter().any(|(name, _)| *name == file.name)
        || earlier.iter().any(|feature| feature.name == file.name)
    {
        return Err(refuse(
            "the name is used twice or is an event variable".to_string(),
        ));
    }
    let kind = FeatureKind::parse(&file.kind).ok_or_else(|| {
        refuse(format!(
            "unknown kind {:?}: count, sum, distinct_count, first_seen_age, last_seen_age, travel_distance, travel_speed",
            file.kind
        ))
    })?;
    let key = EntityField::parse(&file.key)
        .ok_or_else(|| refuse(format!("unknown key field {:?}", file.key)))?;
    let of = match &file.of {
        None => None,
        Some(text) => Some(
            EntityField::parse(text).ok_or_else(|| refuse(format!("unknown field {text:?}")))?,
        ),
    };
    match (kind, of) {
        (FeatureKind::DistinctCount, None) => {
            return Err(refuse("distinct_count needs `of`".to_string()))
        }
        (
            FeatureKind::Count
            | FeatureKind::Sum
            | FeatureKind::TravelDistance
            | FeatureKind::TravelSpeed,
            Some(_),
        ) => return Err(refuse(format!("{} takes no `of`", kind.as_str()))),
        _ => {}
    }
    let window_ms = parse_window(&file.window)
        .filter(|window| (1000..=WINDOW_MAX_MS).contains(window))
        .ok_or_else(|| {
            refuse(format!(
                "window {:?} must be like 90s, 10m, 1h or 30d, from 1s to 90d",
                file.window
            ))
        })?;
    let (event_kinds, _) = kinds_mask(&file.event_kinds, line)?;
    let mut profile_fields = Vec::new();
    for name in &file.profile_fields {
        profile_fields.push(
            ProfileField::parse(name)
                .ok_or_else(|| refuse(format!("unknown profile field {name:?}")))?,
        );
    }
    let currency = match (&file.currency, kind) {
        (Some(code), FeatureKind::Sum) => Some(
            code.parse::<Currency>()
                .map_err(|error| refuse(error.to_string()))?,
        ),
        (None, FeatureKind::Sum) => return Err(refuse("sum needs a currency".to_string())),
        (Some(_), _) => return Err(refuse("only sum takes a currency".to_string())),
        (None, _) => None,
    };
    Ok(FeatureSpec {
        name: file.name.clone(),
        kind,
        key,
        of,
        window_ms,
        event_kinds,
        profile_fields,
        currency,
    })
}

/// The context in which conditions are tried at load time: every variable present with a
/// neutral value, so that type errors and unknown functions surface before activation.
fn trial_context(features: &[FeatureSpec]) -> Context<'static> {
    let mut context = Context::default();
    declare_variables(&mut context, features);
    context
}

/// Declares every variable a condition can read, with neutral values.
pub(crate) fn declare_variables(context: &mut Context<'static>, features: &[FeatureSpec]) {
    if let Context::Root { variables, .. } = context {
        variables.clear();
    }
    context.add_variable_from_value("kind", Value::String(Arc::new(String::new())));
    context.add_variable_from_value("profile_field", Value::String(Arc::new(String::new())));
    context.add_variable_from_value("currency", Value::String(Arc::new(String::new())));
    context.add_variable_from_value("amount", Value::Int(0));
    for name in [
        "has_device",
        "has_geo",
        "block_listed",
        "allow_listed",
        "watch_listed",
        "consortium_listed",
    ] {
        context.add_variable_from_value(name, Value::Bool(false));
    }
    for feature in features {
        let value = match feature.kind {
            FeatureKind::TravelDistance | FeatureKind::TravelSpeed => Value::Float(0.0),
            _ => Value::Int(0),
        };
        context.add_variable_from_value(feature.name.as_str(), value);
    }
}

fn set_text(context: &mut Context<'static>, name: &str, text: &str) {
    context.add_variable_from_value(name, Value::String(Arc::new(text.to_string())));
}
