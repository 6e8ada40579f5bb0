"""Small reference lists shipped as documented CSV files (lines starting with ``#`` are notes)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"


def read_documented_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file whose leading ``#`` lines state its source."""
    with path.open(encoding="utf-8", newline="") as fh:
        body = [line for line in fh if not line.startswith("#")]
    return list(csv.DictReader(body))


@dataclass(frozen=True)
class GatewayModel:
    """A multi-SIM gateway (GOIP) or SIM-bank model, known by its TAC."""

    tac: str
    vendor: str
    model: str
    ports: int


@cache
def gateway_tacs(path: Path | None = None) -> tuple[GatewayModel, ...]:
    """The gateway models anti-fraud work watches for (``path``: a replacement list)."""
    rows = read_documented_csv(path or DATA / "gateway_tacs.csv")
    return tuple(
        GatewayModel(r["tac"].strip(), r["vendor"].strip(), r["model"].strip(), int(r["ports"]))
        for r in rows
    )
