"""Who is acting: a user (through the web or a token) or the local CLI."""

from __future__ import annotations

from dataclasses import dataclass

from telereg.core.errors import RoleLacksPermissionError
from telereg.core.i18n import N_
from telereg.core.permissions import Permission, Role, has_permission


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    user_id: int | None = None
    operator_code: str | None = None
    agency_code: str | None = None
    via: str = "web"

    def can(self, permission: Permission) -> bool:
        return has_permission(self.role, permission)

    def require(self, permission: Permission) -> None:
        """Raise :class:`PermissionDeniedError` unless the role holds ``permission``."""
        if not self.can(permission):
            raise RoleLacksPermissionError(
                N_("role {role} lacks permission {permission}").format(
                    role=repr(self.role.value), permission=repr(permission.value)
                ),
                role=self.role.value,
                permission=permission.value,
            )


def cli_principal(os_user: str) -> Principal:
    """The local CLI acts as an administrator: it already holds the data dir and keys."""
    return Principal(name=f"cli:{os_user}", role=Role.ADMIN, via="cli")
