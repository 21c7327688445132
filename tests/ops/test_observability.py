"""The dashboard and the alert rules against a running system and a real Prometheus.

``switchboard up`` runs, traffic flows, a real Prometheus (Debian's package)
scrapes every part with the shipped rules loaded; then every metric named by
the dashboard or the rules must be exported by the live processes, and every
dashboard query must run -- and return data whenever its metrics have samples.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from switchboard.orchestrator.runtime import free_port
from tests.support.up import UpProcess, start_up

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "switchboard.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"

# Metric names, not recording-rule names (those have colons: job:switchboard_x:rate5m).
_NAME = re.compile(r"(?<![:\w])(switchboard_[a-z0-9_]+)(?![:\w])")
# A label matcher other than the dashboard's $job/$instance (it may rightly match nothing).
_NARROWING = re.compile(r"[{,]\s*(?!job=~|instance=~)\w+\s*(?:=~|!=|!~|=)")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? ", re.MULTILINE)
_FAMILY = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)", re.MULTILINE)


def dashboard_queries() -> list[str]:
    exprs: list[str] = []

    def walk(panel: dict) -> None:
        exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
        for child in panel.get("panels", []):
            walk(child)

    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        walk(panel)
    return exprs


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def concrete(expr: str) -> str:
    """A dashboard expression with Grafana's variables filled in."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace("$job", ".*")
        .replace("$instance", ".*")
    )


def exported(texts: list[str]) -> tuple[set[str], set[str]]:
    """Metric names the processes export (families and their sample names), and those
    that have at least one sample."""
    names: set[str] = set()
    with_samples: set[str] = set()
    for text in texts:
        for family, kind in _FAMILY.findall(text):
            names.add(family)
            if kind == "histogram":
                names.update({f"{family}_bucket", f"{family}_sum", f"{family}_count"})
            if kind == "counter":
                names.add(f"{family}_total")
        with_samples.update(_SAMPLE.findall(text))
    return names, with_samples


@pytest.fixture(scope="module")
def observed() -> Iterator[tuple[UpProcess, str]]:
    """A running system with traffic, scraped by a real Prometheus with our rules."""
    prometheus = shutil.which("prometheus")
    assert prometheus, "Prometheus is not installed: apt-get install prometheus"
    # Tracing on, spans dropped (no collector here): the latency histograms get exemplars.
    up = start_up(env={"OTEL_TRACES_EXPORTER": "none"})
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-prom-"))
    proc = None
    try:
        config = yaml.safe_load(CONFIG.read_text())
        config["global"] = {
            "scrape_interval": "1s",
            "evaluation_interval": "1s",
            "scrape_timeout": "1s",
        }
        config["rule_files"] = [str(RULES)]
        targets = {
            "bff": ("bff", up.metrics["bff"]),
            "orchestrator": ("orchestrator", up.metrics["orchestrator"]),
            "agents": ("agent", up.metrics["agents"]),
        }
        config["scrape_configs"] = [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [url.split("/")[2]], "labels": {"part": part}}],
            }
            for job, (part, url) in targets.items()
        ]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        with (workdir / "prometheus.log").open("w") as log:
            proc = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--enable-feature=exemplar-storage",
                ],
                stdout=log,
                stderr=log,
            )
        url = f"http://127.0.0.1:{port}"
        _traffic(up)
        _wait_for_scrapes(url, jobs=len(targets))
        _traffic(up)
        time.sleep(3)  # two more scrapes after the traffic: rate() has data
        yield up, url
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(20)
        assert up.stop() == 0
        shutil.rmtree(workdir, ignore_errors=True)


def _traffic(up: UpProcess) -> None:
    with httpx.Client(base_url=up.url, timeout=30) as http:
        for message in (
            "what is 17*23, and what time is it in Tokyo?",
            "who wrote the odyssey",
            'count the words in "a b c"',
        ):
            assert http.post("/v1/chat", json={"message": message}).status_code == 200
        # An agent's failure, and nothing else answered: a problem, not a 200 (issue 13).
        failed = http.post("/v1/chat", json={"message": "what is 1/0"})
        assert (failed.status_code, failed.json()["code"]) == (502, "agent_error")
        assert http.post("/v1/chat", content=b"{bad").status_code == 400
        assert http.get("/v1/agents").status_code == 200
        with http.stream("POST", "/v1/chat/stream", json={"message": "what is 2+2"}) as r:
            assert r.status_code == 200
            r.read()


