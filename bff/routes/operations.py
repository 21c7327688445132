"""For operators and probes: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import choose_encoder

from ..problems import NOT_READY, ready_status
from ..state import BffState

__all__ = ["healthz", "metrics", "readyz"]


@get("/healthz", summary="Alive", tags=["operations"], include_in_schema=True)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Connected to NATS and serving",
    tags=["operations"],
    responses={
        NOT_READY: ResponseSpec(
            data_container=dict[str, Any], description="Not ready (see checks)."
        )
    },
)
async def readyz(bff: NamedDependency[BffState]) -> Response[dict[str, Any]]:
    checks = bff.ready()
    ready = all(checks.values())
    return Response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=ready_status(ready),
    )


#: What the other parts' /metrics answer (prometheus_client's ASGI app, asked with no Accept
#: header): the text format 0.0.4, which generate_latest writes. Litestar appends the
#: charset to every text/ type, so it is not named here (it was then said twice).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


@get("/metrics", summary="Prometheus metrics", tags=["operations"], media_type=METRICS_CONTENT_TYPE)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The text format; OpenMetrics (with the latency histograms' exemplars, which link a
    bucket to a trace) for a scraper that asks for it in ``Accept``, as Prometheus does."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    if content_type.startswith("application/openmetrics-text"):
        return Response(encoder(REGISTRY), media_type=content_type)
    return Response(generate_latest(), media_type=METRICS_CONTENT_TYPE)
