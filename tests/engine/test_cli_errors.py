"""Bad flags, settings and files on the command line: one clear line and exit code 2.

Each case was a Python traceback (or a request that broke later) before: a port out of
range, a NaN or infinite timeout, an infinite heartbeat interval accepted by the settings
and then failing every conversation, TLS and credentials files that are missing or not
PEM, a port that is already taken.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from switchboard.orchestrator import EmbeddedNatsServer
from tests.engine.test_cli import run

NOWHERE = ("--nats-url", "nats://127.0.0.1:1")


def assert_clear(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    for text in expected:
        assert text in err, err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("up", "--port", "-1"), "'-1' is not a port"),
        (("up", "--port", "70000"), "'70000' is not a port"),
        (("ask", "hi", "--timeout", "nan", *NOWHERE), "'nan' is not a number of seconds"),
        (("ask", "hi", "--timeout", "inf", *NOWHERE), "'inf' is not a number of seconds"),
        (("ask", "hi", "--timeout", "1e308", *NOWHERE), "is not a number of seconds"),
        (("ask", "hi", "--timeout", "-1", *NOWHERE), "'-1' is not a number of seconds"),
        (("ask", "hi", "--timeout", "soon", *NOWHERE), "'soon' is not a number"),
        (("bench", "core", "--delay", "nan"), "'nan' is not a number of seconds"),
        (("bench", "e2e", "--users", "0"), "--users must be 1 or more"),
        (("bench", "core", "--rounds", "0"), "--rounds and --users must be 1 or more"),
        (("bench", "core", "--concurrency", "a"), "--concurrency 'a' is not a list"),
        (
            ("orchestrator", "--heartbeat-interval", "inf", *NOWHERE),
            "SWITCHBOARD_HEARTBEAT_INTERVAL / --heartbeat-interval): inf is not a number",
        ),
        (
            ("settings", "--conversation-timeout", "nan"),
            "SWITCHBOARD_CONVERSATION_TIMEOUT / --conversation-timeout)",
        ),
        (("settings", "--step-timeout", "inf"), "inf is not a number of seconds"),
        (("settings", "--shutdown-grace", "1e12"), "at most 3.1536e+07"),
    ],
)
async def test_bad_numbers_are_refused_before_anything_starts(
    args: tuple[str, ...], expected: str
) -> None:
    code, _, err = await run(*args)
    assert_clear(code, err, expected)


async def test_tls_and_credential_files_that_cannot_work_are_named(tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("this is not a certificate\n")
    cases = [
        (("--nats-tls-ca", str(tmp_path / "missing.pem")), "SWITCHBOARD_NATS_TLS_CA"),
        (("--nats-tls-ca", str(not_pem)), "SWITCHBOARD_NATS_TLS_CA / --nats-tls-ca"),
        (
            ("--nats-tls-cert", str(not_pem), "--nats-tls-key", str(not_pem)),
            "SWITCHBOARD_NATS_TLS_CERT / --nats-tls-cert: the certificate or its key",
        ),
        (("--nats-tls-key", str(not_pem)), "without SWITCHBOARD_NATS_TLS_CERT"),
        (("--nats-creds", str(tmp_path / "missing.creds")), "SWITCHBOARD_NATS_CREDS"),
    ]
    for flags, expected in cases:
        code, _, err = await run("ask", "hi", *flags, *NOWHERE)
        assert_clear(code, err, expected)


@pytest.mark.parametrize(
    ("part", "flag", "hint"),
    [
        (("orchestrator",), "--metrics-port", "--metrics-host/--metrics-port"),
        (("agent", "clock"), "--metrics-port", "--metrics-host/--metrics-port"),
        (("bff",), "--http-port", "--http-host/--http-port"),
    ],
)
async def test_a_taken_port_is_a_clear_error(
    nats_server: EmbeddedNatsServer, part: tuple[str, ...], flag: str, hint: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = (
            await run(*part, flag, str(port), "--metrics-port", "0", "--nats-url", nats_server.url)
            if flag != "--metrics-port"
            else await run(*part, flag, str(port), "--nats-url", nats_server.url)
        )
    assert_clear(code, err, f"Cannot listen on 127.0.0.1:{port}", "in use", hint)


async def test_ask_gives_up_connecting_within_its_timeout() -> None:
    # A server that accepts the TCP connection and never speaks: connecting had its own
    # 28 s budget whatever --timeout said.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"nats://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        code, _, err = await run("ask", "hi", "--timeout", "2", "--nats-url", url)
        elapsed = time.monotonic() - started
    assert code == 1
    assert f"Could not connect to NATS at {url}" in err
    assert "Traceback" not in err
    assert elapsed < 12  # the 2 s budget plus the interpreter's start; was 29 s


async def test_a_history_bucket_that_cannot_be_is_a_clear_error(
    nats_server: EmbeddedNatsServer,
) -> None:
    code, _, err = await run("orchestrator", "--history-bucket", "bad.name*", *NOWHERE)
    assert_clear(code, err, "SWITCHBOARD_HISTORY_BUCKET / --history-bucket")
    # Three replicas on a single server: the server refuses, and says why.
    code, _, err = await run(
        "orchestrator",
        "--history-bucket",
        "three-replicas",
        "--history-replicas",
        "3",
        "--metrics-port",
        "0",
        "--nats-url",
        nats_server.url,
    )
    assert_clear(
        code,
        err,
        "Cannot create the JetStream KV bucket three-replicas with 3 replica(s)",
        "SWITCHBOARD_HISTORY_REPLICAS",
    )
