"""Run the demo scenario: generate each domain's operator files, ingest them for real."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.ingest.contracts import Contract
from telereg.ingest.service import SubmissionRecord, ingest_file
from telereg.scenario.files import OperatorFile
from telereg.scenario.model import Province, Scale, build_province

Synthesizer = Callable[[Province, Path], list[OperatorFile]]


@dataclass
class ScenarioSummary:
    scale: str
    seed: int
    files: int = 0
    records: list[SubmissionRecord] = field(default_factory=list)
    truth_file: Path | None = None

    @property
    def rows_accepted(self) -> int:
        return sum(r.rows_accepted for r in self.records)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.records)

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.status] = counts.get(record.status, 0) + 1
        return counts


def scenario_dir(settings: Settings, scale: Scale, seed: int) -> Path:
    return settings.data_dir / "scenario" / f"{scale.value}-seed{seed}"


def run_scenario(
    settings: Settings,
    *,
    principal: Principal,
    scale: Scale,
    seed: int,
    synthesizers: Sequence[Synthesizer],
    contracts: dict[str, Contract],
    on_file: Callable[[OperatorFile, int, int], None] | None = None,
) -> ScenarioSummary:
    """Generate the province's files and ingest each through the real ingest path.

    Files are written under ``<data_dir>/scenario/<scale>-seed<seed>/operators``
    and the ground truth under ``…/truth``; the truth is never ingested.
    Running it again ingests nothing new: the same bytes are recognised.
    """
    root = scenario_dir(settings, scale, seed)
    province = build_province(
        region_code=settings.region_code, scale=scale, seed=seed, out_dir=root
    )
    files: list[OperatorFile] = []
    for synthesize in synthesizers:
        files.extend(synthesize(province, root / "operators"))
    summary = ScenarioSummary(scale=scale.value, seed=seed, files=len(files))
    summary.truth_file = province.write_truth()
    for index, item in enumerate(files):
        if on_file:
            on_file(item, index, len(files))
        summary.records.append(
            ingest_file(
                settings,
                principal=principal,
                contract=contracts[item.dataset],
                path=item.path,
                filename=item.path.name,
                operator=item.operator,
                period=item.period,
                crs=item.crs,
            )
        )
    return summary
