//! Credit scorecard of Tally: train, evaluate and serve a points scorecard, and turn a score
//! into a credit decision through a policy table.
//!
//! # Design
//!
//! - **Data.** Training reads a CSV with a label column; a row is bad when the label equals the
//!   given bad value. A column is numeric when every non-missing cell parses as a number,
//!   otherwise categorical. Missing cells are empty, `NA`, `NaN`, `null` or `?`.
//! - **Split.** [`data::stratified_split`]: within each class a Fisher–Yates shuffle driven by
//!   SplitMix64 from a seed the caller passes; `round(n * fraction)` rows of each class train.
//! - **Binning.** Numeric: 20 quantile fine classes; categorical: one fine class per category,
//!   ordered by bad rate. Then the exact optimum by dynamic programming: the partition of
//!   consecutive fine classes into at most 5 bins, each with at least 5 % of the rows, with a
//!   strictly monotonic bad rate (both directions tried), that maximises information value.
//!   Where no monotonic split exists the feature has one bin and is dropped. These are the
//!   default settings; with `monotonic = false` the bad rate may rise and fall (a U shape).
//! - **WOE/IV.** `woe = ln(good share / bad share)` per bin (positive = safer); a zero count is
//!   replaced by 0.5; `IV = sum((good share - bad share) * woe)`.
//! - **Selection.** Features with IV < 0.02 (a setting) are dropped. After the joint fit, a feature whose
//!   coefficient has the reversed sign (it would reward risk) is dropped and the fit repeated.
//! - **Regression.** Logistic regression of bad on the WOE values by IRLS (Newton with step
//!   halving), L2 penalty `l2 / 2 * |beta|^2` on the coefficients (not the intercept), default
//!   `l2 = 1` on the summed log-likelihood (sklearn's `C = 1 / l2`).
//! - **Choice of settings.** [`tuning::tune`] (`tally score tune`): stratified k-fold
//!   cross-validation on the training rows only (seeded SplitMix64 folds, optionally repeated)
//!   over a Cartesian grid of fine classes, most bins, least bin share, monotonic or not, least
//!   IV and L2; the setting chosen by a [`Rule`] (the greatest mean held-out AUC, or the
//!   simplest within one standard error of it) is retrained on all the training rows, and the
//!   model file records the selection.
//! - **Points.** `factor = PDO / ln 2`, `offset = base_score - factor * ln(base_odds)`; bin
//!   points `= -factor * coefficient * woe`; `base_points = offset - factor * intercept`;
//!   score = base points + the points of each attribute. Defaults: 600 points at 50:1 good:bad,
//!   20 points to double the odds. `PD = 1 / (1 + exp((score - offset) / factor))`.
//! - **Missing and unseen.** Each feature has a `missing` bin: its own WOE if at least 5 % of
//!   training rows were missing, else (default `riskiest`) the WOE of the feature's riskiest
//!   bin, so that withholding information never earns points and shows as an adverse reason;
//!   `neutral` (WOE 0, 0 points) is the configurable alternative. A number that does not parse
//!   goes to the missing bin (marked `invalid`). A category not seen in training goes to the
//!   `unseen` bin, by default also with the riskiest WOE. Scoring never fails on a value.
//! - **Model file.** JSON (`tally-scorecard/1`): per feature its bins (range or categories),
//!   training counts, WOE and points, plus the missing and unseen bins, the coefficients,
//!   intercept, scaling, rejected features with the reason, and the training settings. Points
//!   are stored unrounded; the points in the file are what scoring adds up. Loading validates
//!   contiguous ascending ranges, categories in one bin only, finite points.
//! - **Reasons.** Per feature, points lost = best bin's points - the applicant's points; the
//!   four largest losses are the adverse reason codes (code = feature name).
//! - **Policy.** TOML bands by minimum score: the first band (no minimum) declines and takes
//!   every lower or NaN score; approve bands carry a credit limit written as a decimal string
//!   in major units and parsed exactly into integer minor units of the policy currency, and a
//!   pricing tier. No floating point touches the limit.
//! - **Speed.** [`Batch`] holds applicants by column (numbers parsed, categories as text);
//!   [`Model::score_batch`] adds each feature's points column by column.
//!
//! - **Fairness.** [`fairness`]: a protected attribute (sex, marital status, ethnicity,
//!   religion, national origin; age unless the settings say why the market allows it) is
//!   never a feature: training refuses a table with one that is not excluded, loading refuses
//!   a model that scores one, each naming the column. [`group_report`] gives approval rates,
//!   adverse impact ratios (four-fifths rule) and score quantiles by group, in exact decimals.
//!
//! The shipped default model (`models/default-scorecard.json`) is made by `tally score train`
//! with the default settings on the training 70 % of `data/germancredit.csv` split with seed
//! 42, its protected attributes excluded (`personal_status_and_sex`, `age_in_years`,
//! `foreign_worker`): a pre-registered nested cross-validation on those rows preferred the
//! defaults to the grid search (`bench/scoring/PREREGISTRATION.md`). `tests/default_model.rs`
//! retrains it, compares the file byte for byte, and checks the reported cross-validated AUC
//! (0.7870; 0.7906 with the protected attributes) and held-out AUC (0.7689; 0.7590 with them).
//!
//! The API for credit activation: [`Model::score`]`(&Applicant) -> ScoreResult` and
//! [`Policy::decide`]`(score) -> Decision`, both pure and infallible.

pub mod binning;
pub mod data;
pub mod error;
pub mod fairness;
pub mod logistic;
pub mod metrics;
pub mod policy;
pub mod scorecard;
pub mod tuning;

pub use binning::{Bin, BinningConfig, FeatureKind, Trend};
pub use data::{stratified_split, Split, Table};
pub use error::ScoringError;
pub use fairness::{group_report, GroupReport, ProtectedAttribute, Protection};
pub use policy::{Decision, Outcome, Policy};
pub use scorecard::{
    check_protected, train, Applicant, Attribute, Batch, Feature, Match, Model, ModelFile,
    ReasonCode, Scaling, ScoreResult, Target, TrainConfig, UnknownValue, Value,
};
pub use tuning::{
    cross_validate, stratified_folds, tune, FoldPlan, Grid, PointResult, Rule, Selection, Tuned,
};
