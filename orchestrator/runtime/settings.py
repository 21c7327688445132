"""One settings object for every part, from ``SWITCHBOARD_*`` env vars and CLI flags.

Precedence: defaults < environment < command-line flags. Every field ``x_y``
is read from ``SWITCHBOARD_X_Y`` and set by ``--x-y``; a few standard
variables are honoured too (``NATS_URL``, ``OPENAI_API_KEY``,
``OPENAI_BASE_URL``). :func:`settings_table` renders the README's table from
this very class, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..core.deadline import MAX_SECONDS
from ..core.errors import ConfigurationError
from ..core.subjects import TOKEN_PATTERN
from ..core.urls import without_credentials

__all__ = ["ENV_PREFIX", "SECRET_FIELDS", "Settings", "load_settings", "settings_table"]

ENV_PREFIX = "SWITCHBOARD_"

#: Standard variables read when the SWITCHBOARD_ one is not set.
ALIASES: Mapping[str, str] = {
    "nats_url": "NATS_URL",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
}

#: Never logged, never shown: ``Settings.redacted()`` masks them.
SECRET_FIELDS = frozenset({"nats_password", "nats_token", "openai_api_key", "api_keys"})
#: URLs that may carry credentials (``nats://user:password@host``): shown without them.
URL_FIELDS = ("nats_url", "openai_base_url", "otlp_endpoint")


def _d(text: str, **constraints: Any) -> Meta:
    return Meta(description=text, **constraints)


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Every setting of every part (each part reads the ones it needs)."""

    # -- NATS ---------------------------------------------------------------------------------
    nats_url: Annotated[str, _d("NATS server URL(s), comma-separated. Also NATS_URL.")] = (
        "nats://127.0.0.1:4222"
    )
    nats_creds: Annotated[str | None, _d("NATS credentials file (.creds, JWT + nkey).")] = None
    nats_user: Annotated[str | None, _d("NATS user name.")] = None
    nats_password: Annotated[str | None, _d("NATS password (secret).")] = None
    nats_token: Annotated[str | None, _d("NATS token (secret).")] = None
    nats_tls_ca: Annotated[str | None, _d("CA file to verify the NATS server's TLS cert.")] = None
    nats_tls_cert: Annotated[str | None, _d("Client certificate for NATS mutual TLS.")] = None
    nats_tls_key: Annotated[str | None, _d("Client key for NATS mutual TLS.")] = None
    subject_prefix: Annotated[str, _d("First token(s) of every Switchboard subject.")] = "ai"
    inbox_prefix: Annotated[
        str, _d("Reply inbox prefix of this process (match it in NATS permissions).")
    ] = "_INBOX"

    # -- process ------------------------------------------------------------------------------
    log_level: Annotated[Literal["debug", "info", "warning", "error"], _d("Log level.")] = "info"
    log_format: Annotated[
        Literal["auto", "json", "console"], _d("Log format; auto = JSON unless on a terminal.")
    ] = "auto"
    metrics_host: Annotated[str, _d("Address of /metrics, /healthz, /readyz.")] = "127.0.0.1"
    metrics_port: Annotated[
        int, _d("Port of /metrics, /healthz, /readyz (0: any free port).", ge=0, le=65535)
    ] = 9464
    shutdown_grace: Annotated[
        float, _d("Seconds in-flight work may finish after SIGTERM.", ge=0)
    ] = 10.0

    # -- correlation and workers --------------------------------------------------------------
    max_pending: Annotated[int, _d("Requests one process may have waiting for replies.", ge=1)] = (
        10_000
    )
    max_payload: Annotated[int, _d("Largest message accepted, in bytes.", ge=1024)] = 1024 * 1024
    max_concurrency: Annotated[
        int, _d("Requests a worker (agent, orchestrator) handles at once.", ge=1)
    ] = 256
    max_backlog: Annotated[
        int, _d("Requests a worker queues beyond that before answering overloaded.", ge=0)
    ] = 2_000
    max_inflight_bytes: Annotated[
        int,
        _d(
            "Bytes one process holds in flight before refusing more (overloaded): a worker's "
            "requests, running and queued; a BFF's answers not yet sent to their clients.",
            ge=1024 * 1024,
        ),
    ] = 64 * 1024 * 1024

    # -- engine -------------------------------------------------------------------------------
    conversation_timeout: Annotated[
        float, _d("Default deadline of a conversation, in seconds.", gt=0)
    ] = 60.0
    step_timeout: Annotated[float, _d("Default timeout of one plan step, in seconds.", gt=0)] = 30.0
    step_retries: Annotated[
        int, _d("Retries of a step after a transient error (no responders...).", ge=0)
    ] = 2
    max_plan_steps: Annotated[int, _d("Most steps a plan may have.", ge=1, le=256)] = 16
    max_rounds: Annotated[
        int,
        _d(
            "Most planning rounds of a conversation: after a round, the engine may plan again "
            "with its results (1: plan once).",
            ge=1,
            le=16,
        ),
    ] = 3
    max_conversation_steps: Annotated[
        int, _d("Most steps of all of a conversation's rounds together.", ge=1, le=1024)
    ] = 32
    max_round_tokens: Annotated[
        int,
        _d("LLM tokens a conversation may have spent for another round to start.", ge=0),
    ] = 50_000
    heartbeat_interval: Annotated[
        float, _d("Heartbeat interval agents are asked for while they work, in seconds.", gt=0)
    ] = 1.0
    accept_timeout: Annotated[
        float, _d("Seconds an agent task may wait for a worker to pick it up.", gt=0)
    ] = 5.0
    publish_events: Annotated[
        bool,
        _d(
            "Publish every conversation's progress events on ai.events.<correlation_id> for "
            "watchers (4+ messages per conversation). Off: only conversations that ask "
            '("watch": true) are published; requesters that ask for progress get it either way.'
        ),
    ] = False
    catalog_refresh: Annotated[
        float, _d("Seconds between agent catalog refreshes ($SRV.INFO).", gt=0)
    ] = 5.0
    history_bucket: Annotated[
        str,
        _d(
            "JetStream KV bucket of conversation history.",
            pattern=TOKEN_PATTERN,
            min_length=1,
            max_length=64,
        ),
    ] = "switchboard-history"
    history_turns: Annotated[int, _d("Turns kept per conversation.", ge=1, le=1000)] = 20
    replica_claims: Annotated[
        bool,
        _d(
            "Claim each conversation that carries a request id in JetStream KV (<history "
            "bucket>-claims), so a retry that lands on another orchestrator replica is "
            "answered, not run again. Two JetStream writes per conversation: turn it on when "
            "several orchestrator replicas run (the Kubernetes manifests do)."
        ),
    ] = False
    history_replicas: Annotated[
        int,
        _d(
            "JetStream replicas of the history bucket when it is created (3 in a cluster).",
            ge=1,
            le=5,
        ),
    ] = 1

    # -- LLM ----------------------------------------------------------------------------------
    llm_provider: Annotated[
        Literal["auto", "openai", "local"],
        _d("LLM for planning/answers; auto = openai when OPENAI_API_KEY is set, else local."),
    ] = "auto"
    llm_model: Annotated[str, _d("Model name for the openai provider.")] = "gpt-4o-mini"
    llm_timeout: Annotated[float, _d("Timeout of one LLM call, in seconds.", gt=0)] = 30.0
    llm_max_retries: Annotated[int, _d("Retries of an LLM call (429, 5xx).", ge=0)] = 2
    llm_plan_timeout: Annotated[
        float,
        _d(
            "Most seconds the LLM may take to plan (and at most 30% of the conversation's "
            "time); past it the local planner plans.",
            gt=0,
        ),
    ] = 10.0
    llm_answer_timeout: Annotated[
        float,
        _d(
            "Most seconds the LLM may take to stitch several agents' outputs into one "
            "answer; past it the outputs are the answer.",
            gt=0,
        ),
    ] = 15.0
    openai_api_key: Annotated[str | None, _d("OpenAI API key (secret). Also OPENAI_API_KEY.")] = (
        None
    )
    openai_base_url: Annotated[
        str | None, _d("OpenAI-compatible server URL. Also OPENAI_BASE_URL.")
    ] = None

    # -- agent-to-agent calls -----------------------------------------------------------------
    max_call_depth: Annotated[
        int,
        _d(
            "Most agent-to-agent calls one chain may nest (ctx.call); deeper: call_depth.",
            ge=1,
            le=16,
        ),
    ] = 3
    max_calls: Annotated[
        int,
        _d(
            "Agent-to-agent calls one conversation may make, at every depth; more: call_budget.",
            ge=0,
            le=1000,
        ),
    ] = 16

    # -- BFF ----------------------------------------------------------------------------------
    http_host: Annotated[str, _d("Address the BFF listens on.")] = "127.0.0.1"
    http_port: Annotated[int, _d("Port the BFF listens on.", ge=0, le=65535)] = 8080
    api_keys: Annotated[
        str | None, _d("API keys as 'user:key' pairs, comma-separated (secret).")
    ] = None
    api_keys_file: Annotated[
        str | None, _d("File of API keys, one 'user:key' or 'user:sha256:<hex>' per line.")
    ] = None
    max_inflight_per_user: Annotated[
        int, _d("Chat requests one user may have in flight at the BFF.", ge=1)
    ] = 8
    max_inflight: Annotated[int, _d("Chat requests one BFF instance handles at once.", ge=1)] = (
        1_000
    )
    trusted_proxies: Annotated[
        str,
        _d(
            "Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the "
            "client, e.g. the ingress controller's pod network; empty: the peer is the client."
        ),
    ] = ""

    # -- tracing ------------------------------------------------------------------------------
    otlp_endpoint: Annotated[
        str | None,
        _d(
            "OpenTelemetry collector (OTLP/HTTP) base URL, e.g. http://otel-collector:4318: "
            "set, every part exports its spans to <url>/v1/traces and puts W3C traceparent on "
            "every message. The standard OTEL_EXPORTER_OTLP_ENDPOINT (and the other "
            "OTEL_EXPORTER_OTLP_* variables) work too. Unset: no tracing, at no cost."
        ),
    ] = None

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked (for logs and debug views)."""
        values = msgspec.structs.asdict(self)
        for name in SECRET_FIELDS:
            if values.get(name):
                values[name] = "***"
        for name in URL_FIELDS:
            if values.get(name):
                values[name] = without_credentials(values[name])
        return values

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.redacted().items())
        return f"Settings({shown})"

    @property
    def nats_servers(self) -> list[str]:
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]


def _durations() -> tuple[str, ...]:
    """The float settings: each is a number of seconds."""
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(
        field.name
        for field in info.fields
        if isinstance(field.type, msgspec.inspect.FloatType)
        or (
            isinstance(field.type, msgspec.inspect.Metadata)
            and isinstance(field.type.type, msgspec.inspect.FloatType)
        )
    )


_DURATIONS = _durations()


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from the environment (``os.environ`` by default) and explicit overrides.

    Raises:
        ConfigurationError: a value has the wrong type or is out of range; the
            message names the variable.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(Settings):
        name = field.name
        raw = environ.get(env_name(name))
        if raw is None and name in ALIASES:
            raw = environ.get(ALIASES[name])
        if raw is not None and raw != "":
            values[name] = raw
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        detail = str(exc)
        name = detail.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in detail else ""
        where = f" ({env_name(name)} / {flag_name(name)})" if name else ""
        raise ConfigurationError(f"Invalid setting{where}: {detail}.") from exc
    for name in _DURATIONS:
        seconds = getattr(settings, name)
        if not seconds <= MAX_SECONDS:  # also NaN
            raise ConfigurationError(
                f"Invalid setting ({env_name(name)} / {flag_name(name)}): {seconds} is not a "
                f"number of seconds (at most {MAX_SECONDS:g})."
            )
    return settings


def settings_table() -> str:
    """The Markdown table of every setting (the README embeds it)."""
    rows = [
        "| setting | environment | flag | default | meaning |",
        "|---|---|---|---|---|",
    ]
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        meta = field.type
        description = ""
        if isinstance(meta, msgspec.inspect.Metadata):
            description = (meta.extra_json_schema or {}).get("description", "") or ""
        env = env_name(field.name)
        if field.name in ALIASES:
            env += f" ({ALIASES[field.name]})"
        default = field.default if field.default is not msgspec.NODEFAULT else ""
        shown = "" if default is None else f"`{default}`"
        rows.append(
            f"| {field.name} | `{env}` | `{flag_name(field.name)}` | {shown} | {description} |"
        )
    return "\n".join(rows)
