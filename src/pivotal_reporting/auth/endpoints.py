"""``GET /v1/me``: who the token says you are, as the API sees it."""

from __future__ import annotations

from fastapi import APIRouter

from pivotal_reporting.auth.dependencies import CurrentPrincipal
from pivotal_reporting.auth.schemas import MeRead
from pivotal_reporting.errors import problem_responses

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get(
    "/me",
    response_model=MeRead,
    summary="The caller's user, organization and permissions",
    responses=problem_responses(401, 429, 503),
)
async def read_me(principal: CurrentPrincipal) -> MeRead:
    return MeRead.from_principal(principal)
