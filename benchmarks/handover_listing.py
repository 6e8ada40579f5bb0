"""How long listing the kept hand-over packages takes (``handover.packages``), for N packages.

Prepares a fresh data dir (state DB, standard agencies), hands over ``--packages`` packages
of ``--cases`` domain cases each to POLICE-AF, then lists them as an analyst (every agency's)
and as the POLICE-AF liaison, ``--repeat`` times each, and prints the median and the best.

    .venv/bin/python benchmarks/handover_listing.py --packages 200
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from telereg.cases import service as cases
from telereg.core.db import dispose_engines, session_scope
from telereg.core.permissions import Role
from telereg.core.principal import Principal, cli_principal
from telereg.core.settings import load_settings
from telereg.domains.fraud import casework, handover
from telereg.scenario.demo import prepare

ROOT = cli_principal("benchmark")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--cases", type=int, default=5, help="cases per package")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(data_dir=Path(folder) / "var")
        prepare(settings, principal=ROOT)
        made = time.perf_counter()
        for number in range(args.packages):
            with session_scope(settings) as session:
                new = [
                    cases.NewCase(
                        f"domain:bench-{number}-{i}.example",
                        "lookalike domain",
                        {"type": "domain", "domain": f"bench-{number}-{i}.example"},
                    )
                    for i in range(args.cases)
                ]
                opened = cases.open_cases(
                    session, principal=ROOT, workflow=casework.WORKFLOW, new=new
                )
                ids = [c.id for c in opened]
                casework.move_cases(
                    session, principal=ROOT, case_ids=ids, to="in_review", note="bench"
                )
                handover.export(
                    session,
                    settings=settings,
                    principal=ROOT,
                    case_ids=ids,
                    agency_code="POLICE-AF",
                    note="benchmark",
                )
        print(
            f"{args.packages} packages of {args.cases} cases made in "
            f"{time.perf_counter() - made:.1f} s"
        )
        liaison = Principal(
            name="bench-liaison", role=Role.LIAISON, user_id=None, agency_code="POLICE-AF"
        )
        for who, principal in (("analyst (all agencies)", ROOT), ("liaison (POLICE-AF)", liaison)):
            times = []
            for _ in range(args.repeat):
                with session_scope(settings) as session:
                    start = time.perf_counter()
                    listed = handover.packages(session, settings, principal=principal)
                    times.append(time.perf_counter() - start)
            assert len(listed) == args.packages, len(listed)
            print(
                f"list as {who}: {len(listed)} packages, median "
                f"{statistics.median(times) * 1000:.1f} ms, best {min(times) * 1000:.1f} ms "
                f"({args.repeat} runs)"
            )
        dispose_engines()


if __name__ == "__main__":
    main()
