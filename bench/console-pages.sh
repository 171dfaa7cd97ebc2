#!/usr/bin/env bash
# Times every page of the operations console on a running `tally serve`: signs in with an
# API key (a session cookie, as a browser), finds one of each detail page from the lists
# (a case, a customer, a payment, a merchant, a settlement run, a reconciliation run and
# exception), then fetches each page RUNS times and prints the slowest and the median time
# to the last byte, in milliseconds. Exit code 1 when a page's median is over LIMIT_MS.
#
#   bench/console-pages.sh http://127.0.0.1:8080 tally_… [RUNS] [LIMIT_MS]
set -euo pipefail
base=${1:?base URL, such as http://127.0.0.1:8080}
key=${2:?an API key with every scope (tally demo prints one)}
runs=${3:-5}
limit_ms=${4:-200}
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT

curl -sS -o /dev/null -c "$jar" -b "$jar" --data-urlencode "key=$key" "$base/console/sign-in"

# The first link under `prefix` on `page`.
first_link() {
    curl -sS -b "$jar" "$base$1" | grep -o "href=\"$2[^\"?]*\"" | sed 's/^href="//; s/"$//' \
        | grep -v "^$2\$" | head -n 1 || true
}

pages=(/console/overview /console/cases "/console/cases?status=approved" /console/customers
    /console/payments /console/merchants /console/settlement /console/recon /console/audit
    "/console/audit?log=lookups" /console/rules /console/consortium)
for found in "$(first_link /console/cases /console/cases/)" \
    "$(first_link /console/payments /console/payments/)" \
    "$(first_link /console/merchants /console/merchants/)" \
    "$(first_link /console/settlement /console/settlement/)" \
    "$(first_link /console/recon /console/recon/)"; do
    [ -n "$found" ] && pages+=("$found")
done
run=$(first_link /console/recon /console/recon/)
if [ -n "$run" ]; then
    exception=$(first_link "$run" /console/recon/exceptions/)
    [ -n "$exception" ] && pages+=("$exception")
fi
case_page=$(first_link /console/cases /console/cases/)
if [ -n "$case_page" ]; then
    customer=$(curl -sS -b "$jar" "$base$case_page" | grep -o 'Customer</dt><dd><code>[^<]*' \
        | sed 's/.*<code>//' | head -n 1 || true)
    [ -n "$customer" ] && pages+=("/console/customers/$customer")
fi

over=0
printf '%-62s %8s %8s %s\n' page median_ms max_ms status
for page in "${pages[@]}"; do
    times=()
    status=
    for _ in $(seq "$runs"); do
        out=$(curl -sS -o /dev/null -b "$jar" -w '%{http_code} %{time_total}' "$base$page")
        status=${out% *}
        times+=("$(awk -v t="${out#* }" 'BEGIN { printf "%d", t * 1000 + 0.5 }')")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    median=$(echo "$sorted" | sed -n "$(((runs + 1) / 2))p")
    max=$(echo "$sorted" | tail -n 1)
    flag=
    if [ "$median" -gt "$limit_ms" ]; then
        flag=" OVER ${limit_ms} ms"
        over=1
    fi
    printf '%-62s %8s %8s %s%s\n' "$page" "$median" "$max" "$status" "$flag"
done
exit "$over"
