"""Words shown from data (roles, statuses, error titles), marked for translation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from telereg.core import accounts, i18n
from telereg.core.i18n import N_, localise
from telereg.core.models import Agency, Operator

ROLE_NAMES = (N_("admin"), N_("analyst"), N_("operator"), N_("liaison"), N_("viewer"))
SUBMISSION_STATUSES = (N_("accepted"), N_("partial"), N_("rejected"))
CASE_STATUSES = (N_("open"), N_("in_review"), N_("referred"), N_("resolved"), N_("closed"))
PLACE_CATEGORIES = (
    N_("hospital"),
    N_("university"),
    N_("scenic"),
    N_("transport"),
    N_("government"),
    N_("other"),
)
TARGET_INDICATORS = (
    N_("new_5g_sites"),
    N_("corridor_coverage"),
    N_("key_area_coverage"),
    N_("gigabit_coverage"),
    N_("key_place_coverage"),
)
OBSTACLE_KINDS = (N_("planning"), N_("power"), N_("land"), N_("approval"), N_("works"))
#: Values of the build-out datasets' enumerations → the words shown for them.
PROJECT_STATUSES = {
    "planned": N_("Planned"),
    "under_construction": N_("Under construction"),
    "in_service": N_("In service"),
    "completed": N_("Completed"),
    "accepted": N_("Accepted on inspection"),
}
#: Kinds of job (``core.jobs``) → the words shown for them.
JOB_KINDS = {"fraud.scan": N_("Fraud scan")}
JOB_STATUSES = (
    N_("queued"),
    N_("running"),
    N_("succeeded"),
    N_("failed"),
    N_("interrupted"),
    N_("cancelled"),
)
#: Audit actions → what the audit page says they did (it shows the code beside them).
AUDIT_ACTIONS = {
    "auth.login": N_("signed in"),
    "auth.logout": N_("signed out"),
    "auth.login_failed": N_("sign-in failed"),
    "auth.locked": N_("account locked after failed sign-ins"),
    "auth.refused_locked": N_("sign-in refused: account locked"),
    "auth.confirm_failed": N_("wrong current password given"),
    "data.downloaded": N_("data downloaded"),
    "auth.throttled": N_("sign-ins from a client slowed down"),
    "users.add": N_("user added"),
    "users.disable": N_("user disabled"),
    "users.enable": N_("user enabled"),
    "users.set_password": N_("password set"),
    "users.change_password": N_("own password changed"),
    "tokens.issue": N_("API token issued"),
    "tokens.revoke": N_("API token revoked"),
    "operators.add": N_("operator added"),
    "agencies.add": N_("agency added"),
    "privacy.reidentify": N_("number re-identified"),
    "privacy.reidentify_refused": N_("re-identification refused"),
    "privacy.approval_requested": N_("approval to re-identify requested"),
    "privacy.approval_granted": N_("re-identification approved"),
    "privacy.approval_refused": N_("re-identification request refused"),
    "privacy.approval_withdrawn": N_("re-identification approval withdrawn"),
    "privacy.approval_decision_refused": N_("decision on a re-identification request refused"),
    "privacy.approval_request_refused": N_("request to re-identify refused"),
    "privacy.approval_withdrawal_refused": N_("withdrawal of a re-identification request refused"),
    "ingest.submit": N_("file submitted"),
    "ingest.reinstate": N_("replaced submission put back in use"),
    "fraud.scan": N_("fraud scan run"),
    "fraud.handover": N_("cases handed over"),
    "fraud.handover.fetched": N_("hand-over package downloaded"),
    "fraud.handover.checked": N_("hand-over package checked"),
    "fraud.handover.refused": N_("hand-over package refused"),
    "fraud.handover.purged": N_("hand-over package removed under the retention policy"),
    "job.submitted": N_("job started"),
    "audit.exported": N_("audit log exported"),
}
#: The steps of a case's history about approvals to re-identify its values → their words.
APPROVAL_STEPS = {
    "approval_requested": N_("approval to re-identify its values asked for"),
    "approval_granted": N_("re-identification approved"),
    "approval_refused": N_("re-identification request refused"),
    "approval_withdrawn": N_("re-identification approval withdrawn"),
}
#: The kinds of case (``cases.<kind>.<state>`` actions) → the words shown for them.
AUDIT_CASE_KINDS = {"fraud_suspect": N_("fraud case"), "site_obstacle": N_("site obstacle case")}
_AUDIT_CASE_OPENED = N_("{case} opened")
_AUDIT_CASE_STEP = N_("{case} moved to {state}")
_AUDIT_JOB_STEP = N_("job {status}")
#: ``core.jobs``' fixed messages, word for word (a test keeps them in step).
JOB_MESSAGES = (
    N_(
        "The job's process ended without recording a result (killed, out of memory or the "
        "machine restarted). Start it again."
    ),
    N_("Cancelled before it finished. Start it again if it is still needed."),
)
#: The steps a job reports (a fraud scan's: ``fraud.service.SCAN_STAGES``) → the words shown.
JOB_STAGES = {
    "lines": N_("scoring lines"),
    "cards": N_("card-breaking risks"),
    "domains": N_("scoring domains"),
    "rings": N_("linking rings"),
    "store": N_("storing the results"),
    "cases": N_("opening cases"),
}
#: What a job's result holds: key → the words shown for it.
JOB_RESULT_LABELS = {
    "period": N_("Month"),
    "lines": N_("Lines scanned"),
    "sim_box_suspects": N_("SIM-box suspects"),
    "model": N_("Scorer"),
    "new_card_risks": N_("Risky new cards"),
    "outlets": N_("Outlets with clusters of flagged cards"),
    "over_limit_ids": N_("ID numbers over the card limit"),
    "identity_signals": N_("Cards whose holder is likely not the user"),
    "risky_domains": N_("High-risk domains"),
    "rings": N_("Rings"),
    "cases_opened": N_("Cases opened"),
    "seconds": N_("Scan time (s)"),
}
FRAUD_CASE_KINDS = (N_("sim_box"), N_("card"), N_("identity"), N_("id_limit"), N_("domain"))
#: The workflows' kinds of case, as a message names them ("case 40 is a site_obstacle case").
CASE_WORKFLOW_KINDS = (N_("site_obstacle"), N_("fraud_suspect"))
FRAUD_DISPOSALS = (
    N_("line_suspended"),
    N_("device_seized"),
    N_("domain_blocked"),
    N_("cards_cancelled"),
    N_("no_action"),
)
#: Anti-fraud features, rules and card signals: code → the words shown for it.
FRAUD_SIGNALS = {
    "calls_out": N_("calls made"),
    "active_days": N_("active days"),
    "calls_per_day": N_("calls per active day"),
    "calls_in": N_("calls received"),
    "out_in_ratio": N_("calls made per call received"),
    "callees": N_("distinct numbers called"),
    "novelty": N_("share of calls to new numbers"),
    "other_operator_share": N_("share to other operators"),
    "other_province_share": N_("share to other provinces"),
    "mean_duration_s": N_("mean call length (s)"),
    "short_share": N_("share of calls under 30 s"),
    "cells": N_("distinct cells"),
    "radius_km": N_("radius of movement (km)"),
    "static": N_("does not move"),
    "sms": N_("text messages"),
    "no_sms": N_("no text messages"),
    "data_days": N_("days with mobile data"),
    "no_data": N_("no mobile data"),
    "imei_lines": N_("lines on the same handset"),
    "gateway_tac": N_("gateway device model"),
    "cohort_days": N_("days switching with other lines"),
    "first_day_away": N_("used away from its registration city on day one"),
    "imei_identities": N_("ID numbers on its handset"),
    "abnormal_calling": N_("abnormal calling"),
    "away_from_day_one": N_("used away from its registration city from day one"),
    "shared_handset": N_("handset shared with other identities"),
    "over_card_limit": N_("more active cards at the operator than allowed"),
    "cards": N_("active cards at the operator"),
    "all_operators": N_("active cards at all operators"),
    "limit": N_("cards allowed per operator"),
}


#: Why a domain looks fraud-related: reason code → the words shown for it.
DOMAIN_REASONS = {
    "impersonation": N_("names a bank, payment service or authority"),
    "typosquat": N_("spelled like a protected domain"),
    "homoglyph": N_("look-alike characters"),
    "entropy": N_("random-looking name"),
    "risky_tld": N_("risky top-level domain"),
    "new": N_("newly seen"),
    "digits": N_("many digits"),
    "hyphens": N_("many hyphens"),
    "deep_subdomain": N_("deeply nested subdomain"),
    "official": N_("official domain"),
    "invalid": N_("not a valid domain name"),
    "confirmed": N_("confirmed by the police"),
}


def translated_case_words() -> dict[str, str]:
    """Case states and disposals in the request's language, for pages that show them in script."""
    return {code: i18n.gettext(code) for code in (*CASE_STATUSES, *FRAUD_DISPOSALS)}


