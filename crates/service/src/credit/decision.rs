//! The credit service of `tally serve`: the store's credit operations, the product catalog,
//! the account rules, and the credit decision at opening (the scorecard, its score-band
//! policy and the rule table), loaded from files named in the configuration or the defaults
//! Tally ships.
//!
//! # The decision at opening
//!
//! 1. The scorecard scores the application's attributes (missing ones go to their stated
//!    bin): score, probability of default and the adverse reasons that cost most points.
//! 2. The score-band policy gives decline or approve, a limit and a pricing tier.
//! 3. The rule table (`tally_credit::CreditPolicy`) checks what a score does not: age (from
//!    the date of birth in the national id), income, debt-to-income, the risk block list;
//!    with the score it also gives an income-based limit.
//! 4. Approved only if both approve; the limit is the lower of the two; the tier is the
//!    band's. A decline lists every reason: the rule table's codes, `score_band_declined`,
//!    and the scorecard's adverse reasons for the notice the applicant is owed.

use crate::credit::operations::CreditOperations;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::path::Path;
use tally_core::Amount;
use tally_credit::{AccountPolicy, Applicant, Catalog, CreditPolicy, Decision as RuleDecision};
use tally_scoring::{Model, Outcome, Policy as ScorePolicy};

/// The scorecard Tally ships (trained on the German credit data; see models/README.md).
pub const DEFAULT_SCORECARD: &str = include_str!("../../../../models/default-scorecard.json");
/// The score-band policy Tally ships.
pub const DEFAULT_SCORE_POLICY: &str = include_str!("../../../../models/default-policy.toml");

/// Files that replace the shipped defaults (all optional).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreditFiles {
    /// Product catalog (`[[product]]` tables).
    pub catalog: Option<String>,
    /// Account rules (`tally_credit::AccountPolicy`: minimum payment, rates, buckets, ...).
    pub account_policy: Option<String>,
    /// Scorecard model JSON (`tally score train`).
    pub scorecard: Option<String>,
    /// Score bands to decision, limit and tier.
    pub score_policy: Option<String>,
    /// The rule table of the decision (age, income, debt-to-income).
    pub decision_rules: Option<String>,
    /// Why the law of the lender's market allows age in the decision beyond legal capacity
    /// (a scorecard feature, an upper age limit in the rule table). Absent (the default), the
    /// age of an applicant is read only to check `age_min`, the age of legal capacity: a
    /// scorecard scoring age and a rule table with `age_max` are refused at start.
    pub age_allowed_because: Option<String>,
    /// IANA time zone of the lender's business dates (`Asia/Shanghai`); default UTC. A
    /// purchase at 01:00 in Beijing belongs to that Beijing day, not to the UTC day before.
    pub time_zone: Option<String>,
    /// `[credit.collections]`: contact hours and limits, and the risk reasons that raise an
    /// anomaly alert in the collections queue.
    pub collections: crate::credit::collections::CollectionsSettings,
}

/// Why the credit configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CreditConfigError {
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

fn read(path: &Option<String>, default: &str) -> Result<String, CreditConfigError> {
    match path {
        Some(path) => {
            std::fs::read_to_string(Path::new(path)).map_err(|error| CreditConfigError::Read {
                path: path.clone(),
                error,
            })
        }
        None => Ok(default.to_string()),
    }
}

fn invalid(what: &str, message: impl std::fmt::Display) -> CreditConfigError {
    CreditConfigError::Invalid {
        what: what.into(),
        message: message.to_string(),
    }
}

/// The decision's models, loaded and validated.
#[derive(Debug)]
pub struct DecisionModels {
    pub scorecard: Model,
    pub score_policy: ScorePolicy,
    pub rules: CreditPolicy,
}

/// What `serve` loads for credit: catalog, account rules and the decision models.
#[derive(Debug)]
pub struct CreditSetup {
    pub catalog: Catalog,
    pub account_policy: AccountPolicy,
    pub decision: DecisionModels,
    pub time_zone: TimeZone,
    pub contact_rules: tally_credit::ContactRules,
}

