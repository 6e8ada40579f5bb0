"""Roles and the permissions each one holds.

Every endpoint and service operation declares one :class:`Permission`; this
table is the only place that says which role holds it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    OPERATOR = "operator"
    LIAISON = "liaison"
    VIEWER = "viewer"


class Permission(StrEnum):
    STATUS_READ = "status.read"
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"
    TOKENS_OWN = "tokens.own"
    AUDIT_READ = "audit.read"
    REFERENCE_READ = "reference.read"
    REFERENCE_MANAGE = "reference.manage"
    PRIVACY_REIDENTIFY = "privacy.reidentify"
    #: Grant or refuse another user's request to re-identify a case's values (four eyes).
    PRIVACY_APPROVE = "privacy.approve"
    DATA_SUBMIT = "data.submit"
    DATA_READ_ALL = "data.read_all"
    DATA_READ_OWN = "data.read_own"
    ANALYSIS_RUN = "analysis.run"
    DASHBOARD_READ = "dashboard.read"
    CASES_MANAGE = "cases.manage"
    CASES_READ_ASSIGNED = "cases.read_assigned"
    CASES_REPORT_OUTCOME = "cases.report_outcome"
    #: remove personal data kept past its retention period (administrators only)
    RETENTION_PURGE = "retention.purge"


_ALL = frozenset(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: _ALL,
    Role.ANALYST: frozenset(
        {
            Permission.STATUS_READ,
            Permission.TOKENS_OWN,
            Permission.REFERENCE_READ,
            Permission.PRIVACY_REIDENTIFY,
            Permission.DATA_SUBMIT,
            Permission.DATA_READ_ALL,
            Permission.ANALYSIS_RUN,
            Permission.DASHBOARD_READ,
            Permission.CASES_MANAGE,
            # Analysts see every case, handed over or not, and record the outcome the
            # agency reports when it does not record it itself.
            Permission.CASES_READ_ASSIGNED,
            Permission.CASES_REPORT_OUTCOME,
        }
    ),
    # An operator submits and reads only its own data and the cases addressed to it.
    Role.OPERATOR: frozenset(
        {
            Permission.STATUS_READ,
            Permission.TOKENS_OWN,
            Permission.REFERENCE_READ,
            Permission.DATA_SUBMIT,
            Permission.DATA_READ_OWN,
            Permission.CASES_READ_ASSIGNED,
        }
    ),
    # A liaison sees only what was handed to its agency.
    Role.LIAISON: frozenset(
        {
            Permission.STATUS_READ,
            Permission.TOKENS_OWN,
            Permission.CASES_READ_ASSIGNED,
            Permission.CASES_REPORT_OUTCOME,
        }
    ),
    Role.VIEWER: frozenset(
        {
            Permission.STATUS_READ,
            Permission.REFERENCE_READ,
            Permission.DASHBOARD_READ,
        }
    ),
}


def has_permission(role: Role | str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[Role(role)]
