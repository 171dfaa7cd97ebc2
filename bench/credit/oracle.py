"""Writes the numpy-financial oracle table for tally-credit's differential test.

Usage: python3 bench/credit/oracle.py [OUT.csv]
(default crates/credit/tests/data/numpy_financial_oracle.csv). Creates bench/credit/.venv
and installs requirements.txt into it when numpy-financial is not importable.

For each case (model, principal, rate, term) it writes one row per installment:
- the schedule built independently here with Python's decimal module, rounding half-up to
  the cent, under the rules tally-credit states (flat fee on the original principal;
  annuity and equal principal with interest on the declining balance at rate / 12; principal
  split truncated with the remainder on the last installment; an annuity's last installment
  takes the remaining balance);
- for annuities, numpy-financial's pmt, ipmt and ppmt of the exact plan (repr floats);
- numpy-financial's irr of the rounded schedule's cash flows (periodic rate).
"""

import csv
import os
import subprocess
import sys
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def ensure_numpy_financial():
    try:
        import numpy_financial  # noqa: F401
        return
    except ImportError:
        pass
    venv = os.path.join(HERE, ".venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([python, "-m", "pip", "install", "-q", "-r",
                               os.path.join(HERE, "requirements.txt")])
    os.execv(python, [python] + sys.argv)


ensure_numpy_financial()
import numpy_financial as npf  # noqa: E402

CENT = Decimal("0.01")
PRINCIPALS = ["0.01", "1.00", "123.45", "2500.00", "9999.99", "50000.00", "200000.00"]
ANNUAL_RATES = ["0", "0.0365", "0.075", "0.0824", "0.12", "0.18", "0.2399", "0.36"]
FLAT_RATES = ["0", "0.005", "0.007", "0.008", "0.012"]
TERMS = [1, 3, 6, 12, 24]


def round_cent(value):
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def split(principal, periods):
    cents = int(principal * 100)
    base = cents // periods
    parts = [Decimal(base) / 100] * periods
    parts[-1] = Decimal(cents - base * (periods - 1)) / 100
    return parts


def flat_fee(principal, rate, periods):
    fee = round_cent(principal * rate)
    return [(part, fee, Decimal(0)) for part in split(principal, periods)]


def equal_principal(principal, annual, periods):
    monthly = annual / 12
    balance = principal
    rows = []
    for part in split(principal, periods):
        interest = round_cent(balance * monthly)
        balance -= part
        rows.append((part, Decimal(0), interest))
    return rows


def annuity(principal, annual, periods):
    monthly = annual / 12
    if monthly == 0:
        payment = round_cent(principal / periods)
    else:
        growth = (1 + monthly) ** periods
        payment = round_cent(principal * monthly * growth / (growth - 1))
    balance = principal
    rows = []
    for period in range(1, periods + 1):
        interest = round_cent(balance * monthly)
        if period == periods:
            part = balance
        else:
            part = min(max(payment - interest, Decimal(0)), balance)
        balance -= part
        rows.append((part, Decimal(0), interest))
    return rows


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        ROOT, "crates", "credit", "tests", "data", "numpy_financial_oracle.csv")
    cases = []
    for principal in PRINCIPALS:
        for periods in TERMS:
            for rate in ANNUAL_RATES:
                cases.append(("annuity", principal, rate, periods))
                cases.append(("equal_principal", principal, rate, periods))
            for rate in FLAT_RATES:
                cases.append(("flat_fee", principal, rate, periods))
    # The mortgage-sized figure: pmt(0.075/12, 180, 200000).
    cases.append(("annuity", "200000.00", "0.075", 180))
    builders = {"annuity": annuity, "equal_principal": equal_principal, "flat_fee": flat_fee}
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["model", "principal", "rate", "periods", "period", "principal_part",
                         "fee", "interest", "numpy_payment", "numpy_interest",
                         "numpy_principal", "numpy_irr"])
        for model, principal_text, rate_text, periods in cases:
            principal = Decimal(principal_text)
            rate = Decimal(rate_text)
            rows = builders[model](principal, rate, periods)
            flows = [-float(principal)] + [float(p + f + i) for p, f, i in rows]
            irr = npf.irr(flows) if any(flow != 0 for flow in flows[1:]) else 0.0
            for period, (part, fee, interest) in enumerate(rows, start=1):
                numpy_columns = ["", "", ""]
                if model == "annuity":
                    monthly = float(rate) / 12
                    numpy_columns = [
                        repr(float(-npf.pmt(monthly, periods, float(principal)))),
                        repr(float(-npf.ipmt(monthly, period, periods, float(principal)))),
                        repr(float(-npf.ppmt(monthly, period, periods, float(principal)))),
                    ]
                writer.writerow([model, principal_text, rate_text, periods, period,
                                 str(part), str(fee), str(interest)] + numpy_columns
                                + [repr(float(irr))])
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
