"""The BFF's OpenAPI document, driven by a schema fuzzer (schemathesis) against the live API.

The whole system runs in-process on a real nats-server (orchestrator, built-in
agents, BFF over real HTTP). Schemathesis reads ``/docs/openapi.json`` and,
for every operation, sends schema-valid and schema-invalid requests; every
response must not be a server error and must conform to the document: a
documented status code, a documented content type, a body matching its schema.
Once in local mode (no keys), once with API keys and a valid ``Authorization``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from switchboard.bff.problems import Problem
from switchboard.orchestrator.core.conversation import ConversationReply
from switchboard.orchestrator.core.progress import ProgressEvent
from tests.fuzz.conftest import LiveSystem

KEY = "fuzzer-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
STREAM = "/v1/chat/stream"

CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

#: The ``event:`` names of progress events (ProgressEvent.kind).
PROGRESS_KINDS = frozenset(
    ["planned", "step_started", "step_progress", "step_finished", "step_failed", "answered"]
) | {"token"}


def sse_conformance(ctx: Any, response: Any, case: Any) -> bool | None:
    """The event stream's body (its schema in the document is ``{}``): well-formed events.

    Progress events carry a ProgressEvent, then exactly one ``reply`` (a
    ConversationReply) or ``error`` (a problem body) ends the stream.
    """
    if not response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
        return None
    events: list[tuple[str, str]] = []
    for block in response.content.decode().replace("\r\n", "\n").split("\n\n"):
        # SSE lines end at \n only (splitlines() would also cut at U+2028 and friends, which
        # JSON strings may hold unescaped).
        fields = dict(line.split(": ", 1) for line in block.split("\n") if line and ": " in line)
        if "event" in fields:
            events.append((fields["event"], fields.get("data", "")))
    assert events, f"an event stream with no events: {response.content[:300]!r}"
    *progress, (last, data) = events
    for kind, body in progress:
        assert kind in PROGRESS_KINDS, kind
        msgspec.json.decode(body, type=ProgressEvent)
    assert last in ("reply", "error"), last
    msgspec.json.decode(data, type=ConversationReply if last == "reply" else Problem)
    return True


STREAMING = [*CONFORMANCE, sse_conformance]

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)


def system(**overrides: Any) -> Iterator[LiveSystem]:
    live = LiveSystem(bff=True, **overrides).start()
    try:
        yield live
    finally:
        live.stop()
    assert live.loop_errors == [], live.loop_errors


@pytest.fixture(scope="module")
def local_api() -> Iterator[LiveSystem]:
    yield from system()


@pytest.fixture(scope="module")
def keyed_api() -> Iterator[LiveSystem]:
    yield from system(api_keys=f"fuzzer:{KEY}")


def load(live: LiveSystem, **headers: str) -> Any:
    return schemathesis.openapi.from_url(f"{live.http_url}/docs/openapi.json", headers=headers)


@pytest.fixture(scope="module")
def local_schema(local_api: LiveSystem) -> Any:
    return load(local_api)


@pytest.fixture(scope="module")
def keyed_schema(keyed_api: LiveSystem) -> Any:
    return load(keyed_api)


#: Every operation of the document (a test below fails when this list is out of date).
OPERATIONS = [
    "POST /v1/chat",
    "POST /v1/chat/stream",
    "GET /v1/agents",
    "GET /v1/conversations/{conversation_id}",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
]
#: Operations whose inputs can be schema-invalid (negative mode; the path parameter is any string).
WITH_INPUTS = OPERATIONS[:2]
MODES = [
    *((op, GenerationMode.POSITIVE) for op in OPERATIONS),
    *((op, GenerationMode.NEGATIVE) for op in WITH_INPUTS),
]


def fuzz(schema: Any, base_url: str, name: str, mode: GenerationMode, **headers: str) -> None:
    """Drive one operation with schemathesis' cases; every response must conform."""
    method, path = name.split(" ", 1)
    operation = schema[path][method]
    checks = STREAMING if path == STREAM else CONFORMANCE

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}  # the valid key, not a generated one
        response = case.call(base_url=base_url, timeout=60)
        case.validate_response(response, checks=checks)

    call()


@pytest.mark.parametrize(("operation", "mode"), MODES, ids=[f"{o} {m.value}" for o, m in MODES])
def test_the_api_in_local_mode_conforms_to_its_document(
    local_api: LiveSystem, local_schema: Any, operation: str, mode: GenerationMode
) -> None:
    fuzz(local_schema, local_api.http_url, operation, mode)


@pytest.mark.parametrize(("operation", "mode"), MODES, ids=[f"{o} {m.value}" for o, m in MODES])
def test_the_api_with_keys_conforms_to_its_document(
    keyed_api: LiveSystem, keyed_schema: Any, operation: str, mode: GenerationMode
) -> None:
    fuzz(keyed_schema, keyed_api.http_url, operation, mode, **AUTH)


@pytest.mark.parametrize("operation", OPERATIONS[:2])
def test_bodies_the_document_allows_are_accepted(
    local_api: LiveSystem, local_schema: Any, operation: str
) -> None:
    """The document is the input contract: a body it allows must not be refused as invalid.

    One rule the document cannot express: ``agents`` may only name agents that run (a 400
    otherwise, by design), so the generated names are mapped onto the running ones.
    """
    method, path = operation.split(" ", 1)
    running = sorted(
        httpx.get(f"{local_api.http_url}/v1/agents", timeout=10).json(), key=lambda a: a["name"]
    )
    names = [a["name"] for a in running]

    @FUZZ
    @given(case=local_schema[path][method].as_strategy())
    def call(case: Any) -> None:
        if isinstance(case.body, dict) and isinstance(case.body.get("agents"), list):
            case.body["agents"] = [names[len(n) % len(names)] for n in case.body["agents"]]
        response = case.call(base_url=local_api.http_url, timeout=60)
        case.validate_response(response, checks=[positive_data_acceptance])

    call()


def test_every_documented_operation_is_fuzzed(local_schema: Any) -> None:
    documented = [
        f"{method.upper()} {path}"
        for path, item in local_schema.raw_schema["paths"].items()
        for method in item
    ]
    assert sorted(documented) == sorted(OPERATIONS)


def test_the_keyed_document_declares_its_security(keyed_api: LiveSystem) -> None:
    document = httpx.get(f"{keyed_api.http_url}/docs/openapi.json").json()
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize(
    "body",
    [
        b'{"message": "caf\xe9"}',  # latin-1, not UTF-8
        b'{"message": "\\ud800"}',  # a lone surrogate escape
        b'{"message": "hi", "agents": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"message": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"message": "hi", "timeout_s": 1e999}',
        b'{"message": "hi", "timeout_s": -0.5}',
        b'{"message": "hi", "agents": ["a.b"]}',
    ],
    ids=["latin-1", "surrogate", "deep agents", "deep message", "inf timeout", "negative", "agent"],
)
def test_hostile_chat_bodies_are_4xx_problems(local_api: LiveSystem, body: bytes) -> None:
    for path in ("/v1/chat", STREAM):
        r = httpx.post(
            f"{local_api.http_url}{path}",
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 400, (path, r.status_code, r.text[:300])
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "bad_request"


def test_a_tiny_timeout_is_not_a_server_error(local_api: LiveSystem) -> None:
    """``timeout_s`` 0.001 is schema-valid; the answer is the client's problem, not a 5xx."""
    r = httpx.post(
        f"{local_api.http_url}/v1/chat",
        json={"message": "what is 2+3", "timeout_s": 0.001},
        timeout=30,
    )
    assert r.status_code < 500, (r.status_code, r.text[:300])