impl CreditFiles {
    pub fn load(&self) -> Result<CreditSetup, CreditConfigError> {
        let catalog = Catalog::from_toml(&read(
            &self.catalog,
            tally_credit::product::DEFAULT_CATALOG,
        )?)
        .map_err(|error| invalid("credit catalog", error))?;
        let account_policy = match &self.account_policy {
            Some(_) => {
                let text = read(&self.account_policy, "")?;
                let policy: AccountPolicy = toml::from_str(&text)
                    .map_err(|error| invalid("credit account policy", error))?;
                policy
                    .validate()
                    .map_err(|error| invalid("credit account policy", error))?;
                policy
            }
            None => AccountPolicy::default(),
        };
        let scorecard = Model::from_json(&read(&self.scorecard, DEFAULT_SCORECARD)?)
            .map_err(|error| invalid("scorecard", error))?;
        let score_policy = ScorePolicy::from_toml(&read(&self.score_policy, DEFAULT_SCORE_POLICY)?)
            .map_err(|error| invalid("score policy", error))?;
        let rules = match &self.decision_rules {
            Some(_) => CreditPolicy::from_toml(&read(&self.decision_rules, "")?)
                .map_err(|error| invalid("decision rules", error))?,
            None => CreditPolicy::default(),
        };
        self.check_fairness(&scorecard, &rules)?;
        for product in &catalog.products {
            check_tiers(product, &score_policy)
                .map_err(|error| invalid("credit catalog", error))?;
        }
        let time_zone = match &self.time_zone {
            Some(name) => {
                TimeZone::get(name).map_err(|error| invalid("credit time zone", error))?
            }
            None => TimeZone::UTC,
        };
        let contact_rules = self
            .collections
            .rules()
            .map_err(|error| invalid("credit collections", error))?;
        Ok(CreditSetup {
            time_zone,
            contact_rules,
            catalog,
            account_policy,
            decision: DecisionModels {
                scorecard,
                score_policy,
                rules,
            },
        })
    }
}

impl CreditFiles {
    /// Refuses a decision that would use a protected attribute: the scorecard refuses to load
    /// one already (sex, marital status, ethnicity, ...); age is refused here too unless the
    /// lender's configuration says why its market allows it, in the scorecard and as an upper
    /// age limit of the rule table alike.
    fn check_fairness(
        &self,
        scorecard: &Model,
        rules: &CreditPolicy,
    ) -> Result<(), CreditConfigError> {
        let protection = tally_scoring::Protection {
            declared: &[],
            age_allowed_because: self.age_allowed_because.as_deref(),
        };
        protection
            .validate()
            .map_err(|error| invalid("credit age_allowed_because", error))?;
        protection
            .check(
                scorecard
                    .features()
                    .iter()
                    .map(|feature| feature.name.as_str()),
            )
            .map_err(|error| invalid("scorecard", error))?;
        if let (Some(age_max), None) = (rules.age_max, &self.age_allowed_because) {
            return Err(invalid(
                "decision rules",
                format!(
                    "age_max = {age_max} declines applicants by age, a protected attribute: \
                     set [credit] age_allowed_because to say why the lender's market allows \
                     it, or remove age_max (age_min, the age of legal capacity, stays)"
                ),
            ));
        }
        Ok(())
    }
}

/// Refuses a product that prices a tier no band of the score policy gives: such a rate could
/// never apply, and is most likely a misspelt tier whose accounts would silently pay the
/// term's default rate instead.
pub fn check_tiers(
    product: &tally_credit::Product,
    score_policy: &ScorePolicy,
) -> Result<(), String> {
    let given = score_policy.pricing_tiers();
    for tier in product.priced_tiers() {
        if !given.contains(&tier) {
            let given = if given.is_empty() {
                "it gives none".to_owned()
            } else {
                format!("its tiers: {}", given.join(", "))
            };
            return Err(format!(
                "product {} prices tier {tier:?}, which no band of the score policy gives \
                 ({given})",
                product.code
            ));
        }
    }
    Ok(())
}

/// The credit service: storage operations and the decision models.
#[derive(Debug)]
pub struct CreditService {
    pub operations: CreditOperations,
    pub decision: DecisionModels,
    /// Business dates are dates in this zone.
    pub time_zone: TimeZone,
    /// When and how often collections may contact a customer.
    pub contact_rules: tally_credit::ContactRules,
}

