"""Every state model, imported once so the metadata (and Alembic) sees all tables."""

from telereg.cases.models import Case, HandoverPackage
from telereg.core.db import Base
from telereg.core.models import Agency, ApiToken, AuditEntry, Operator, User
from telereg.ingest.models import Submission

__all__ = [
    "Agency",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Case",
    "HandoverPackage",
    "Operator",
    "Submission",
    "User",
]
