"""Every part reports the installed version, read once from the package metadata."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import httpx
import msgspec
from nats.aio.client import Client as NATS
from prometheus_client.parser import text_string_to_metric_families

import switchboard
from switchboard.bff import build_bff
from switchboard.orchestrator import EmbeddedNatsServer, Runtime, ServiceInfo, discover
from tests.support.system import make_settings, orchestrator_running

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = importlib.metadata.version("switchboard-nats")


async def test_metrics_service_info_openapi_and_the_package_report_the_installed_version(
    nats_server: EmbeddedNatsServer, nats_client: NATS
) -> None:
    settings = make_settings(nats_server.url, http_port=0)
    bff = Runtime(settings, part="bff", name="version", health=False, configure_logs=False)
    async with orchestrator_running(settings):
        await bff.connect()
        try:
            server = await build_bff(bff)
            await bff.start()
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                spec = (await http.get("/docs/openapi.json")).json()
                exposition = (await http.get("/metrics")).text
        finally:
            await bff.shutdown()
        infos = [
            msgspec.json.decode(raw, type=ServiceInfo)
            for raw in await discover(nats_client, "INFO", "orchestrator")
        ]

    assert switchboard.__version__ == INSTALLED
    assert spec["info"]["version"] == INSTALLED
    assert [info.version for info in infos] == [INSTALLED]
    parts = [
        sample.labels
        for family in text_string_to_metric_families(exposition)
        if family.name == "switchboard_part_info"
        for sample in family.samples
    ]
    assert {"bff", "orchestrator"} <= {labels["part"] for labels in parts}
    assert {labels["version"] for labels in parts} == {INSTALLED}


def test_no_module_spells_the_version_out() -> None:
    """Only ``pyproject.toml`` holds the version; the code reads it from the metadata."""
    literal = re.compile(rf"""["']{re.escape(INSTALLED)}["']""")
    # switchboard/ holds symlinks to the other three: its own modules only.
    sources = [
        path
        for package in ("orchestrator", "agents", "bff")
        for path in (ROOT / package).rglob("*.py")
    ]
    sources += (ROOT / "switchboard").glob("*.py")
    assert len(sources) > 50
    spelled = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(sources)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert spelled == []
