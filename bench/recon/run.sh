#!/usr/bin/env bash
# Differential check and benchmark of `tally recon run` against DuckDB on generated CSV files.
#
# Usage: bench/recon/run.sh [ROWS] [WORK_DIR]
#   ROWS      transactions to generate (default 50000000: the 50M x 50M benchmark)
#   WORK_DIR  where data, outputs and timings go (default /var/tmp/tally-recon-bench; needs
#             about 170 bytes per row of free disk, 8.5 GB for 50M)
# Environment: RUNS (default 1) repetitions; TALLY (a prebuilt tally binary; default: build
# it with cargo in release); THREADS (default: all cores, for both engines);
# MEMORY_LIMIT (tally's --memory-limit, default 4GiB).
# Installs DuckDB from requirements.txt into a virtual environment ($WORK_DIR/venv).
set -euo pipefail
ROWS=${1:-50000000}
WORK=${2:-/var/tmp/tally-recon-bench}
RUNS=${RUNS:-1}
THREADS=${THREADS:-0}
MEMORY_LIMIT=${MEMORY_LIMIT:-4GiB}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
mkdir -p "$WORK"
VENV="$WORK/venv"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
if [ -z "${TALLY:-}" ]; then
    (cd "$ROOT" && cargo build -p tally --release)
    TALLY="$ROOT/target/release/tally"
fi
DATA="$WORK/data-$ROWS"
if [ ! -f "$DATA/ledger.csv" ]; then
    "$TALLY" recon generate --rows "$ROWS" --seed 42 --discrepancy-rate 0.01 --out "$DATA"
fi
ls -l "$DATA"
for run in $(seq "$RUNS"); do
    echo "== run $run, $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
    status=0
    /usr/bin/time -v -o "$WORK/tally-time-$run.txt" "$TALLY" recon run \
        --ledger "$DATA/ledger.csv" --ledger-layout "$DATA/ledger_layout.toml" \
        --channel "$DATA/channel.csv" --channel-layout "$DATA/channel_layout.toml" \
        --rules "$DATA/rules.toml" --out "$WORK/out-$run" --no-progress \
        --memory-limit "$MEMORY_LIMIT" --threads "$THREADS" || status=$?
    if [ "$status" -gt 1 ]; then echo "tally failed with $status"; exit "$status"; fi
    duckdb_threads=()
    if [ "$THREADS" != 0 ]; then duckdb_threads=(--threads "$THREADS"); fi
    /usr/bin/time -v -o "$WORK/duckdb-time-$run.txt" "$VENV/bin/python" "$HERE/recon_duckdb.py" \
        --ledger "$DATA/ledger.csv" --ledger-layout "$DATA/ledger_layout.toml" \
        --channel "$DATA/channel.csv" --channel-layout "$DATA/channel_layout.toml" \
        --rules "$DATA/rules.toml" --tally-summary "$WORK/out-$run/summary.json" \
        --json "$WORK/duckdb-$run.json" "${duckdb_threads[@]}"
    "$VENV/bin/python" - "$WORK" "$run" <<'PY'
import json, re, sys
work, run = sys.argv[1], sys.argv[2]
def time_file(name):
    text = open(f"{work}/{name}-time-{run}.txt").read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = sum(float(part) * 60 ** index for index, part in enumerate(reversed(wall.split(":"))))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return seconds, rss_kb / 1024 / 1024
tally_wall, tally_rss = time_file("tally")
duck_wall, duck_rss = time_file("duckdb")
duck = json.load(open(f"{work}/duckdb-{run}.json"))
summary = json.load(open(f"{work}/out-{run}/summary.json"))
print(f"tally : {tally_wall:7.2f} s wall (engine {summary['run']['elapsed_seconds']:.2f} s), peak RSS {tally_rss:.2f} GiB, spilled {summary['run']['spilled_bytes'] / 2**30:.2f} GiB")
print(f"duckdb: {duck_wall:7.2f} s wall (query {duck['query_seconds']:.2f} s), peak RSS {duck_rss:.2f} GiB")
print(f"ratio duckdb query / tally wall: {duck['query_seconds'] / tally_wall:.2f}; same counts: {duck.get('same_counts')}")
PY
done
