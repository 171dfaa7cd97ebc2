#!/usr/bin/env bash
# Tally's scorecard against scikit-learn on the same seeded 70/30 splits of the German credit
# data. Installs its own Python dependencies (requirements.txt) into bench/scoring/.venv and
# builds the release tally binary (or uses $TALLY if set).
# Usage: bench/scoring/run.sh [SEEDS], e.g. 42 or 1-30.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seeds="${1:-42}"
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install --quiet -r "$here/requirements.txt"
tally="${TALLY:-}"
if [ -z "$tally" ]; then
  (cd "$root" && cargo build --release -p tally)
  tally="${CARGO_TARGET_DIR:-$root/target}/release/tally"
fi
"$here/.venv/bin/python" "$here/compare.py" --tally "$tally" \
  --data "$root/data/germancredit.csv" --seeds "$seeds" --out "$here/out"
