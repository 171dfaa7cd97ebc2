"""How high can other model families go on Tally's seeded splits of the German credit data?

A diagnostic, not part of Tally, and used to choose nothing in Tally. For each seed,
`tally score split` writes the seeded, stratified 70/30 split to out/train-SEED.csv and
out/test-SEED.csv (as compare.py does). For each model family below, the hyperparameters are
chosen on the training file only, by the same protocol as compare.py and `tally score tune`
(GridSearchCV, RepeatedStratifiedKFold(5 splits, 4 repeats, random_state=42), ROC AUC); the
winner is refitted on the whole training file and the test file is scored once. Every
random_state is 42. The script prints, per family, the chosen hyperparameters, the mean CV AUC
over the 20 held-out folds and the test AUC; then the family a user would pick by CV AUC alone
(training rows only) and its test AUC; over several seeds, the mean, median and minimum test
AUC per family.

Families: logistic regression L2 (as compare.py), logistic regression L1, random forest,
histogram gradient boosting (native categorical splits), RBF support vector machine, k nearest
neighbours. Numeric columns are standardised and categorical columns one-hot encoded, except
for gradient boosting, which sees the raw numbers and category codes.

Run through ceiling.sh, which installs requirements.txt into a virtualenv.
"""

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).parent))
from compare import C_GRID, run  # noqa: E402  (same tally invocation and C grid as compare.py)

SEED = 42


def one_hot(numeric, categorical):
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )


def families(numeric, categorical):
    """(name, estimator, grid) for each family. Grids are kept small on purpose."""
    codes = ColumnTransformer(
        [
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), categorical),
            ("numeric", "passthrough", numeric),
        ]
    )
    is_categorical = [True] * len(categorical) + [False] * len(numeric)
    return [
        (
            "logistic L2 (lbfgs)",
            make_pipeline(one_hot(numeric, categorical), LogisticRegression(max_iter=10_000, random_state=SEED)),
            {"logisticregression__C": C_GRID},
        ),
        (
            "logistic L1 (liblinear)",
            make_pipeline(
                one_hot(numeric, categorical),
                LogisticRegression(penalty="l1", solver="liblinear", max_iter=10_000, random_state=SEED),
            ),
            {"logisticregression__C": [0.01, 0.03, 0.1, 0.3, 1, 3, 10]},
        ),
        (
            "random forest (500 trees)",
            make_pipeline(
                one_hot(numeric, categorical),
                RandomForestClassifier(n_estimators=500, random_state=SEED, n_jobs=1),
            ),
            {
                "randomforestclassifier__max_features": ["sqrt", 0.3],
                "randomforestclassifier__min_samples_leaf": [1, 5],
            },
        ),
        (
            "gradient boosting (hist, categorical)",
            make_pipeline(
                codes,
                HistGradientBoostingClassifier(
                    categorical_features=is_categorical, early_stopping=False, random_state=SEED
                ),
            ),
            {
                "histgradientboostingclassifier__learning_rate": [0.03, 0.1],
                "histgradientboostingclassifier__max_leaf_nodes": [3, 7],
                "histgradientboostingclassifier__max_iter": [100, 300],
            },
        ),
        (
            "SVM (RBF kernel)",
            make_pipeline(one_hot(numeric, categorical), SVC(kernel="rbf", random_state=SEED)),
            {"svc__C": [0.1, 0.3, 1, 3], "svc__gamma": ["scale", 0.003, 0.01]},
        ),
        (
            "k nearest neighbours",
            make_pipeline(one_hot(numeric, categorical), KNeighborsClassifier(weights="distance")),
            {"kneighborsclassifier__n_neighbors": [15, 30, 60, 120]},
        ),
    ]


def short(params):
    return ", ".join(f"{key.split('__', 1)[1]}={value:.4g}" if isinstance(value, float) else
                     f"{key.split('__', 1)[1]}={value}" for key, value in sorted(params.items()))


# The German credit data's protected attributes (sex and marital status, age, national origin),
# which Tally's scorecard may not use: the other families get the same columns.
PROTECTED = ["personal_status_and_sex", "age_in_years", "foreign_worker"]


