"""What a scan says about how it scored lines, as message templates.

The scan's summary keeps the note in English (the API and the CLI show it so);
the dashboard shows it in the reader's language (``core.i18n.localise``).
"""

from __future__ import annotations

from telereg.core.i18n import N_

RULES_ONLY = N_("rules only: no police feedback for earlier months")
RULES_AND_MODEL = N_(
    "rules and model ({positives} confirmed lines of {period}, "
    "{unlabelled} sharing their handsets left out)"
)
