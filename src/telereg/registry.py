"""Where the domains are plugged in: their datasets and their parts of the demo scenario.

This is the composition root: interfaces and the demo look things up here, so
no shared service has to import a domain.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from telereg.core.errors import NotFoundError
from telereg.core.i18n import N_
from telereg.core.jobs import JobKind
from telereg.core.principal import Principal
from telereg.core.settings import Settings
from telereg.domains.buildout import contracts as buildout_contracts
from telereg.domains.buildout import service as buildout_service
from telereg.domains.buildout import synth as buildout_synth
from telereg.domains.fraud import contracts as fraud_contracts
from telereg.domains.fraud import parameters as fraud_parameters
from telereg.domains.fraud import retention as fraud_retention
from telereg.domains.fraud import service as fraud_service
from telereg.domains.fraud import synth as fraud_synth
from telereg.geography import contracts as geography_contracts
from telereg.ingest.contracts import Contract
from telereg.scenario.runner import Synthesizer

UNKNOWN_DATASET = N_("no dataset named {name} (known: {known})")

CONTRACTS: dict[str, Contract] = {
    c.name: c
    for c in (
        *geography_contracts.CONTRACTS,
        *buildout_contracts.CONTRACTS,
        *fraud_contracts.CONTRACTS,
    )
}


def contract(name: str) -> Contract:
    try:
        return CONTRACTS[name]
    except KeyError as err:
        known = ", ".join(sorted(CONTRACTS))
        raise NotFoundError(UNKNOWN_DATASET.format(name=repr(name), known=known)) from err


#: Each domain's part of the demo scenario, in the order its files must be ingested
#: (cells before the calls that refer to them).
SYNTHESIZERS: tuple[Synthesizer, ...] = (buildout_synth.synthesize, fraud_synth.synthesize)


def _fraud_analyses(
    settings: Settings,
    *,
    principal: Principal,
    since: datetime,  # noqa: ARG001 - its scans run here and count the cases they open
) -> list[str]:
    return fraud_service.run_analyses(settings, principal=principal)


#: Each domain's analyses the demo runs after loading, returning lines for its summary;
#: ``since``: when the loading started (what was opened from then on is this run's).
ANALYSES: dict[str, Callable[..., list[str]]] = {
    "buildout": buildout_service.run_analyses,
    "fraud": _fraud_analyses,
}


def run_analyses(
    settings: Settings, *, principal: Principal, since: datetime
) -> dict[str, list[str]]:
    return {
        domain: run(settings, principal=principal, since=since) for domain, run in ANALYSES.items()
    }


#: Each domain's check of its settings, run when a command or the web app starts, so that a
#: setting no analysis could use stops the program then, not a job later.
SETTINGS_CHECKS: tuple[Callable[[Settings], None], ...] = (fraud_parameters.check_settings,)


def check_settings(settings: Settings) -> None:
    for check in SETTINGS_CHECKS:
        check(settings)


#: Each domain's housekeeping, run when the server starts: data kept past its retention
#: period is removed (each logs its failure rather than stop the server).
HOUSEKEEPING: tuple[Callable[[Settings], None], ...] = (fraud_retention.purge_at_start,)


def keep_house(settings: Settings) -> None:
    for chore in HOUSEKEEPING:
        chore(settings)


#: The kinds of long work that run as jobs (``core.jobs``), by name.
JOB_KINDS: dict[str, JobKind] = {kind.name: kind for kind in (fraud_service.SCAN_JOB,)}