def score_seed(train_path, test_path, target, bad_value, jobs, only):
    train = pd.read_csv(train_path)
    test = pd.read_csv(test_path)
    features = [column for column in train.columns if column != target and column not in PROTECTED]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in features if c not in numeric]
    labels = (train[target] == bad_value).astype(int)
    test_labels = (test[target] == bad_value).astype(int)
    results = []
    for name, estimator, grid in families(numeric, categorical):
        if only and not any(word.lower() in name.lower() for word in only):
            continue
        started = time.monotonic()
        search = GridSearchCV(
            estimator,
            grid,
            scoring="roc_auc",
            cv=RepeatedStratifiedKFold(n_splits=5, n_repeats=4, random_state=SEED),
            n_jobs=jobs,
        )
        search.fit(train[features], labels)
        best = search.best_estimator_
        if hasattr(best, "predict_proba"):
            scores = best.predict_proba(test[features])[:, 1]
        else:  # SVC without Platt scaling: its decision function ranks the rows
            scores = best.decision_function(test[features])
        test_auc = roc_auc_score(test_labels, scores)
        cv_sd = search.cv_results_["std_test_score"][search.best_index_]
        results.append(
            {
                "family": name,
                "params": short(search.best_params_),
                "cv_auc": search.best_score_,
                "cv_sd": cv_sd,
                "test_auc": test_auc,
                "seconds": time.monotonic() - started,
            }
        )
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tally", required=True, help="path to the tally binary")
    parser.add_argument("--data", required=True)
    parser.add_argument("--target", default="creditability")
    parser.add_argument("--bad-value", default="bad")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds, or FIRST-LAST")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--jobs", type=int, default=2, help="parallel CV fits (GridSearchCV n_jobs)")
    parser.add_argument("--only", default="", help="comma-separated words; run only families whose name contains one")
    args = parser.parse_args()
    if "-" in args.seeds:
        first, last = args.seeds.split("-")
        seeds = list(range(int(first), int(last) + 1))
    else:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    only = [word for word in args.only.split(",") if word]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"python {sys.version.split()[0]}; CV: RepeatedStratifiedKFold(5, 4, random_state=42), ROC AUC, "
          f"training file only", flush=True)
    by_family = {}
    picked = []
    for seed in seeds:
        train, test = out / f"train-{seed}.csv", out / f"test-{seed}.csv"
        run([args.tally, "score", "split", "--data", args.data, "--target", args.target,
             "--bad-value", args.bad_value, "--seed", str(seed), "--train-out", str(train), "--test-out", str(test)])
        results = score_seed(train, test, args.target, args.bad_value, args.jobs, only)
        print(f"\nseed {seed}")
        print(f"  {'family':<38}  {'CV AUC':>6}  {'CV sd':>5}  {'test AUC':>8}  {'s':>5}  chosen")
        for r in results:
            print(f"  {r['family']:<38}  {r['cv_auc']:>6.4f}  {r['cv_sd']:>5.3f}  {r['test_auc']:>8.4f}  "
                  f"{r['seconds']:>5.0f}  {r['params']}")
            by_family.setdefault(r["family"], []).append(r["test_auc"])
        best = max(results, key=lambda r: r["cv_auc"])
        picked.append(best["test_auc"])
        print(f"  {'family with the best CV AUC: ' + best['family']:<38}  {best['cv_auc']:>6.4f}  {'':>5}  "
              f"{best['test_auc']:>8.4f}", flush=True)
        with open(out / f"ceiling-{seed}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(results[0]))
            writer.writeheader()
            writer.writerows(results)
    if len(seeds) > 1:
        by_family["family with the best CV AUC"] = picked
        print(f"\ntest AUC over seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} splits)")
        print(f"  {'family':<38}  {'mean':>6}  {'median':>6}  {'min':>6}  {'max':>6}  >= 0.78")
        for name, aucs in by_family.items():
            reach = sum(1 for auc in aucs if auc >= 0.78)
            print(f"  {name:<38}  {statistics.mean(aucs):>6.4f}  {statistics.median(aucs):>6.4f}  "
                  f"{min(aucs):>6.4f}  {max(aucs):>6.4f}  {reach:>2} of {len(aucs)}")


if __name__ == "__main__":
    main()
