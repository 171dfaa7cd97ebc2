#!/usr/bin/env python3
"""Differential check and benchmark of `tally recon run` against DuckDB.

The same classification as tally-recon, written in SQL, on the same files and the same
TOML layouts and rules. Prints the count of every class and DuckDB's wall time, and, given
the summary.json of a tally run, checks that every count is the same (exit 1 otherwise).

Semantics mirrored from crates/recon (see its lib.rs):
  * per key, the first row on each side is its primary; other rows of the key are
    duplicate_in_ledger / duplicate_in_channel (here: count(*) - 1 per key; which row is
    primary does not change the counts when duplicates are copies, as generated);
  * a pair is, in this order: currency_mismatch, amount_mismatch (tolerances),
    status_mismatch (equivalence groups), fee_mismatch (when both sides have a fee), matched;
  * a ledger-only key is timing when its timestamp >= cutoff - window, else missing_in_channel;
    a channel-only key is missing_in_ledger.
Batch (many-to-one) matching is not mirrored here.

Text inputs that DuckDB cannot read as they are (GBK, fixed width) are first converted by
this script to UTF-8 CSV (slicing fixed-width lines by byte, as the engine does); that
conversion is not part of the timed query. UTF-8 CSV and Parquet are read by DuckDB itself,
inside the timed query.
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import tomllib
import zoneinfo

import duckdb

CLASSES = [
    "matched", "missing_in_channel", "missing_in_ledger", "amount_mismatch",
    "status_mismatch", "currency_mismatch", "fee_mismatch", "duplicate_in_ledger",
    "duplicate_in_channel", "timing",
]


def sql_string(text):
    return "'" + text.replace("'", "''") + "'"


def field_list(fields):
    """(name, spec) of every field a layout reads, keys expanded."""
    keys = fields["key"] if isinstance(fields["key"], list) else [fields["key"]]
    out = [(f"key{i}", spec) for i, spec in enumerate(keys)]
    for name in ("amount", "currency", "status", "timestamp", "fee", "batch"):
        if name in fields:
            out.append((name, fields[name]))
    return out, len(keys)


def zone_offset_seconds(zone, cutoff_year=2026):
    if zone.upper() == "UTC" or zone == "Z":
        return 0
    if zone[0] in "+-":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        return sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)
    # A named zone: its offset in the middle of the year (exact for zones without DST,
    # such as Asia/Shanghai; this script does not model DST changes).
    moment = datetime.datetime(cutoff_year, 7, 1, tzinfo=zoneinfo.ZoneInfo(zone))
    return int(moment.utcoffset().total_seconds())


def convert_to_csv(path, layout, columns, work_dir, side):
    """Converts a GBK or fixed-width file to a UTF-8 CSV of the columns the layout reads."""
    encoding = "gbk" if layout.get("encoding", "utf-8").lower() in ("gbk", "gb2312", "gb18030") else "utf-8"
    out_path = os.path.join(work_dir, f"{side}.csv")
    with open(path, "rb") as source, open(out_path, "w", encoding="utf-8", newline="") as target:
        import csv
        writer = csv.writer(target)
        if layout["format"] == "fixed_width":
            writer.writerow([name for name, _ in columns])
            for raw in source:
                raw = raw.rstrip(b"\r\n")
                if not raw:
                    continue
                writer.writerow([
                    raw[spec["start"] - 1: spec["start"] - 1 + spec["width"]].decode(encoding, "replace")
                    for _, spec in columns
                ])
        else:
            target.write(source.read().decode(encoding, "replace"))
    return out_path


def side_relation(con, path, layout, side, work_dir):
    """Creates view `{side}` with key, amount, currency, status, ts, fee."""
    columns, key_count = field_list(layout["fields"])
    fmt = layout["format"]
    needs_conversion = fmt == "fixed_width" or layout.get("encoding", "utf-8").lower() != "utf-8"
    csv_options = layout.get("csv", {})
    if fmt == "parquet":
        source = f"read_parquet({sql_string(path)})"
        column_of = {name: spec["column"] for name, spec in columns if "column" in spec}
    elif fmt == "fixed_width":
        converted = convert_to_csv(path, layout, [(n, s) for n, s in columns if "start" in s], work_dir, side)
        source = f"read_csv({sql_string(converted)}, header=true, all_varchar=true, delim=',', quote='\"')"
        column_of = {name: name for name, spec in columns if "start" in spec}
    else:
        if needs_conversion:
            path = convert_to_csv(path, layout, columns, work_dir, side)
        delimiter = csv_options.get("delimiter", ",")
        quote = csv_options.get("quote", '"')
        header = csv_options.get("header", True)
        source = (
            f"read_csv({sql_string(path)}, header={'true' if header else 'false'}, all_varchar=true, "
            f"delim={sql_string(delimiter)}, quote={sql_string(quote)}, escape={sql_string(quote)}, "
            f"strict_mode=false, null_padding=true)"
        )
        column_of = {}
        for name, spec in columns:
            if "column" in spec:
                column_of[name] = spec["column"]
            elif "index" in spec:
                column_of[name] = f"column{spec['index'] - 1}"
                if header:
                    raise SystemExit("index = N with a header is not mirrored by this script")

    def text(name):
        spec = dict(columns)[name]
        if "value" in spec:
            return sql_string(spec["value"])
        return f"trim(CAST(\"{column_of[name]}\" AS VARCHAR))"

    def amount(name):
        spec = dict(columns)[name]
        unit = spec.get("unit", "minor")
        scale = spec.get("scale", 2) if unit == "major" else spec.get("scale", 0)
        raw = text(name)
        if "thousands_separator" in spec:
            raw = f"replace({raw}, {sql_string(spec['thousands_separator'])}, '')"
        if scale == 0:
            return f"CAST({raw} AS BIGINT)"
        return f"CAST(CAST({raw} AS DECIMAL(38, {scale})) * {10 ** scale} AS BIGINT)"

    def mapped(name, value_sql, upper=False):
        spec = dict(columns)[name]
        mapping = spec.get("map")
        if not mapping:
            return f"upper({value_sql})" if upper else value_sql
        cases = " ".join(f"WHEN {sql_string(k)} THEN {sql_string(v)}" for k, v in mapping.items())
        default = spec.get("default")
        otherwise = sql_string(default) if default else (f"upper({value_sql})" if upper else "NULL")
        return f"CASE {value_sql} {cases} ELSE {otherwise} END"

    key_sql = " || chr(31) || ".join(text(f"key{i}") for i in range(key_count))
    parts = [f"{key_sql} AS key", f"{amount('amount')} AS amount", f"{mapped('currency', text('currency'), True)} AS currency"]
    names = dict(columns)
    parts.append(f"{mapped('status', text('status'))} AS status" if "status" in names else "'success' AS status")
    if "timestamp" in names:
        spec = names["timestamp"]
        offset = zone_offset_seconds(spec.get("time_zone", "UTC"))
        parts.append(
            f"date_diff('second', TIMESTAMP '1970-01-01', strptime({text('timestamp')}, {sql_string(spec['format'])})) - {offset} AS ts"
        )
    else:
        parts.append("CAST(NULL AS BIGINT) AS ts")
    parts.append(f"{amount('fee')} AS fee" if "fee" in names else "CAST(NULL AS BIGINT) AS fee")
    con.execute(f"CREATE OR REPLACE VIEW {side} AS SELECT {', '.join(parts)} FROM {source}")


def classification_sql(rules):
    amount = rules.get("amount", {})
    tolerance = int(amount.get("tolerance_minor", 0))
    per_mille = amount.get("tolerance_per_mille")
    millionths = 0
    if per_mille is not None:
        whole, _, fraction = str(per_mille).partition(".")
        millionths = int(whole or "0") * 1_000_000 + int((fraction + "000000")[:6])
    timing = rules.get("timing", {})
    window = timing.get("window_seconds")
    cutoff = timing.get("cutoff")
    if window is None:
        timing_from = "NULL"
    elif cutoff is not None:
        moment = datetime.datetime.fromisoformat(cutoff.replace("Z", "+00:00"))
        timing_from = str(int(moment.timestamp()) - int(window))
    else:
        timing_from = f"((SELECT max(ts) FROM channel) - {int(window)})"
    status = rules.get("status", {})
    status_check = status.get("check", True)
    groups = status.get("equivalent", [])
    canonical = {}
    for group in groups:
        for name in group:
            canonical[name] = group[0]

    def status_class(column):
        if not canonical:
            return column
        cases = " ".join(f"WHEN {sql_string(k)} THEN {sql_string(v)}" for k, v in canonical.items())
        return f"CASE {column} {cases} ELSE {column} END"

    fee = rules.get("fee", {})
    fee_check = fee.get("check", True)
    fee_tolerance = int(fee.get("tolerance_minor", 0))
    if rules.get("batch", {}).get("enabled", False):
        raise SystemExit("batch matching is not mirrored by this script")
    amount_ok = f"(abs(l.amount - c.amount) <= {tolerance}"
    if millionths:
        amount_ok += f" OR abs(CAST(l.amount AS HUGEINT) - c.amount) * 1000000000 <= abs(CAST(l.amount AS HUGEINT)) * {millionths}"
    amount_ok += ")"
    status_bad = f"{status_class('l.status')} IS DISTINCT FROM {status_class('c.status')}" if status_check else "false"
    fee_bad = (
        f"(l.fee IS NOT NULL AND c.fee IS NOT NULL AND abs(l.fee - c.fee) > {fee_tolerance})" if fee_check else "false"
    )
    return f"""
