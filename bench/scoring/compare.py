"""Compare Tally's scorecard with scikit-learn's logistic regression on one-hot features.

Both models see exactly the same rows: `tally score split` writes the seeded, stratified
70/30 split to CSV and this script reads those files. For each seed it trains and evaluates
Tally (`tally score train` / `tally score eval --json`) and scikit-learn
(LogisticRegression, L2, C=1, lbfgs; numeric columns standardised, categorical columns
one-hot encoded, unseen categories ignored) and prints the test-set AUCs side by side.

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
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def run(command):
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def sklearn_auc(train_path, test_path, target, bad_value):
    train = pd.read_csv(train_path)
    test = pd.read_csv(test_path)
    features = [column for column in train.columns if column != target]
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
    model.fit(train[features], (train[target] == bad_value).astype(int))
    probability_bad = model.predict_proba(test[features])[:, 1]
    return roc_auc_score((test[target] == bad_value).astype(int), probability_bad)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tally", required=True, help="path to the tally binary")
    parser.add_argument("--data", required=True)
    parser.add_argument("--target", default="creditability")
    parser.add_argument("--bad-value", default="bad")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds, or FIRST-LAST")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args()
    if "-" in args.seeds:
        first, last = args.seeds.split("-")
        seeds = list(range(int(first), int(last) + 1))
    else:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}, python {sys.version.split()[0]}")
    print(f"{'seed':>6}  {'Tally AUC':>9}  {'sklearn AUC':>11}")
    rows = []
    for seed in seeds:
        train, test, model = out / f"train-{seed}.csv", out / f"test-{seed}.csv", out / f"model-{seed}.json"
        common = ["--target", args.target, "--bad-value", args.bad_value]
        run([args.tally, "score", "split", "--data", args.data, *common, "--seed", str(seed),
             "--train-out", str(train), "--test-out", str(test)])
        run([args.tally, "score", "train", "--data", str(train), *common, "--out", str(model)])
        tally = json.loads(run([args.tally, "score", "eval", "--model", str(model), "--data", str(test), "--json"]))["auc"]
        reference = sklearn_auc(train, test, args.target, args.bad_value)
        rows.append((seed, tally, reference))
        print(f"{seed:>6}  {tally:>9.4f}  {reference:>11.4f}")
    if len(rows) > 1:
        tally_all = [row[1] for row in rows]
        reference_all = [row[2] for row in rows]
        wins = sum(1 for row in rows if row[1] > row[2])
        print(f"{'mean':>6}  {statistics.mean(tally_all):>9.4f}  {statistics.mean(reference_all):>11.4f}")
        print(f"{'median':>6}  {statistics.median(tally_all):>9.4f}  {statistics.median(reference_all):>11.4f}")
        print(f"{'min':>6}  {min(tally_all):>9.4f}  {min(reference_all):>11.4f}")
        print(f"Tally higher on {wins} of {len(rows)} splits")


if __name__ == "__main__":
    main()
