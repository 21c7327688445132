"""The process runtime: settings, logging, health and metrics server, the part's lifecycle,
child processes, the embedded nats-server and the ``switchboard up`` supervisor."""

from .child import ENV_SUPERVISOR, ChildProcess, free_port
from .embedded import EmbeddedNatsServer, find_nats_server
from .health import HealthServer, ReadinessCheck
from .httpclient import http_get, http_request
from .httpserver import HttpServer, QuietServer, bind_socket
from .logs import configure_logging, get_logger
from .part import GC_THRESHOLDS, VERSION, Component, Runtime, nats_options, run_main, tune_gc
from .settings import Settings, load_settings, settings_table

__all__ = [
    "ENV_SUPERVISOR",
    "GC_THRESHOLDS",
    "VERSION",
    "ChildProcess",
    "Component",
    "EmbeddedNatsServer",
    "HealthServer",
    "HttpServer",
    "QuietServer",
    "ReadinessCheck",
    "Runtime",
    "Settings",
    "bind_socket",
    "configure_logging",
    "find_nats_server",
    "free_port",
    "get_logger",
    "http_get",
    "http_request",
    "load_settings",
    "nats_options",
    "run_main",
    "settings_table",
    "tune_gc",
]