def translated_signals() -> dict[str, str]:
    """:data:`FRAUD_SIGNALS` and :data:`DOMAIN_REASONS` in the request's language, for pages
    that label them in script."""
    both = {**FRAUD_SIGNALS, **DOMAIN_REASONS}
    return {code: i18n.gettext(words) for code, words in both.items()}


ERROR_REPORT_HEADERS = (N_("row"), N_("column"), N_("reason"), N_("value"))


def localise_reason(text: str) -> str:
    """A "column: reason" line of a submission's errors, with the reason translated."""
    column, colon, reason = text.partition(": ")
    return f"{column}: {localise(reason)}" if colon else localise(text)


def localise_reasons(text: str) -> str:
    """A quarantined row's reasons ("column: reason; column: reason"), each translated."""
    return "; ".join(localise_reason(part) for part in text.split("; "))


ERROR_TITLES = {
    400: N_("Bad request"),
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    413: N_("Upload too large"),
    422: N_("Invalid input"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
    503: N_("Service unavailable"),
    507: N_("Storage full or not writable"),
}
WRONG_CREDENTIALS = N_("Wrong username or password.")
LOCKED_OUT = N_("Too many failed sign-in attempts. Try again later.")
CLIENT_THROTTLED = N_(
    "Too many failed sign-in attempts from your network address. Wait a few minutes and try again."
)
#: What an error page says where the framework's words would be English or technical.
NO_SUCH_PAGE = N_("There is no such page: check the address, or start again from the overview.")
ROLE_MAY_NOT = N_("Your role ({role}) may not open this page or take this step.")
CSRF_EXPIRED = N_("The form expired or was not sent from this site. Reload the page and try again.")
#: A refused step whose reason the server gave: the reason, not the generic advice.
REFUSED_BECAUSE = N_("The step was refused: {reason}")
#: Why a page form's step was refused, by error code: the only words a page shows for its
#: ``?error=`` parameter, so that a link cannot put its own text on our pages.
FORM_ERRORS = {
    "invalid-input": N_("The step was refused: check the note and the other fields."),
    "conflict": N_("This step does not fit the current state. Reload the page and try again."),
    "not-found": N_("It no longer exists. Reload the page."),
    "forbidden": N_("You are not allowed to take this step."),
    "limit-reached": N_("You have reached a limit: the step was not taken."),
    "approval-required": N_("This needs another user's approval first."),
    "error": N_("The step could not be taken."),
}


def shown_name(name: str, name_en: str) -> str:
    """An operator's or agency's name in the request's language (its Chinese name when it
    has no English one)."""
    return name if i18n.in_chinese() else (name_en or name)


def names_of(entries: Iterable[Operator | Agency]) -> dict[str, str]:
    """Code → the name pages show for it (``CMCC`` → 中国移动 / China Mobile)."""
    return {e.code: shown_name(e.name, e.name_en) for e in entries}


def operator_names(session: Session) -> dict[str, str]:
    """Every operator's code → the name pages show for it."""
    return names_of(accounts.list_operators(session))


def case_title(title: str, subject: Mapping[str, Any], operators: Mapping[str, str]) -> str:
    """A case's stored title in the reader's language, its operator named as the pages
    name it: titles keep the operator's code (``SIM box suspect CMCC · score 7``), set off
    by spaces in both languages' templates."""
    shown = localise(title)
    code = subject.get("operator")
    name = operators.get(code) if isinstance(code, str) else None
    return shown.replace(f" {code} ", f" {name} ", 1) if name else shown


def agency_names(session: Session) -> dict[str, str]:
    """Every partner agency's code → the name pages show for it."""
    return names_of(accounts.list_agencies(session))


def audit_action(code: str) -> str:
    """What an audit entry's action did, in the reader's language; the code itself when
    it is none of the known ones (a newer version's action reads as it is)."""
    _ = i18n.gettext
    if code in AUDIT_ACTIONS:
        return _(AUDIT_ACTIONS[code])
    area, _dot, rest = code.partition(".")
    kind, _dot, state = rest.partition(".")
    if area == "cases" and kind in AUDIT_CASE_KINDS and state in CASE_STATUSES:
        case = _(AUDIT_CASE_KINDS[kind])
        if state == "open":
            return _(_AUDIT_CASE_OPENED).format(case=case)
        return _(_AUDIT_CASE_STEP).format(case=case, state=_(state))
    if area == "job" and rest in JOB_STATUSES:
        return _(_AUDIT_JOB_STEP).format(status=_(rest))
    return code