impl CreditService {
    /// Starts the credit operations (finishing any left pending) with `setup`, and checks
    /// that every product of the merged catalog prices only tiers the score policy gives:
    /// [`CreditFiles::load`] checked the file's already (a handful of products, so checking
    /// them again costs nothing), but those added through the API were checked against the
    /// policy of their day, which may have changed since.
    pub async fn start(
        database: tally_store::Database,
        writer: tally_store::LedgerWriter,
        setup: CreditSetup,
    ) -> Result<CreditService, tally_store::StoreError> {
        let operations =
            CreditOperations::start(database, writer, setup.catalog, setup.account_policy)
                .await
                .map_err(|error| match error {
                    crate::credit::operations::OperationError::Store(error) => error,
                    other => {
                        tally_store::StoreError::Corrupt(format!("credit operations: {other}"))
                    }
                })?;
        for product in &operations.catalog().products {
            check_tiers(product, &setup.decision.score_policy).map_err(|error| {
                tally_store::StoreError::Corrupt(format!("credit configuration: {error}"))
            })?;
        }
        Ok(CreditService {
            operations,
            decision: setup.decision,
            time_zone: setup.time_zone,
            contact_rules: setup.contact_rules,
        })
    }
}

/// An adverse reason of the scorecard, for the notice to a declined applicant.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AdverseReason {
    pub feature: String,
    pub bin: String,
    /// Points below the best bin of the feature.
    pub points_lost: f64,
}

/// The whole decision, as answered and stored with the operation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CreditDecision {
    /// `approved` or `declined`.
    pub outcome: &'static str,
    pub score: f64,
    pub probability_of_default: f64,
    pub band: String,
    pub pricing_tier: Option<String>,
    pub limit: Option<Amount>,
    /// Stable codes of every failed rule.
    pub reasons: Vec<String>,
    pub adverse_reasons: Vec<AdverseReason>,
    pub age_years: u8,
}

/// Whole years between `birth` and `today`.
pub fn age_on(birth: Date, today: Date) -> u8 {
    let mut years = i32::from(today.year()) - i32::from(birth.year());
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u8::try_from(years.clamp(0, 255)).unwrap_or(0)
}

