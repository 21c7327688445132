"""``switchboard bff``: the HTTP API process."""

from __future__ import annotations

import ipaddress
import os

import structlog

from switchboard.orchestrator import (
    ENV_SUPERVISOR,
    ConfigurationError,
    HttpServer,
    Runtime,
    Settings,
)
from switchboard.orchestrator.core import tracing

from .app import create_app
from .auth import LOCAL_USER, ApiKeys, AuthRateLimiter
from .gateway import Gateway
from .limits import InFlightLimiter
from .middleware import metrics_middleware
from .state import BffState
from .tracing import traced

__all__ = ["build_bff", "is_loopback", "run_bff", "trusted_proxies"]

log = structlog.get_logger("switchboard.bff")


def trusted_proxies(setting: str) -> list[str]:
    """The proxy addresses/networks of ``SWITCHBOARD_TRUSTED_PROXIES``.

    Raises:
        ConfigurationError: an entry is not an IP address or network.
    """
    proxies = [entry.strip() for entry in setting.split(",") if entry.strip()]
    for entry in proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"Invalid setting SWITCHBOARD_TRUSTED_PROXIES: {entry!r} is not an IP address "
                "or network (e.g. 10.0.0.0/8)."
            ) from None
    return proxies


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def build_bff(runtime: Runtime) -> HttpServer:
    """Wire the BFF into a connected runtime; returns its HTTP server (added to the runtime).

    Raises:
        ConfigurationError: no API keys and a non-loopback address; a bad proxy address.
    """
    settings = runtime.settings
    proxies = trusted_proxies(settings.trusted_proxies)
    keys = ApiKeys.from_settings(settings)
    if not keys.enabled and not is_loopback(settings.http_host):
        raise ConfigurationError(
            f"Refusing to listen on {settings.http_host} without API keys: anyone could use it. "
            "Set SWITCHBOARD_API_KEYS (user:key,...) or SWITCHBOARD_API_KEYS_FILE, or listen on "
            "127.0.0.1."
        )
    gateway = Gateway(
        runtime.requester,
        conversation_timeout=settings.conversation_timeout,
        heartbeat=settings.heartbeat_interval,
        accept_timeout=settings.accept_timeout,
    )
    state = BffState(
        gateway=gateway,
        keys=keys,
        limiter=InFlightLimiter(
            per_user=settings.max_inflight_per_user,
            total=settings.max_inflight,
            total_bytes=settings.max_inflight_bytes,
        ),
        auth_limiter=AuthRateLimiter(),
        ready=lambda: {
            "nats": runtime.nc.is_connected,
            "inbox": runtime.requester.consumer.running,
        },
    )
    app = metrics_middleware(create_app(state))
    if tracing.ENABLED:
        app = traced(app)  # outermost: the HTTP metrics' exemplars name the request's trace
    server = HttpServer(
        app,
        host=settings.http_host,
        port=settings.http_port,
        grace=settings.shutdown_grace,
        trusted_proxies=proxies,
        address_hint="; choose another with --http-host/--http-port",
        # What is still waiting for the orchestrator when the grace ends answers 503
        # shutting_down (an SSE error event) instead of being cut off by the server.
        on_stop=runtime.requester.drain,
    )
    runtime.add(server, ready=lambda: server.running, name="http")
    if keys.enabled:
        log.info("api keys loaded", users=len(keys.users))
    else:
        # Under `switchboard up` its banner says so: a warning would come before the banner.
        say = log.info if os.environ.get(ENV_SUPERVISOR) else log.warning
        say(
            "no API keys configured: local mode, loopback only, every caller is the "
            f"user '{LOCAL_USER}'"
        )
    return server


async def run_bff(settings: Settings) -> int:
    runtime = Runtime(settings, part="bff", name="bff", health=False)
    await runtime.connect()
    try:
        server = await build_bff(runtime)
    except ConfigurationError:
        await runtime.shutdown()
        raise

    async def announce() -> None:
        log.info("bff listening", url=server.url)

    await runtime.run(on_ready=announce)
    return 0
