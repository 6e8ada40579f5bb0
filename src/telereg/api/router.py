"""The /api/v1 router: every domain's routes mounted in one place."""

from fastapi import APIRouter

from telereg.api.routes import audit, directory, jobs, privacy, submissions, system, users
from telereg.domains.buildout import api as buildout
from telereg.domains.fraud import api as fraud

api_router = APIRouter(prefix="/api/v1")
for module in (system, users, audit, privacy, directory, submissions, jobs, buildout, fraud):
    api_router.include_router(module.router)
