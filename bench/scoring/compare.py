"""Compare Tally's scorecard with scikit-learn's logistic regression on one-hot features.

Both models see exactly the same rows: `tally score split` writes the seeded, stratified
70/30 split to CSV and this script reads those files. For each seed it trains and evaluates
Tally twice: as the shipped model is made (`tally score train`, the default settings), and
tuned (`tally score tune`, stratified 5-fold cross-validation repeated 4 times with fold seed
42 on the training rows over the default grid); each is scored once on the test rows with
`tally score eval --json`. And scikit-learn (LogisticRegression, L2, lbfgs; numeric columns standardised,
categorical columns one-hot encoded, unseen categories ignored), both with C = 1 and with C
chosen by the same protocol (RepeatedStratifiedKFold 5 x 4, random_state 42, ROC AUC) over
C = 1 / l2 for Tally's l2 grid and a wider one. It prints the test-set AUCs side by side.

Not part of Tally. Run through run.sh, which installs requirements.txt into a virtualenv.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def run(command):
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


# C = 1 / l2 for Tally's default l2 grid (0.1 ... 30), widened by a factor 10 each way.
C_GRID = [1 / 300, 1 / 100, 1 / 30, 1 / 10, 1 / 3, 1, 3, 10, 30, 100]


# The German credit data's protected attributes (sex and marital status, age, national origin):
# Tally refuses to train on them, and scikit-learn is given the same columns as Tally.
PROTECTED = ["personal_status_and_sex", "age_in_years", "foreign_worker"]


def sklearn_auc(train_path, test_path, target, bad_value, excluded=()):
    """Test AUC of scikit-learn with C = 1, and with C chosen by cross-validation on the
    training rows only; also the chosen C and its mean CV AUC."""
    train = pd.read_csv(train_path)
    test = pd.read_csv(test_path)
    features = [column for column in train.columns if column != target and column not in excluded]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in features if c not in numeric]
    model = make_pipeline(
        ColumnTransformer(
            [
                ("numeric", StandardScaler(), numeric),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        ),
        LogisticRegression(C=1.0, max_iter=10_000),
    )
    labels = (train[target] == bad_value).astype(int)
    test_labels = (test[target] == bad_value).astype(int)
    model.fit(train[features], labels)
    plain = roc_auc_score(test_labels, model.predict_proba(test[features])[:, 1])
    search = GridSearchCV(
        model,
        {"logisticregression__C": C_GRID},
        scoring="roc_auc",
        cv=RepeatedStratifiedKFold(n_splits=5, n_repeats=4, random_state=42),
    )
    search.fit(train[features], labels)
    tuned = roc_auc_score(test_labels, search.predict_proba(test[features])[:, 1])
    return plain, tuned, search.best_params_["logisticregression__C"], search.best_score_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tally", required=True, help="path to the tally binary")
    parser.add_argument("--data", required=True)
    parser.add_argument("--target", default="creditability")
    parser.add_argument("--bad-value", default="bad")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds, or FIRST-LAST")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--exclude", default=",".join(PROTECTED),
                        help="comma-separated columns neither model may use (the protected attributes)")
    args = parser.parse_args()
    excluded = [column for column in args.exclude.split(",") if column]
    exclude_flags = [flag for column in excluded for flag in ("--exclude", column)]
    if "-" in args.seeds:
        first, last = args.seeds.split("-")
        seeds = list(range(int(first), int(last) + 1))
    else:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}, python {sys.version.split()[0]}")
    print(f"{'seed':>6}  {'Tally AUC':>9}  {'tuned CV':>8}  {'tuned AUC':>9}  {'sklearn C=1':>11}  {'sklearn CV':>10}  {'C':>7}  {'sklearn tuned':>13}")
    rows = []
    for seed in seeds:
        train, test = out / f"train-{seed}.csv", out / f"test-{seed}.csv"
        model, tuned_model = out / f"model-{seed}.json", out / f"tuned-{seed}.json"
        common = ["--target", args.target, "--bad-value", args.bad_value]
        run([args.tally, "score", "split", "--data", args.data, *common, "--seed", str(seed),
             "--train-out", str(train), "--test-out", str(test)])
        run([args.tally, "score", "train", "--data", str(train), *common, *exclude_flags, "--out", str(model)])
        run([args.tally, "score", "tune", "--data", str(train), *common, *exclude_flags, "--folds", "5",
             "--repeats", "4", "--fold-seed", "42", "--out", str(tuned_model),
             "--report", str(out / f"cv-{seed}.csv")])
        tuned_cv = json.loads(tuned_model.read_text())["selection"]["mean_auc"]
        evaluate = lambda path: json.loads(run([args.tally, "score", "eval", "--model", str(path), "--data", str(test), "--json"]))["auc"]
        tally, tally_tuned = evaluate(model), evaluate(tuned_model)
        plain, tuned, c, sklearn_cv = sklearn_auc(train, test, args.target, args.bad_value, excluded)
        rows.append((seed, tally, tally_tuned, plain, tuned))
        print(f"{seed:>6}  {tally:>9.4f}  {tuned_cv:>8.4f}  {tally_tuned:>9.4f}  {plain:>11.4f}  {sklearn_cv:>10.4f}  {c:>7.4g}  {tuned:>13.4f}", flush=True)
    if len(rows) > 1:
        columns = list(zip(*rows))[1:]
        for name, statistic in [("mean", statistics.mean), ("median", statistics.median), ("min", min)]:
            tally, tally_tuned, plain, tuned = (statistic(column) for column in columns)
            print(f"{name:>6}  {tally:>9.4f}  {'':>8}  {tally_tuned:>9.4f}  {plain:>11.4f}  {'':>10}  {'':>7}  {tuned:>13.4f}")
        wins = sum(1 for row in rows if row[1] > row[4])
        reach = sum(1 for row in rows if row[1] >= 0.78)
        print(f"Tally higher than tuned scikit-learn on {wins} of {len(rows)} splits; Tally >= 0.78 on {reach}")


if __name__ == "__main__":
    main()
