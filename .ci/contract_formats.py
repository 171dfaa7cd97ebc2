"""Formats of Tally's OpenAPI document that a JSON Schema pattern cannot spell out, for the
contract test (`.ci/contract`): schemathesis draws values of these formats from the
strategies registered here, so that its schema-valid requests are the ones Tally accepts."""

import datetime

import schemathesis
from hypothesis import strategies as st

# ISO 7064 MOD 11-2, as `tally_privacy::identity::normalise_national_id` checks it.
NATIONAL_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
NATIONAL_ID_CHECK_CHARACTERS = "10X98765432"


@st.composite
def national_ids(draw):
    """A PRC resident identity number: six digits of region, a real birth date from 1900
    to 2099, three digits of sequence and the check character of the seventeen before it."""
    region = draw(st.from_regex(r"[0-9]{6}", fullmatch=True))
    birth = draw(
        st.dates(
            min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2099, 12, 31)
        )
    )
    sequence = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    digits = region + birth.strftime("%Y%m%d") + sequence
    total = sum(int(digit) * weight for digit, weight in zip(digits, NATIONAL_ID_WEIGHTS))
    return digits + NATIONAL_ID_CHECK_CHARACTERS[total % 11]


schemathesis.openapi.format("prc-resident-identity-number", national_ids())
