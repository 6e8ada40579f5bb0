"""Periods: the calendar months data are reported and analysed by, written ``YYYY-MM``."""

from __future__ import annotations

import re

from telereg.core.i18n import N_

#: A month, unanchored (for building patterns).
MONTH = r"[0-9]{4}-(0[1-9]|1[0-2])"
#: A month as a query or form field gives it, and one that may be left empty.
MONTH_FIELD = rf"^{MONTH}$"
OPTIONAL_MONTH_FIELD = rf"^({MONTH})?$"
_MONTH = re.compile(MONTH)
#: Written as a month, whatever the month's number.
_MONTH_FORM = re.compile(r"[0-9]{4}-[0-9]{2}")

NOT_A_MONTH = N_("period {period} is not a month: write it YYYY-MM, e.g. 2021-11")
NO_SUCH_MONTH = N_("period {period} is not a valid month: the month is 01 to 12")


def is_month(text: str) -> bool:
    """Whether ``text`` is a month written ``YYYY-MM`` (``2021-11``; not ``2021-13``)."""
    return _MONTH.fullmatch(text) is not None


def month_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a month ``YYYY-MM``, in a sentence; None if nothing."""
    if is_month(text):
        return None
    template = NO_SUCH_MONTH if _MONTH_FORM.fullmatch(text) else NOT_A_MONTH
    return template.format(period=repr(text[:20]))
