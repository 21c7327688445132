"""The process runtime: settings, logging, health and metrics server, the part's lifecycle,
child processes, the embedded nats-server, the ``switchboard up`` supervisor and
the state file through which the other commands find it."""

from .child import ENV_SUPERVISOR, ChildProcess, free_port
from .embedded import EmbeddedNatsServer, find_nats_server
from .health import HealthServer, ReadinessCheck
from .httpclient import http_get, http_request
from .httpserver import HttpServer, QuietServer, bind_socket
from .localmodel import LocalModel, bundled_model_path
from .logs import configure_logging, get_logger
from .part import GC_THRESHOLDS, VERSION, Component, Runtime, nats_options, run_main, tune_gc
from .settings import Settings, load_settings, settings_table
from .state import (
    UpState,
    clear_up_state,
    default_data_dir,
    running_up,
    up_state_file,
    write_up_state,
)
from .tracing import add_trace_ids, configure_tracing, shutdown_tracing, tracing_wanted

__all__ = [
    "ENV_SUPERVISOR",
    "GC_THRESHOLDS",
    "VERSION",
    "ChildProcess",
    "Component",
    "EmbeddedNatsServer",
    "HealthServer",
    "HttpServer",
    "LocalModel",
    "QuietServer",
    "ReadinessCheck",
    "Runtime",
    "Settings",
    "UpState",
    "add_trace_ids",
    "bind_socket",
    "bundled_model_path",
    "clear_up_state",
    "configure_logging",
    "configure_tracing",
    "default_data_dir",
    "find_nats_server",
    "free_port",
    "get_logger",
    "http_get",
    "http_request",
    "load_settings",
    "nats_options",
    "run_main",
    "running_up",
    "settings_table",
    "shutdown_tracing",
    "tracing_wanted",
    "tune_gc",
    "up_state_file",
    "write_up_state",
]
