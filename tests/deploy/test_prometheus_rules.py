"""Alert rules, the local Prometheus config and the Grafana dashboard.

promtool (Debian package ``prometheus``) checks the rules and runs their unit
tests (deploy/prometheus/rules_test.yml); every metric named in the rules
and the dashboard must be one orchestrator/metrics.py exports.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import switchboard.orchestrator.metrics  # noqa: F401  (registers every Switchboard metric)

from .conftest import DEPLOY, tool

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "switchboard.json"

#: Not Switchboard's, but always there: the scrape's own series and the process collector.
STANDARD = re.compile(r"^(up|process_[a-z_]+)$")

#: Words of PromQL that look like names.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "le",
}  # fmt: skip


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    binary = tool("promtool", "apt-get install prometheus (it ships promtool)")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def exported_metric_names() -> set[str]:
    """Every series name the default registry can expose (incl. histogram/counter suffixes)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (labels, functions and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group() not in KEYWORDS:
            names.add(match.group())
    return names


def rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> list[str]:
    queries = [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"]["query"])
            assert match, variable["query"]
            queries.append(match.group(1))
    return queries


def as_promql(query: str) -> str:
    """A dashboard query with Grafana's variables replaced, so promtool can parse it."""
    return query.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*")


def unknown_metrics(queries: list[str], recorded: set[str]) -> dict[str, set[str]]:
    exported = exported_metric_names()
    problems: dict[str, set[str]] = {}
    for query in queries:
        for name in metric_names(as_promql(query)):
            known = name in recorded if ":" in name else (name in exported or STANDARD.match(name))
            if not known:
                problems.setdefault(query, set()).add(name)
    return problems


# -- rules -------------------------------------------------------------------------------------


def test_rules_pass_promtool_check():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_unit_tests_pass():
    proc = promtool("test", "rules", "rules_test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rules_unit_tests_cover_the_key_alerts():
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    silent = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case["exp_alerts"]
    }
    key = {
        "SwitchboardTimeoutRatioHigh",
        "SwitchboardNoResponders",
        "SwitchboardPartDown",
        "SwitchboardWorkExpiredOnArrival",
    }
    assert key <= fired
    assert {"SwitchboardPartDown", "SwitchboardNoResponders"} <= silent


def test_local_prometheus_config_is_valid():
    proc = promtool("check", "config", "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_says_what_it_is_and_what_to_do():
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 10
    for alert in alerts:
        annotations = alert.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert annotations.get(key, "").strip(), f"{alert['alert']} has no {key}"
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]


def test_rules_read_only_exported_metrics():
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    queries = [rule["expr"] for rule in rules()]
    assert not unknown_metrics(queries, recorded)


def test_metric_name_check_catches_a_typo():
    assert unknown_metrics(["rate(switchboard_correlation_timeout_total[5m])"], set()) == {
        "rate(switchboard_correlation_timeout_total[5m])": {"switchboard_correlation_timeout_total"}
    }
    assert not unknown_metrics(
        ['sum by (le) (rate(switchboard_endpoint_duration_seconds_bucket{job="x"}[5m]))'], set()
    )


# -- dashboard ---------------------------------------------------------------------------------


def test_dashboard_reads_only_exported_metrics():
    queries = dashboard_queries()
    assert len(queries) > 40
    assert not unknown_metrics(queries, recorded=set())


def test_dashboard_queries_are_valid_promql(tmp_path):
    groups = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query:{index}", "expr": as_promql(query)}
                    for index, query in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(groups))
    proc = promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_takes_its_data_source_from_a_variable():
    board = dashboard()
    variables = {var["name"]: var for var in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize(
    "row", ["Overview", "Correlation", "Agents", "Engine", "LLM", "NATS", "HTTP"]
)
def test_dashboard_has_the_row(row):
    titles = [panel["title"] for panel in dashboard()["panels"] if panel["type"] == "row"]
    assert any(title.startswith(row) for title in titles), titles


def test_dashboard_layout_is_sound():
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards():
    provisioning = DEPLOY / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    assert sources["apiVersion"] == 1
    assert [source["type"] for source in sources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((provisioning / "dashboards" / "switchboard.yaml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
