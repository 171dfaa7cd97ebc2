#!/usr/bin/env bash
# `tally bench checkout` with the bank simulator and `tally serve` each in its own process,
# as the issue's benchmark asks: starts `tally channel simulate`, then `tally serve` on a
# fresh database pointed at it, makes an admin key, and runs the benchmark against both with
# `--url`. Prints the benchmark's figures; the three processes share the machine's cores.
#
#   bench/checkout-processes.sh [DATABASE_URL] [extra `tally bench checkout` arguments]
#   bench/checkout-processes.sh sqlite:///var/tmp/tally-checkout.db --duration-seconds 10
#   bench/checkout-processes.sh postgres://postgres@127.0.0.1:5432/test
# TALLY_BIN picks the binary (default target/release/tally); BANK_LATENCY_MS adds latency.
set -euo pipefail
tally=${TALLY_BIN:-target/release/tally}
database=${1:-sqlite:///var/tmp/tally-checkout.db}
shift || true
work=$(mktemp -d)
bank_port=${BANK_PORT:-17070}
serve_port=${SERVE_PORT:-18080}
secret=bench-bank-secret
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

case "$database" in
sqlite:*)
    path=${database#sqlite://}
    path=${path#sqlite:}
    rm -f "$path" "$path-wal" "$path-shm"
    ;;
postgres*)
    # A fresh schema of its own, dropped at the end.
    schema=tally_bench_$$
    psql "$database" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema"
    database="$database?options=-c%20search_path%3D$schema"
    trap 'cleanup; psql "${1:-}" -qc "DROP SCHEMA IF EXISTS '"$schema"' CASCADE" >/dev/null 2>&1 || true' EXIT
    ;;
esac

"$tally" channel simulate --listen "127.0.0.1:$bank_port" --secret "$secret" \
    --latency-ms "${BANK_LATENCY_MS:-0}" >"$work/bank.log" 2>&1 &
pids+=($!)

cat >"$work/tally.toml" <<TOML
[server]
listen = "127.0.0.1:$serve_port"
[database]
url = "$database"
[payments]
channel_url = "http://127.0.0.1:$bank_port/"
channel_secret = "$secret"
[privacy]
active_encryption_key = "bench"
blind_index_key = "BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgY="
[privacy.encryption_keys]
bench = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU="
TOML
"$tally" migrate --config "$work/tally.toml" >/dev/null
key=$("$tally" keys create --config "$work/tally.toml" --name bench --scope admin 2>/dev/null | grep -o 'tally_[A-Za-z0-9_-]*' | head -n 1)
"$tally" serve --config "$work/tally.toml" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$serve_port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done

"$tally" bench checkout --url "http://127.0.0.1:$serve_port" --api-key "$key" \
    --bank-url "http://127.0.0.1:$bank_port/" --bank-secret "$secret" "$@"
