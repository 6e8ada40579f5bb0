"""Two SIM-box scorers over line features: transparent rules, and a model learned from feedback.

The rule score adds the points of every rule a line meets; each rule's
threshold is a setting (``fraud_rules``) and its rationale is written beside
it here and in ``docs/fraud.md``. A line is a suspect when its score reaches
``fraud_rule_score_threshold`` *and* it shows a device signal (an IMEI shared
by many lines, a listed gateway model, or a cohort), because people who call
a lot are many, while gateways are what these signals find.

The learned scorer is gradient boosting (LightGBM) trained on an earlier period's
features with the police's confirmed numbers as positives, its probabilities
calibrated by cross-validation (Platt scaling). Every suspect carries the reasons
for its score: the rules it met, and the features that raised its model score most
(their exact Shapley contributions through the trees, in log-odds).
"""

from __future__ import annotations

import operator as op
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold

from telereg.domains.fraud.features import FEATURES
from telereg.domains.fraud.parameters import SIM_BOX_THRESHOLDS


@dataclass(frozen=True)
class Rule:
    name: str
    feature: str
    compare: Callable[[Any, Any], Any]
    points: float
    #: the rule says something about the device, not just the calling
    device: bool = False


#: Points per rule. Thresholds are settings (``fraud_rules``); see docs/fraud.md for why.
RULES = (
    Rule("calls_per_day", "calls_per_day", op.ge, 2.0),
    Rule("out_in_ratio", "out_in_ratio", op.ge, 1.5),
    Rule("novelty", "novelty", op.ge, 1.0),
    Rule("callees", "callees", op.ge, 1.0),
    Rule("short_share", "short_share", op.ge, 1.0),
    Rule("other_operator_share", "other_operator_share", op.ge, 0.5),
    Rule("other_province_share", "other_province_share", op.ge, 1.0),
    Rule("static", "radius_km", op.le, 0.5),
    Rule("no_sms", "sms", op.le, 1.0),
    Rule("no_data", "data_days", op.le, 1.0),
    Rule("imei_lines", "imei_lines", op.ge, 2.0, device=True),
    Rule("gateway_tac", "gateway_tac", op.ge, 3.0, device=True),
    Rule("cohort_days", "cohort_days", op.ge, 2.0, device=True),
)

#: Fewer confirmed lines than this and no model is trained (its probabilities would mislead).
MIN_POSITIVES = 10