def _wait_for_scrapes(url: str, *, jobs: int) -> None:
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        try:
            # Until its storage is open Prometheus answers 503 with a plain-text body.
            response = httpx.get(f"{url}/api/v1/query", params={"query": "up == 1"})
            if response.status_code == 200 and len(response.json()["data"]["result"]) == jobs:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("Prometheus never scraped every part")


def test_every_metric_of_the_dashboard_and_rules_is_exported(
    observed: tuple[UpProcess, str],
) -> None:
    up, _ = observed
    texts = [httpx.get(url, timeout=10).text for url in up.metrics.values()]
    names, _ = exported(texts)
    used = {n for expr in dashboard_queries() + rule_exprs() for n in _NAME.findall(expr)}
    assert used, "no switchboard metric found in the dashboard or the rules"
    missing = sorted(used - names)
    assert not missing, f"used by dashboard/rules but exported by no part: {missing}"


def test_the_rules_load_in_prometheus(observed: tuple[UpProcess, str]) -> None:
    _, url = observed
    groups = httpx.get(f"{url}/api/v1/rules").json()["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    shipped = yaml.safe_load(RULES.read_text())["groups"]
    expected = {r.get("record") or r.get("alert") for g in shipped for r in g["rules"]}
    assert expected <= loaded
    assert all(rule["health"] == "ok" for g in groups for rule in g["rules"]), groups


def test_every_dashboard_query_runs_and_shows_data(observed: tuple[UpProcess, str]) -> None:
    up, url = observed
    texts = [httpx.get(u, timeout=10).text for u in up.metrics.values()]
    _, with_samples = exported(texts)
    empty = []
    for expr in dashboard_queries():
        query = concrete(expr)
        result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=10).json()
        assert result["status"] == "success", (query, result)
        metrics = set(_NAME.findall(expr))
        narrowed = _NARROWING.search(expr) is not None  # e.g. status=~"5..": may be none
        if metrics and metrics <= with_samples and not narrowed and not result["data"]["result"]:
            empty.append(query)
    assert not empty, f"queries over metrics with samples returned nothing: {empty}"


def test_the_core_panels_show_the_traffic(observed: tuple[UpProcess, str]) -> None:
    _, url = observed

    def query(q: str) -> list[dict]:
        return list(httpx.get(f"{url}/api/v1/query", params={"query": q}).json()["data"]["result"])

    http = query('sum by (status) (switchboard_http_requests_total{route="/v1/chat"})')
    assert {"200", "400"} <= {s["metric"]["status"] for s in http}
    steps = query("sum by (agent) (switchboard_steps_total)")
    assert {"calculator", "clock", "text"} <= {s["metric"]["agent"] for s in steps}
    parts = query("switchboard_part_info")
    assert {"bff", "orchestrator", "agent"} <= {s["metric"]["part"] for s in parts}


#: The latency histograms each part links to traces, and the part that exports them.
EXEMPLARS = {
    "bff": "switchboard_http_request_duration_seconds",
    "orchestrator": "switchboard_conversation_duration_seconds",
    "agents": "switchboard_endpoint_duration_seconds",
}
_EXEMPLAR = re.compile(
    r'^(\w+)_bucket\{[^}]*\} \S+ # \{[^}]*trace_id="([0-9a-f]{32})"', re.MULTILINE
)


def test_latency_exemplars_are_in_the_openmetrics_exposition(
    observed: tuple[UpProcess, str],
) -> None:
    up, _ = observed
    for part, histogram in EXEMPLARS.items():
        response = httpx.get(
            up.metrics[part],
            headers={"Accept": "application/openmetrics-text; version=1.0.0"},
            timeout=10,
        )
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        linked = {name for name, _trace in _EXEMPLAR.findall(response.text)}
        assert histogram in linked, (part, linked)
        # Asked for the text format (no Accept), the same /metrics has no exemplars.
        plain = httpx.get(up.metrics[part], timeout=10)
        assert plain.headers["content-type"].startswith("text/plain")
        assert "trace_id=" not in plain.text


def test_prometheus_stores_the_exemplars(observed: tuple[UpProcess, str]) -> None:
    _, url = observed
    now = time.time()
    for histogram in EXEMPLARS.values():
        response = httpx.get(
            f"{url}/api/v1/query_exemplars",
            params={"query": f"{histogram}_bucket", "start": now - 600, "end": now + 60},
            timeout=10,
        ).json()
        assert response["status"] == "success", response
        trace_ids = {
            exemplar["labels"].get("trace_id")
            for series in response["data"]
            for exemplar in series["exemplars"]
        }
        assert trace_ids and all(re.fullmatch(r"[0-9a-f]{32}", t or "") for t in trace_ids), (
            histogram,
            response,
        )
