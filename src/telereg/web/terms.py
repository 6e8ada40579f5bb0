"""Words shown from data (roles, statuses, error titles), marked for translation."""

from __future__ import annotations

from telereg.web.navigation import N_

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
FRAUD_CASE_KINDS = (N_("sim_box"), N_("card"), N_("domain"))
FRAUD_DISPOSALS = (
    N_("line_suspended"),
    N_("device_seized"),
    N_("domain_blocked"),
    N_("no_action"),
)
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
}
WRONG_CREDENTIALS = N_("Wrong username or password.")
LOCKED_OUT = N_("Too many failed sign-in attempts. Try again later.")
CSRF_EXPIRED = N_("The form expired or was not sent from this site. Reload the page and try again.")
