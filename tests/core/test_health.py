"""The /healthz, /readyz, /metrics endpoint of processes without a web app."""

from __future__ import annotations

import httpx
import pytest

from switchboard.orchestrator import ConfigurationError
from switchboard.orchestrator.runtime.health import HealthServer


async def test_health_readiness_metrics_and_debug_views() -> None:
    ready = {"nats": False}
    server = HealthServer(
        checks={"nats": lambda: ready["nats"]},
        debug={"/debug/pending": lambda: [{"correlation_id": "c-1"}]},
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"] == {"nats": False}
            ready["nats"] = True
            assert (await http.get("/readyz")).status_code == 200
            metrics = await http.get("/metrics")
            assert "switchboard_correlation_pending" in metrics.text
            assert (await http.get("/debug/pending")).json() == [{"correlation_id": "c-1"}]
            missing = await http.get("/nope")
            assert missing.status_code == 404
            assert "/metrics" in missing.json()["paths"]
    finally:
        await server.stop()


async def test_a_taken_port_is_a_clear_configuration_error() -> None:
    first = HealthServer()
    await first.start()
    try:
        with pytest.raises(ConfigurationError, match=r"in use.*--metrics-port"):
            await HealthServer(port=first.port).start()
    finally:
        await first.stop()
