"""The process runtime: settings, logging, health and metrics server, the part's lifecycle,
the embedded nats-server and the ``switchboard up`` supervisor."""

from .embedded import EmbeddedNatsServer, find_nats_server
from .health import HealthServer, ReadinessCheck
from .httpserver import HttpServer, QuietServer, bind_socket
from .logs import configure_logging, get_logger
from .part import GC_THRESHOLDS, VERSION, Component, Runtime, nats_options, run_main, tune_gc
from .settings import Settings, load_settings, settings_table

__all__ = [
    "GC_THRESHOLDS",
    "VERSION",
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
    "get_logger",
    "load_settings",
    "nats_options",
    "run_main",
    "settings_table",
    "tune_gc",
]
