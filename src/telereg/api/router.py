"""The /api/v1 router: every domain's routes mounted in one place."""

from fastapi import APIRouter

from telereg.api.routes import audit, directory, privacy, submissions, system, users

api_router = APIRouter(prefix="/api/v1")
for module in (system, users, audit, privacy, directory, submissions):
    api_router.include_router(module.router)