WITH lg AS (
    SELECT key, count(*) AS n, first(amount) AS amount, first(currency) AS currency,
           first(status) AS status, first(ts) AS ts, first(fee) AS fee
    FROM ledger WHERE key IS NOT NULL AND key <> '' GROUP BY key),
cg AS (
    SELECT key, count(*) AS n, first(amount) AS amount, first(currency) AS currency,
           first(status) AS status, first(ts) AS ts, first(fee) AS fee
    FROM channel WHERE key IS NOT NULL AND key <> '' GROUP BY key),
pairs AS (
    SELECT CASE
        WHEN c.key IS NULL THEN
            CASE WHEN {timing_from} IS NOT NULL AND l.ts >= {timing_from} THEN 'timing' ELSE 'missing_in_channel' END
        WHEN l.key IS NULL THEN 'missing_in_ledger'
        WHEN l.currency <> c.currency THEN 'currency_mismatch'
        WHEN NOT {amount_ok} THEN 'amount_mismatch'
        WHEN {status_bad} THEN 'status_mismatch'
        WHEN {fee_bad} THEN 'fee_mismatch'
        ELSE 'matched' END AS class
    FROM lg l FULL OUTER JOIN cg c ON l.key = c.key)
SELECT class, count(*) AS n FROM pairs GROUP BY class
UNION ALL SELECT 'duplicate_in_ledger', coalesce(sum(n - 1), 0) FROM lg
UNION ALL SELECT 'duplicate_in_channel', coalesce(sum(n - 1), 0) FROM cg
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--ledger-layout", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--channel-layout", required=True)
    parser.add_argument("--rules")
    parser.add_argument("--tally-summary", help="summary.json of a tally run to compare counts with")
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (default: all cores)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 6GB")
    parser.add_argument("--json", help="write counts and timing here")
    arguments = parser.parse_args()

    with open(arguments.ledger_layout, "rb") as file:
        ledger_layout = tomllib.load(file)
    with open(arguments.channel_layout, "rb") as file:
        channel_layout = tomllib.load(file)
    rules = {}
    if arguments.rules:
        with open(arguments.rules, "rb") as file:
            rules = tomllib.load(file)

    con = duckdb.connect()
    if arguments.threads:
        con.execute(f"SET threads = {arguments.threads}")
    if arguments.memory_limit:
        con.execute(f"SET memory_limit = {sql_string(arguments.memory_limit)}")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    with tempfile.TemporaryDirectory(prefix="tally-duckdb-") as work_dir:
        prepare_started = time.perf_counter()
        side_relation(con, arguments.ledger, ledger_layout, "ledger", work_dir)
        side_relation(con, arguments.channel, channel_layout, "channel", work_dir)
        prepare_seconds = time.perf_counter() - prepare_started
        started = time.perf_counter()
        rows = con.execute(classification_sql(rules)).fetchall()
        seconds = time.perf_counter() - started
    counts = {name: 0 for name in CLASSES}
    for name, count in rows:
        counts[name] += int(count)
    print(f"duckdb {duckdb.__version__}, {threads} threads: query {seconds:.2f} s (preparation {prepare_seconds:.2f} s)")
    for name in CLASSES:
        print(f"  {name:<22} {counts[name]:>12}")
    result = {"duckdb_version": duckdb.__version__, "threads": threads, "query_seconds": seconds,
              "preparation_seconds": prepare_seconds, "classes": counts}
    status = 0
    if arguments.tally_summary:
        with open(arguments.tally_summary) as file:
            summary = json.load(file)
        tally_counts = {name: summary["classes"][name]["count"] for name in CLASSES}
        differences = {name: (tally_counts[name], counts[name]) for name in CLASSES if tally_counts[name] != counts[name]}
        result["tally_seconds"] = summary.get("run", {}).get("elapsed_seconds")
        result["same_counts"] = not differences
        if differences:
            print("DIFFERENT counts (tally, duckdb):", differences)
            status = 1
        else:
            print("same counts as tally for every class")
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump(result, file, indent=2)
    sys.exit(status)


if __name__ == "__main__":
    main()
