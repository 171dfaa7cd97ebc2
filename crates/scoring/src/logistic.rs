//! Logistic regression with an L2 penalty, fitted by iteratively reweighted least squares
//! (Newton's method) with step halving.

use crate::error::ScoringError;
use serde::{Deserialize, Serialize};

/// Most Newton iterations before giving up.
pub const ITERATIONS_MAX: usize = 100;

/// A fitted model of `P(bad) = 1 / (1 + exp(-(intercept + coefficients · x)))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticFit {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    pub iterations: usize,
    /// Log-likelihood of the training data at the solution (without the penalty).
    pub log_likelihood: f64,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Fits the model on `rows` (each row the features of one example) and `labels` (true = bad,
/// the event modelled). The objective minimised is
/// `-log_likelihood + l2 / 2 * sum(coefficients^2)`; the intercept is not penalised.
// Index loops over the matrix read as the algebra does.
#[allow(clippy::needless_range_loop)]
pub fn fit(rows: &[Vec<f64>], labels: &[bool], l2: f64) -> Result<LogisticFit, ScoringError> {
    if rows.len() != labels.len() || rows.is_empty() {
        return Err(ScoringError::InvalidData(
            "logistic regression needs as many labels as rows, and at least one row".into(),
        ));
    }
    if !(l2 >= 0.0 && l2.is_finite()) {
        return Err(ScoringError::InvalidConfiguration(format!(
            "l2 penalty {l2} must be finite and not negative"
        )));
    }
    let features = rows[0].len();
    if rows
        .iter()
        .any(|row| row.len() != features || row.iter().any(|x| !x.is_finite()))
    {
        return Err(ScoringError::InvalidData(
            "every row needs the same number of finite features".into(),
        ));
    }
    let size = features + 1;
    // beta[0] is the intercept.
    let mut beta = vec![0.0; size];
    let positives = labels.iter().filter(|&&label| label).count() as f64;
    let rate = (positives / labels.len() as f64).clamp(1e-6, 1.0 - 1e-6);
    beta[0] = (rate / (1.0 - rate)).ln();
    let objective = |beta: &[f64]| -> f64 {
        let mut total = 0.0;
        for (row, &label) in rows.iter().zip(labels) {
            let z = linear(beta, row);
            total += softplus(z) - if label { z } else { 0.0 };
        }
        total + 0.5 * l2 * beta[1..].iter().map(|b| b * b).sum::<f64>()
    };
    let mut current = objective(&beta);
    for iteration in 1..=ITERATIONS_MAX {
        let mut gradient = vec![0.0; size];
        let mut hessian = vec![vec![0.0; size]; size];
        for (row, &label) in rows.iter().zip(labels) {
            let probability = sigmoid(linear(&beta, row));
            let residual = probability - if label { 1.0 } else { 0.0 };
            let weight = probability * (1.0 - probability);
            for i in 0..size {
                let xi = if i == 0 { 1.0 } else { row[i - 1] };
                gradient[i] += residual * xi;
                for j in 0..=i {
                    let xj = if j == 0 { 1.0 } else { row[j - 1] };
                    hessian[i][j] += weight * xi * xj;
                }
            }
        }
        for i in 1..size {
            gradient[i] += l2 * beta[i];
            hessian[i][i] += l2;
        }
        for i in 0..size {
            for j in 0..i {
                hessian[j][i] = hessian[i][j];
            }
            // A tiny ridge keeps the solve well posed when a column is constant.
            hessian[i][i] += 1e-10;
        }
        let step = solve_cholesky(&hessian, &gradient).ok_or(ScoringError::Internal(
            "Hessian of the logistic fit is not positive definite",
        ))?;
        // Newton step with halving until the objective does not increase.
        let mut scale = 1.0;
        let mut candidate: Vec<f64>;
        let mut value;
        loop {
            candidate = beta.iter().zip(&step).map(|(b, s)| b - scale * s).collect();
            value = objective(&candidate);
            if value <= current + 1e-12 || scale < 1e-10 {
                break;
            }
            scale *= 0.5;
        }
        let change = step.iter().map(|s| (scale * s).abs()).fold(0.0, f64::max);
        beta = candidate;
        current = value;
        if change < 1e-10 {
            let log_likelihood =
                -(current - 0.5 * l2 * beta[1..].iter().map(|b| b * b).sum::<f64>());
            return Ok(LogisticFit {
                intercept: beta[0],
                coefficients: beta[1..].to_vec(),
                iterations: iteration,
                log_likelihood,
            });
        }
    }
    Err(ScoringError::NotConverged {
        iterations: ITERATIONS_MAX,
    })
}

fn linear(beta: &[f64], row: &[f64]) -> f64 {
    beta[0] + beta[1..].iter().zip(row).map(|(b, x)| b * x).sum::<f64>()
}

/// Solves `matrix · x = vector` for a symmetric positive definite matrix; `None` if it is not.
#[allow(clippy::needless_range_loop)]
fn solve_cholesky(matrix: &[Vec<f64>], vector: &[f64]) -> Option<Vec<f64>> {
    let size = vector.len();
    let mut lower = vec![vec![0.0; size]; size];
    for i in 0..size {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| lower[i][k] * lower[j][k]).sum();
            if i == j {
                let diagonal = matrix[i][i] - sum;
                if diagonal <= 0.0 || !diagonal.is_finite() {
                    return None;
                }
                lower[i][j] = diagonal.sqrt();
            } else {
                lower[i][j] = (matrix[i][j] - sum) / lower[j][j];
            }
        }
    }
    let mut forward = vec![0.0; size];
    for i in 0..size {
        let sum: f64 = (0..i).map(|k| lower[i][k] * forward[k]).sum();
        forward[i] = (vector[i] - sum) / lower[i][i];
    }
    let mut solution = vec![0.0; size];
    for i in (0..size).rev() {
        let sum: f64 = (i + 1..size).map(|k| lower[k][i] * solution[k]).sum();
        solution[i] = (forward[i] - sum) / lower[i][i];
    }
    Some(solution)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One binary feature: the unpenalised maximum-likelihood solution is closed form,
    /// intercept = logit(bad rate at x=0), slope = logit(bad rate at x=1) - intercept.
    #[test]
    fn binary_feature_fit_matches_the_closed_form_solution() {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        // x = 0: 30 bad, 70 good. x = 1: 10 bad, 90 good.
        for (x, bad, good) in [(0.0, 30, 70), (1.0, 10, 90)] {
            for index in 0..(bad + good) {
                rows.push(vec![x]);
                labels.push(index < bad);
            }
        }
        let fit = fit(&rows, &labels, 0.0).unwrap();
        let intercept = (30.0f64 / 70.0).ln();
        let slope = (10.0f64 / 90.0).ln() - intercept;
        assert!((fit.intercept - intercept).abs() < 1e-9, "{fit:?}");
        assert!((fit.coefficients[0] - slope).abs() < 1e-9, "{fit:?}");
        // Log-likelihood: sum of n * (p ln p + (1-p) ln(1-p)) over the two groups.
        let group = |p: f64, n: f64| n * (p * p.ln() + (1.0 - p) * (1.0 - p).ln());
        let expected = group(0.3, 100.0) + group(0.1, 100.0);
        assert!((fit.log_likelihood - expected).abs() < 1e-9);
    }

    /// At the penalised optimum the gradient vanishes: X'(y - p) = l2 * beta (not the intercept).
    #[test]
    fn penalised_fit_satisfies_the_optimality_condition() {
        let mut generator = tally_core::SplitMix64::new(7);
        let mut uniform = || generator.next_f64();
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..500 {
            let row = vec![uniform() * 2.0 - 1.0, uniform() * 4.0, uniform()];
            let z = -0.5 + 1.5 * row[0] - 0.7 * row[1] + 0.2 * row[2];
            labels.push(uniform() < sigmoid(z));
            rows.push(row);
        }
        let l2 = 3.0;
        let fit = fit(&rows, &labels, l2).unwrap();
        let mut gradient = [0.0; 4];
        for (row, &label) in rows.iter().zip(&labels) {
            let mut beta = vec![fit.intercept];
            beta.extend(&fit.coefficients);
            let residual = (if label { 1.0 } else { 0.0 }) - sigmoid(linear(&beta, row));
            gradient[0] += residual;
            for (index, x) in row.iter().enumerate() {
                gradient[index + 1] += residual * x;
            }
        }
        assert!(gradient[0].abs() < 1e-8);
        for index in 0..3 {
            assert!((gradient[index + 1] - l2 * fit.coefficients[index]).abs() < 1e-8);
        }
    }

    /// Differential test against scikit-learn 1.5.2 (`LogisticRegression(C=1/l2, tol=1e-14)`,
    /// lbfgs, intercept not penalised), run once and pasted here.
    #[test]
    fn penalised_fit_matches_scikit_learn() {
        let rows = [
            [0.5, 1.0],
            [1.5, -0.5],
            [-1.0, 2.0],
            [2.0, 0.0],
            [0.0, 0.0],
            [-0.5, -1.5],
            [1.0, 1.0],
            [-2.0, 0.5],
            [0.3, -0.7],
            [1.2, 2.2],
            [-1.3, -0.2],
            [0.8, -1.1],
        ];
        let rows: Vec<Vec<f64>> = rows.iter().map(|row| row.to_vec()).collect();
        let labels = [1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1].map(|label| label == 1);
        let cases = [
            (
                1.0,
                -0.470_778_846_528_659_2,
                [1.527_454_550_143_927_8, 0.346_218_716_549_017_65],
            ),
            (
                2.0,
                -0.323_201_273_261_593_3,
                [1.107_329_116_812_989, 0.253_682_398_881_079_3],
            ),
        ];
        for (l2, intercept, coefficients) in cases {
            let fit = fit(&rows, &labels, l2).unwrap();
            assert!((fit.intercept - intercept).abs() < 1e-7, "{l2}: {fit:?}");
            for (got, expected) in fit.coefficients.iter().zip(coefficients) {
                assert!((got - expected).abs() < 1e-7, "{l2}: {fit:?}");
            }
        }
    }

    #[test]
    fn separable_data_is_held_finite_by_the_penalty() {
        let rows: Vec<Vec<f64>> = (0..20).map(|i| vec![i as f64]).collect();
        let labels: Vec<bool> = (0..20).map(|i| i >= 10).collect();
        let fit = fit(&rows, &labels, 1.0).unwrap();
        assert!(fit.coefficients[0].is_finite() && fit.coefficients[0] > 0.0);
    }
}
