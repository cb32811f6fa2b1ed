"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from meltica import telemetry
from meltica.api.deps import AppServices
from meltica.api.problems import Problem
from meltica.projections import queries

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: AppServices) -> dict[str, str]:
    try:
        deadline = services.publisher.deadline
        assert deadline is not None  # nosec B101 # typing; inside the readiness try
        deadline(services.log.topics, "the event log")
        queries.ping(services.db)
    except Exception as err:
        raise Problem(503, "not-ready", "Not ready", f"{type(err).__name__}: {err}") from err
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
def prometheus() -> Response:
    """Metrics in the Prometheus text format, through OpenTelemetry."""
    return Response(telemetry.prometheus_text(), media_type="text/plain; version=0.0.4")
