"""Anti-fraud quality: precision and recall per planted pattern, on a seed the rules were not
tuned on.

Builds the demo province at the given scale and seed in a temporary data dir, ingests it
through the real ingest path, scans the latest month and compares with the ground truth.

    .venv/bin/python benchmarks/fraud_quality.py --scale medium --seed 7
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from telereg import registry
from telereg.core import engine
from telereg.core.db import session_scope
from telereg.core.principal import cli_principal
from telereg.core.settings import load_settings
from telereg.domains.fraud import service
from telereg.domains.fraud.evaluation import (
    calibration,
    evaluate,
    recall_by_gateway,
    ring_quality,
)
from telereg.scenario.demo import prepare
from telereg.scenario.model import PERIODS, Scale
from telereg.scenario.runner import run_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=[s.value for s in Scale], default="medium")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    principal = cli_principal("bench")
    with tempfile.TemporaryDirectory(prefix="telereg-fraud-") as tmp:
        settings = load_settings(data_dir=Path(tmp) / "var")
        prepare(settings, principal=principal)
        start = time.perf_counter()
        summary = run_scenario(
            settings,
            principal=principal,
            scale=Scale(args.scale),
            seed=args.seed,
            synthesizers=registry.SYNTHESIZERS,
            contracts=registry.CONTRACTS,
        )
        loaded = time.perf_counter() - start
        period = PERIODS[-1]
        start = time.perf_counter()
        with session_scope(settings) as session:
            scan = service.scan(session, settings=settings, principal=principal, period=period)
        scanned = time.perf_counter() - start
        truth = json.loads(Path(summary.truth_file or "").read_text())
        scores = evaluate(settings, truth, period)
        by_gateway = recall_by_gateway(settings, truth, period)
        # Every line's probability (the scan stores only the suspects'): scored again.
        with session_scope(settings) as session:
            scored, _suspects, _note = service._score_lines(
                engine.connect(settings), session, settings, period
            )
        calibrated = calibration(settings, truth, period, scored)
        rings = ring_quality(settings, truth, period)
    print(
        f"scale {args.scale}, seed {args.seed}: {scan.lines:,} lines scanned in {scanned:.1f} s "
        f"(generate and ingest {loaded:.0f} s); {scan.model}"
    )
    print("| pattern | planted | found | correct | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for pattern, score in scores.items():
        print(
            f"| {pattern} | {score.planted} | {score.found} | {score.hits} | "
            f"{score.precision:.3f} | {score.recall:.3f} |"
        )
    print()
    print("SIM-box recall by kind of gateway (rules or model):")
    print("| gateways | planted lines | found | recall |")
    print("|---|---:|---:|---:|")
    for group, score in by_gateway.items():
        print(f"| {group} | {score.planted} | {score.hits} | {score.recall:.3f} |")
    print(
        f"\nRings: {rings.communities} communities of two or more lines; purity "
        f"{rings.purity:.3f}, completeness {rings.completeness:.3f}; {rings.mixed} join lines "
        "of two or more planted groups"
    )
    if calibrated is None:
        print("\nno model was trained (too little police feedback)")
        return
    brier, bands = calibrated
    print(f"\nThe model's probabilities against the planted fraud lines: Brier score {brier:.4f}")
    print("| probability | lines | mean probability | share planted |")
    print("|---|---:|---:|---:|")
    for band in bands:
        print(
            f"| {band.low:.2f}–{band.high:.2f} | {band.lines:,} | "
            f"{band.mean_probability:.3f} | {band.fraud_share:.3f} |"
        )


if __name__ == "__main__":
    main()