impl DecisionModels {
    /// Decides an application (see the module documentation).
    pub fn decide(
        &self,
        attributes: &serde_json::Value,
        age_years: u8,
        monthly_income: Amount,
        monthly_debt_payments: Amount,
        block_listed: bool,
    ) -> Result<CreditDecision, String> {
        let applicant = tally_scoring::Applicant::from_json(attributes)
            .map_err(|error| format!("application attributes: {error}"))?;
        let scored = self.scorecard.score(&applicant);
        let band = self.score_policy.decide(scored.score);
        // Scores are points (a few hundred); the rule table takes whole points (`as` from a
        // finite, clamped float truncates towards zero, which is what is meant).
        let points = scored
            .score
            .is_finite()
            .then(|| scored.score.clamp(0.0, f64::from(u16::MAX)) as u16);
        let rules = self
            .rules
            .decide(&Applicant {
                age_years,
                monthly_income,
                monthly_debt_payments,
                score: points,
                block_listed,
            })
            .map_err(|error| error.to_string())?;
        let mut reasons: Vec<String> = Vec::new();
        let rule_limit = match &rules {
            RuleDecision::Approved { limit, .. } => Some(*limit),
            RuleDecision::Declined { reasons: declined } => {
                for reason in declined {
                    reasons.push(
                        serde_json::to_value(reason)
                            .ok()
                            .and_then(|value| value.as_str().map(str::to_owned))
                            .unwrap_or_else(|| format!("{reason:?}")),
                    );
                }
                None
            }
        };
        if band.outcome == Outcome::Decline {
            reasons.push("score_band_declined".into());
        }
        let limit = match rule_limit {
            Some(rule_limit) if reasons.is_empty() => {
                if rule_limit.currency() != band.credit_limit.currency() {
                    return Err(format!(
                        "the application is in {}, the score policy in {}",
                        rule_limit.currency(),
                        band.credit_limit.currency()
                    ));
                }
                Some(if rule_limit.minor() < band.credit_limit.minor() {
                    rule_limit
                } else {
                    band.credit_limit
                })
            }
            _ => None,
        };
        let approved = reasons.is_empty() && limit.is_some_and(|limit| limit.is_positive());
        if reasons.is_empty() && !approved {
            reasons.push("limit_zero".into());
        }
        Ok(CreditDecision {
            outcome: if approved { "approved" } else { "declined" },
            score: scored.score,
            probability_of_default: scored.probability_of_default,
            band: band.band,
            pricing_tier: band.pricing_tier,
            limit: if approved { limit } else { None },
            reasons,
            adverse_reasons: scored
                .reasons
                .iter()
                .map(|reason| AdverseReason {
                    feature: reason.code.clone(),
                    bin: reason.bin.clone(),
                    points_lost: reason.points_lost,
                })
                .collect(),
            age_years,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn the_shipped_catalog_prices_only_tiers_the_shipped_policy_gives() {
        let setup = CreditFiles::default().load().unwrap();
        let installment = setup.catalog.product("installment").unwrap();
        assert_eq!(installment.priced_tiers(), vec!["A", "B", "C", "D"]);
    }

    #[test]
    fn age_beyond_legal_capacity_needs_a_stated_reason() {
        let rules = catalog_file(
            r#"age_min = 18
               age_max = 65
               debt_to_income_max = "0.5"
               limit_step_minor = 100
               tiers = [{ name = "only", score_min = 0, income_multiple = "1", limit_max_minor = 100000 }]"#,
        );
        let files = CreditFiles {
            decision_rules: Some(rules.path().display().to_string()),
            ..CreditFiles::default()
        };
        let error = files.load().unwrap_err().to_string();
        assert!(error.starts_with("decision rules: age_max = 65"), "{error}");
        let allowed = CreditFiles {
            age_allowed_because: Some("the lender's market allows an upper age limit".into()),
            ..files.clone()
        };
        assert_eq!(allowed.load().unwrap().decision.rules.age_max, Some(65));
        let blank = CreditFiles {
            age_allowed_because: Some(" ".into()),
            ..files
        };
        let error = blank.load().unwrap_err().to_string();
        assert!(error.starts_with("credit age_allowed_because"), "{error}");
        // The shipped model scores no protected attribute, so it loads with age refused.
        let shipped = CreditFiles::default().load().unwrap();
        for feature in shipped.decision.scorecard.features() {
            assert_eq!(
                tally_scoring::fairness::recognise(&feature.name),
                None,
                "{}",
                feature.name
            );
        }
    }

    #[test]
    fn a_scorecard_scoring_age_is_refused_unless_the_market_allows_it() {
        let mut file: tally_scoring::ModelFile = serde_json::from_str(DEFAULT_SCORECARD).unwrap();
        // The same model as if trained with age allowed, under another name for a feature.
        file.training.config.age_allowed_because = Some("allowed where trained".into());
        file.features[0].name = "age_in_years".into();
        let model = catalog_file(&serde_json::to_string(&file).unwrap());
        let files = CreditFiles {
            scorecard: Some(model.path().display().to_string()),
            ..CreditFiles::default()
        };
        let error = files.load().unwrap_err().to_string();
        assert!(
            error.contains(r#"column "age_in_years" is a protected attribute (age)"#),
            "{error}"
        );
        let allowed = CreditFiles {
            age_allowed_because: Some("the lender's market allows age in a scorecard".into()),
            ..files
        };
        assert!(allowed.load().is_ok());
    }

    #[test]
    fn a_catalog_pricing_an_unknown_tier_stops_the_start() {
        let file = catalog_file(
            r#"
            [[product]]
            code = "installment"
            name = "Installments"
            currency = "CNY"
            fee_model = { kind = "flat_fee" }
            terms = [{ periods = 3, rate = "0.007", tier_rates = { A = "0.005", prime = "0.004" } }]
            "#,
        );
        let files = CreditFiles {
            catalog: Some(file.path().display().to_string()),
            ..CreditFiles::default()
        };
        let error = files.load().unwrap_err().to_string();
        assert!(error.starts_with("credit catalog: "), "{error}");
        assert!(
            error.contains(r#"product installment prices tier "prime""#),
            "{error}"
        );
        assert!(error.contains("its tiers: D, C, B, A"), "{error}");
    }
}
