"""Where the domains are plugged in: their datasets (and later analyses and scenarios).

This is the composition root: interfaces and the demo look things up here, so
no shared service has to import a domain.
"""

from __future__ import annotations

from telereg.core.errors import NotFoundError
from telereg.domains.buildout import contracts as buildout_contracts
from telereg.domains.fraud import contracts as fraud_contracts
from telereg.geography import contracts as geography_contracts
from telereg.ingest.contracts import Contract

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
        raise NotFoundError(f"no dataset named {name!r} (known: {known})") from err
