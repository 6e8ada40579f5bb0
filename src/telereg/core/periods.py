"""Periods: the calendar months data are reported and analysed by, written ``YYYY-MM``."""

from __future__ import annotations

import re

#: A month, unanchored (for building patterns).
MONTH = r"[0-9]{4}-(0[1-9]|1[0-2])"
#: A month as a query or form field gives it, and one that may be left empty.
MONTH_FIELD = rf"^{MONTH}$"
OPTIONAL_MONTH_FIELD = rf"^({MONTH})?$"
_MONTH = re.compile(MONTH)


def is_month(text: str) -> bool:
    """Whether ``text`` is a month written ``YYYY-MM`` (``2021-11``; not ``2021-13``)."""
    return _MONTH.fullmatch(text) is not None