def rule_scores(features: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """``features`` with ``rule_score``, ``rule_mask`` (bit i: ``RULES[i]`` met) and
    ``device_signal``; :func:`with_rule_names` spells the mask out for the rows shown."""
    limits = {**SIM_BOX_THRESHOLDS, **thresholds}
    # Accumulated rule by rule: a lines-by-rules matrix and its products cost more than
    # the comparisons themselves.
    score = np.zeros(len(features))
    mask = np.zeros(len(features), dtype=np.int64)
    device = np.zeros(len(features), dtype=bool)
    for i, rule in enumerate(RULES):
        values = features[rule.feature].to_numpy(dtype=float, na_value=np.nan)
        met = np.asarray(rule.compare(values, float(limits[rule.name])), dtype=bool)
        score += met * rule.points
        mask |= met.astype(np.int64) << i
        if rule.device:
            device |= met
    # Only columns are added, so the features' arrays are shared, not copied (a deep copy,
    # or ``assign``, of millions of lines takes longer than the scoring).
    scored = features.copy(deep=False)
    scored["rule_score"] = score
    scored["rule_mask"] = mask
    scored["device_signal"] = device
    return scored


def with_rule_names(scored: pd.DataFrame) -> pd.DataFrame:
    """``scored`` with ``rules``: the names of the rules each row met."""
    named = scored.copy()
    named["rules"] = [
        [rule.name for i, rule in enumerate(RULES) if int(mask) >> i & 1]
        for mask in named["rule_mask"]
    ]
    return named


def rule_suspects(scored: pd.DataFrame, threshold: float) -> pd.Series:
    return (scored["rule_score"] >= threshold) & scored["device_signal"]


#: A feature's contribution (log-odds) below this is not named as a reason.
MIN_REASON = 0.05


@dataclass
class LearnedScorer:
    """Gradient boosting over :data:`FEATURES`, its output calibrated to a probability."""

    model: CalibratedClassifierCV
    medians: pd.Series
    positives: int
    negatives: int
    #: lines left out of training: they shared handsets with confirmed lines
    unlabelled: int = 0

    def probability(self, features: pd.DataFrame) -> np.ndarray:
        result: np.ndarray = self.model.predict_proba(_matrix(features))[:, 1]
        return result

    def explain(self, features: pd.DataFrame, top: int = 4) -> list[list[tuple[str, float]]]:
        """Per row, the features that raised its score most, with their contributions.

        Each is the feature's Shapley value through the boosted trees (log-odds; the
        calibration that turns the score into a probability is monotonic). A feature the
        row lacks (a radius where no cell was located) is never a reason.
        """
        booster = self.model.calibrated_classifiers_[0].estimator
        contributions = np.asarray(booster.predict(_matrix(features), pred_contrib=True))
        raised = np.where(features[list(FEATURES)].notna().to_numpy(), contributions[:, :-1], 0.0)
        order = np.argsort(-raised, axis=1)[:, :top]
        return [
            [
                (FEATURES[j], round(float(raised[i, j]), 2))
                for j in order[i]
                if raised[i, j] >= MIN_REASON
            ]
            for i in range(len(features))
        ]


def train(
    history: pd.DataFrame,
    confirmed: set[str],
    *,
    unlabelled: Collection[str] = (),
    seed: int = 0,
) -> LearnedScorer | None:
    """Fit on an earlier period's line features; ``confirmed``: line tokens the police confirmed.

    Lines in ``unlabelled`` are left out: neither confirmed nor to be taken as clean.

    The rows are put in the order of their features first, then drawn into the
    calibration's folds by a seeded shuffle: any order of the tokens changes with the
    pseudonym key, so the same calls would otherwise train a different model under each
    key.
    """
    left_out = history["line"].isin(unlabelled) & ~history["line"].isin(confirmed)
    history = history[~left_out]
    history = history.assign(_confirmed=history["line"].isin(confirmed)).sort_values(
        [*FEATURES, "_confirmed"], kind="stable", ignore_index=True
    )
    labels = history.pop("_confirmed").to_numpy()
    positives = int(labels.sum())
    negatives = int((~labels).sum())
    if positives < MIN_POSITIVES or negatives < MIN_POSITIVES:
        return None
    booster = LGBMClassifier(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=20,
        # Each tree sees 60 % of the features: where one feature alone separates the
        # history, the model still learns what the others say, and its reasons name them.
        colsample_bytree=0.6,
        reg_lambda=1.0,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )
    # Shuffled folds: the rows are in feature order, and folds cut from it in blocks would
    # each calibrate on a range of the first feature its booster never saw. One booster,
    # fitted on all the history, is calibrated on the folds' held-out predictions
    # (``ensemble=False``): its trees are the ones the reasons are read from. Platt
    # scaling rather than isotonic: with few confirmed lines, isotonic steps put most
    # lines at exactly 0 or 1.
    folds = StratifiedKFold(min(3, positives), shuffle=True, random_state=seed)
    model = CalibratedClassifierCV(booster, method="sigmoid", cv=folds, ensemble=False)
    model.fit(_matrix(history), labels)
    return LearnedScorer(
        model,
        history[list(FEATURES)].astype(float).median(),
        positives,
        negatives,
        int(left_out.sum()),
    )


def _matrix(features: pd.DataFrame) -> np.ndarray:
    matrix: np.ndarray = features[list(FEATURES)].astype(float).to_numpy()
    return matrix
