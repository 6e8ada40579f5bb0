"""The one error hierarchy of telereg.

Every error a user can cause or meet derives from :class:`TeleregError`.
Subclasses also inherit the fitting builtin so callers that only know Python's
exceptions still catch them. Interfaces map these classes to CLI messages,
problem+json responses and HTML error pages, each in one place.
"""

from __future__ import annotations


class TeleregError(Exception):
    """Base of all telereg errors; ``str(err)`` is a message fit for the user."""

    #: short machine-readable code, used as the problem ``type`` suffix
    code = "error"
    #: True when the error is the user's doing (no traceback is shown)
    user_error = True

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ConfigurationError(TeleregError):
    """Settings are missing, malformed or unsafe (e.g. a placeholder secret)."""

    code = "configuration"


class ContractError(ConfigurationError, ValueError):
    """A dataset contract is declared wrongly (a pattern without its form in words, say): the
    contracts are refused when they load, so no submission is ever checked against it."""

    code = "contract"
    user_error = False


class InputError(TeleregError, ValueError):
    """Input from a user or a file is malformed or breaks a rule."""

    code = "invalid-input"


class SignatureError(InputError):
    """A signed file does not match its signature: it was changed or signed with another key."""

    code = "bad-signature"


class PayloadTooLargeError(InputError):
    """A request body or uploaded file is larger than allowed."""

    code = "payload-too-large"


class NotFoundError(TeleregError, LookupError):
    """The named object does not exist."""

    code = "not-found"


class GoneError(NotFoundError):
    """The named object existed but was removed for good (a hand-over package purged under
    the retention policy); its record says when."""

    code = "gone"


class ConflictError(TeleregError):
    """The operation conflicts with existing state (e.g. a duplicate name)."""

    code = "conflict"


class AuthenticationError(TeleregError, PermissionError):
    """Credentials are missing, wrong, expired or revoked."""

    code = "unauthenticated"


class AccountLockedError(AuthenticationError):
    """Too many failed logins: the account is locked for a while."""

    code = "account-locked"


class LoginThrottledError(AuthenticationError):
    """Too many failed logins from one client address: it must wait before trying again."""

    code = "login-throttled"


class CsrfError(TeleregError, PermissionError):
    """A state-changing browser request lacked a valid CSRF token."""

    code = "csrf"


class PermissionDeniedError(TeleregError, PermissionError):
    """The authenticated user lacks the permission the operation declares."""

    code = "forbidden"


class RoleLacksPermissionError(PermissionDeniedError):
    """The user's role does not hold the permission an operation declares (not a rule about
    the particular data, such as another operator's rows)."""

    def __init__(self, message: str, *, role: str, permission: str) -> None:
        super().__init__(message)
        self.role = role
        self.permission = permission


class LimitReachedError(TeleregError, PermissionError):
    """A user has done as much of something as a setting allows in its window (clear values
    revealed in a day): refused until earlier ones leave the window."""

    code = "limit-reached"


class ApprovalRequiredError(TeleregError, PermissionError):
    """A re-identification that needs another user's approval (the four-eyes rule) has none
    in force for the user and the case: never asked, still waiting, refused, withdrawn or
    expired."""

    code = "approval-required"


class AuditLogError(TeleregError):
    """Something tried to change or delete an audit record."""

    code = "audit-append-only"
    user_error = False


class EngineError(TeleregError):
    """The analysis engine could not be started or failed to run a query."""

    code = "engine"
    user_error = False


class StorageError(TeleregError):
    """The data dir could not be written: the disk is full, or the file system read-only.
    Whatever was being written is withdrawn; stored data is as it was."""

    code = "storage"
    user_error = False


class JobStartError(TeleregError):
    """A job was queued but its process could not be started."""

    code = "job-start"
    user_error = False
