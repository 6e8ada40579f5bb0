"""The anti-fraud settings' names and defaults: the rules' thresholds and what the features
count as short and as switching together, with the check of a configuration's values.

Kept apart from the analyses (and their libraries), so that a program checks its settings
when it starts without loading them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from telereg.core.errors import ConfigurationError
from telereg.core.settings import Settings

#: Calls shorter than this are "short": a victim hanging up, or a robocall.
SHORT_CALL_S = 30
#: Lines whose first and last call of a day are this close switch on and off together.
COHORT_WINDOW_S = 300
#: A line-day needs this many calls to be compared with others for cohorts.
COHORT_MIN_CALLS = 5
#: Other lines switching with it for the day to count as a cohort day.
COHORT_MIN_PEERS = 2

#: The SIM-box rules' thresholds (``scoring.RULES``); docs/fraud.md gives each one's reason.
SIM_BOX_THRESHOLDS: dict[str, float] = {
    "calls_per_day": 20,
    "out_in_ratio": 10,
    "novelty": 0.8,
    "callees": 50,
    "short_share": 0.4,
    "other_operator_share": 0.5,
    "other_province_share": 0.5,
    "static": 1.0,
    "no_sms": 0,
    "no_data": 0,
    "imei_lines": 10,
    "gateway_tac": 1,
    "cohort_days": 2,
}

#: Abnormal calling of a new card (``cardbreak``).
CARD_THRESHOLDS: dict[str, float] = {
    "card_calls_per_day": 10,
    "card_novelty": 0.7,
    "card_other_province_share": 0.5,
    "card_short_share": 0.4,
}


@dataclass(frozen=True)
class FeatureParameters:
    """What the features count as short, and as switching together: the defaults above,
    each one changeable in the ``fraud_features`` setting (``docs/fraud.md`` gives why)."""

    short_call_s: int = SHORT_CALL_S
    cohort_window_s: int = COHORT_WINDOW_S
    cohort_min_calls: int = COHORT_MIN_CALLS
    cohort_min_peers: int = COHORT_MIN_PEERS

    @classmethod
    def of(cls, overrides: Mapping[str, float]) -> FeatureParameters:
        """The defaults with ``overrides``; an unknown name or a value below 1 is an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown feature parameter(s) {', '.join(unknown)}; "
                f"they are: {', '.join(sorted(known))}",
                where="TELEREG_FRAUD_FEATURES",
            )
        values = {name: int(value) for name, value in overrides.items()}
        low = sorted(name for name, value in values.items() if value < 1)
        if low:
            raise ConfigurationError(
                f"feature parameter(s) {', '.join(low)} must be 1 or more",
                where="TELEREG_FRAUD_FEATURES",
            )
        return cls(**values)


def check_settings(settings: Settings) -> None:
    """Raise for anti-fraud settings no scan could use: unknown rules or feature parameters,
    thresholds below zero. Run when the program starts, and again before a scan."""
    negative = sorted(name for name, value in settings.fraud_rules.items() if float(value) < 0)
    if negative:
        raise ConfigurationError(
            f"rule threshold(s) {', '.join(negative)} below zero; every threshold is 0 or more",
            where="TELEREG_FRAUD_RULES",
        )
    unknown = set(settings.fraud_rules) - set(SIM_BOX_THRESHOLDS) - set(CARD_THRESHOLDS)
    if unknown:
        known = ", ".join([*SIM_BOX_THRESHOLDS, *CARD_THRESHOLDS])
        raise ConfigurationError(
            f"unknown rule(s) {', '.join(sorted(unknown))}; the rules are: {known}",
            where="TELEREG_FRAUD_RULES",
        )
    FeatureParameters.of(settings.fraud_features)  # (raises for an unknown or a bad one)
