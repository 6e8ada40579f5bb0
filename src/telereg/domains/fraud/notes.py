"""What a scan says, as message templates: how it scored lines, and its cases' titles.

The scan's summary and the cases keep these in English (the API and the CLI
show them so); pages show them in the reader's language (``core.i18n.localise``).
"""

from __future__ import annotations

from telereg.core.i18n import N_

RULES_ONLY = N_("rules only: no police feedback for earlier months")
RULES_AND_MODEL = N_(
    "rules and model ({positives} confirmed lines of {period}, "
    "{unlabelled} sharing their handsets left out)"
)
SIM_BOX_CASE = N_("SIM box suspect {operator} · score {score}")
CARD_CASE = N_("Card-breaking risk {operator} · outlet {outlet}")
DOMAIN_CASE = N_("Fraud domain {domain}")
IDENTITY_CASE = N_("Holder likely not the user {operator} · card sold {day}")
ID_LIMIT_CASE = N_("ID number over the card limit {operator} · {cards} cards (limit {limit})")
