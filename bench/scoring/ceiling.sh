#!/usr/bin/env bash
# Diagnostic, not part of Tally: other model families, each tuned on the training rows only,
# on the same seeded 70/30 splits of the German credit data that `tally score split` writes.
# Installs requirements.txt into bench/scoring/.venv; needs a built tally binary in $TALLY
# (default: ${CARGO_TARGET_DIR:-target}/release/tally; this script does not build it).
# Usage: TALLY=... bench/scoring/ceiling.sh [SEEDS] [extra ceiling.py flags], e.g. 42 or 1-30.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seeds="${1:-42}"
shift || true
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install --quiet -r "$here/requirements.txt"
tally="${TALLY:-${CARGO_TARGET_DIR:-$root/target}/release/tally}"
if [ ! -x "$tally" ]; then
  echo "no tally binary at $tally: build it with cargo build --release -p tally, or set TALLY" >&2
  exit 1
fi
"$here/.venv/bin/python" "$here/ceiling.py" --tally "$tally" \
  --data "$root/data/germancredit.csv" --seeds "$seeds" --out "$here/out" "$@"
