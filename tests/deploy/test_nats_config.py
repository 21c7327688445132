"""The NATS configs of deploy/nats: they parse, and their permissions hold on a real server.

A nats-server started with deploy/nats/nats.conf (passwords from dev.env)
and plain nats-py clients logged in as each part. A denied publish or
subscribe reaches the client asynchronously (error callback: "permissions
violation for ..."), and nothing is delivered. The 3-node cluster config is
started for real too: routes authenticate, JetStream replicates.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.orchestrator.core.discovery import discover
from switchboard.orchestrator.core.kv import KVBucket
from switchboard.orchestrator.runtime import Settings, free_port
from switchboard.orchestrator.runtime.embedded import (
    LIMITS_CONF,
    EmbeddedNatsServer,
    find_nats_server,
)
from tests.helpers import eventually
from tests.support.nats_users import dev_env, password

from .conftest import NATS_DIR, render

CONFIGS = ("nats.conf", "cluster-node.conf")
#: How long "nothing arrived" is watched for, after both sides flushed.
QUIET = 0.2


async def _ignore(exc: Exception) -> None:
    pass


# -- the configs parse -------------------------------------------------------------------------


def check_config(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(find_nats_server()), "-t", "-c", str(NATS_DIR / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_config_is_valid(name):
    proc = check_config(name, {"PATH": os.environ.get("PATH", ""), **dev_env()})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "is valid" in proc.stderr + proc.stdout


@pytest.mark.parametrize("name", CONFIGS)
def test_config_takes_passwords_from_the_environment(name):
    proc = check_config(name, {"PATH": os.environ.get("PATH", "")})
    assert proc.returncode != 0
    assert (
        "NATS_PASSWORD_" in proc.stderr
        or "NATS_ROUTE_" in proc.stderr
        or "POD_NAME" in (proc.stderr)
    )
    assert "can not be found" in proc.stderr


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_statefulset_command_line_is_valid(overlay, tmp_path):
    """The StatefulSet's nats-server arguments, with the pod's paths mapped to local ones."""
    (statefulset,) = [obj for obj in render(overlay) if obj["kind"] == "StatefulSet"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    args = [
        arg.replace("/etc/nats-config/", f"{NATS_DIR}/")
        .replace("/data/", f"{tmp_path}/data/")
        .replace("/var/run/nats/", f"{tmp_path}/")
        .replace("$(POD_NAME)", "nats-0")
        for arg in container["args"]
    ]
    proc = subprocess.run(
        [str(find_nats_server()), "-t", *args],
        env={"PATH": os.environ.get("PATH", ""), **dev_env()},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


# -- a server with nats.conf -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedNatsServer]:
    """deploy/nats/nats.conf on a free loopback port (monitoring on a free port too)."""
    srv = EmbeddedNatsServer(config_file=NATS_DIR / "nats.conf", port=-1, monitor_port=-1)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dev_env().items():
            patch.setenv(name, value)
        srv.start()  # the child process keeps the environment it started with
    try:
        yield srv
    finally:
        srv.cleanup()


def test_the_server_takes_the_slow_consumer_limits_of_nats_conf(server: EmbeddedNatsServer):
    """What the server buffers per client, and how long it waits for one: on purpose, and
    the same as the embedded server's (the parts' byte budgets are half of it)."""
    url = f"http://127.0.0.1:{server.monitor_port}/varz"
    with urllib.request.urlopen(url, timeout=5) as response:
        varz = json.load(response)
    assert varz["max_pending"] == 128 * 1024 * 1024
    assert varz["write_deadline"] == 10_000_000_000  # ns
    assert varz["max_pending"] == 2 * Settings().max_inflight_bytes
    embedded = dict(
        line.split(": ", 1) for line in LIMITS_CONF.splitlines() if line and ": " in line
    )
    assert int(embedded["max_pending"]) == varz["max_pending"]


@dataclass
class Conn:
    """A client logged in as one user, and the asynchronous errors it was sent."""

    user: str
    nc: NATS
    errors: list[Exception] = field(default_factory=list)

    def violated(self, kind: str, subject: str) -> bool:
        wanted = f'permissions violation for {kind} to "{subject}"'.lower()
        return any(wanted in str(exc).lower() for exc in self.errors)

    async def denied(self, kind: str, subject: str) -> None:
        """Wait until the server has refused a ``kind`` (publish/subscription) on ``subject``."""
        await eventually(lambda: self.violated(kind, subject), timeout=5)


INBOXES = {"bff": "_INBOX_bff", "orchestrator": "_INBOX_orchestrator"}


@pytest_asyncio.fixture
async def login(server: EmbeddedNatsServer) -> AsyncIterator:
    """``await login(user)``: a connection as ``user``, with the inbox prefix that part uses."""
    opened: list[Conn] = []

    async def connect(user: str, **options) -> Conn:
        conn = Conn(user, NATS())
        options.setdefault("inbox_prefix", INBOXES.get(user, "_INBOX"))

        async def on_error(exc: Exception) -> None:
            conn.errors.append(exc)

        await conn.nc.connect(
            server.url,
            user=user,
            password=password(user),
            error_cb=on_error,
            allow_reconnect=False,
            **options,
        )
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        await conn.nc.close()


async def collect(conn: Conn, subject: str, queue: str = "") -> list[Msg]:
    received: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        received.append(msg)

    await conn.nc.subscribe(subject, queue=queue, cb=on_msg)
    await conn.nc.flush()
    return received


async def settle(*conns: Conn) -> None:
    """Let in-flight messages arrive: flush every connection, then wait a little."""
    for conn in conns:
        await conn.nc.flush()
    await asyncio.sleep(QUIET)


# -- authentication ----------------------------------------------------------------------------


async def refused(server: EmbeddedNatsServer, **credentials: str) -> None:
    nc = NATS()
    try:
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nc.connect(
                server.url,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=_ignore,
                **credentials,
            )
    finally:
        await nc.close()  # nats-py keeps the socket of a refused connection open


async def test_anonymous_connection_is_refused(server):
    await refused(server)


async def test_wrong_password_is_refused(server):
    await refused(server, user="bff", password="not-the-password")


async def test_agent_cannot_log_in_as_another_agent(server):
    await refused(server, user="agent-clock", password=password("agent-calculator"))


# -- agents ------------------------------------------------------------------------------------


async def test_agent_cannot_publish_to_the_orchestrator(login):
    orchestrator = await login("orchestrator")
    received = await collect(orchestrator, "ai.orchestrator.converse", "ai-orchestrator")
    agent = await login("agent-calculator")

    await agent.nc.publish("ai.orchestrator.converse", b"{}")

    await agent.denied("publish", "ai.orchestrator.converse")
    await settle(agent, orchestrator)
    assert received == []


async def test_agent_cannot_read_the_bff_inbox(login):
    agent = await login("agent-calculator")
    received = await collect(agent, "_INBOX_bff.>")
    await agent.denied("subscription", "_INBOX_bff.>")
    bff = await login("bff")

    await bff.nc.publish("_INBOX_bff.abc.1", b"a reply meant for the BFF")

    await settle(bff, agent)
    assert received == []


async def test_agent_cannot_serve_another_agents_subject(login):
    agent = await login("agent-calculator")
    await collect(agent, "ai.agents.clock", "agent-clock")
    await agent.denied("subscription", "ai.agents.clock")


async def test_agent_cannot_answer_discovery_for_another_agent(login):
    agent = await login("agent-calculator")
    await collect(agent, "$SRV.INFO.clock")
    await agent.denied("subscription", "$SRV.INFO.clock")


async def test_agent_serves_its_subject_and_streams_replies(login):
    agent = await login("agent-calculator")

    async def handle(msg: Msg) -> None:
        for kind in ("accepted", "progress", "final"):
            await agent.nc.publish(msg.reply, kind.encode())

    await agent.nc.subscribe("ai.agents.calculator", queue="agent-calculator", cb=handle)
    await agent.nc.flush()
    orchestrator = await login("orchestrator")
    inbox = orchestrator.nc.new_inbox()
    replies = await collect(orchestrator, inbox)

    await orchestrator.nc.publish("ai.agents.calculator", b"2+2", reply=inbox)

    await eventually(lambda: len(replies) == 3, timeout=5)
    assert [msg.data for msg in replies] == [b"accepted", b"progress", b"final"]
    assert inbox.startswith("_INBOX_orchestrator.")
    assert agent.errors == []


async def test_agent_cannot_publish_to_an_inbox_that_did_not_ask_it(login):
    orchestrator = await login("orchestrator")
    inbox = orchestrator.nc.new_inbox()
    received = await collect(orchestrator, inbox)
    agent = await login("agent-calculator")

    await agent.nc.publish(inbox, b"a forged reply")

    await agent.denied("publish", inbox)
    await settle(agent, orchestrator)
    assert received == []


async def test_orchestrator_discovers_an_agent_with_the_service_api(login):
    agent = await login("agent-calculator")

    async def answer(msg: Msg) -> None:
        await msg.respond(b'{"name": "calculator"}')

    for subject in ("$SRV.INFO", "$SRV.INFO.calculator"):
        await agent.nc.subscribe(subject, cb=answer)
    await agent.nc.flush()
    orchestrator = await login("orchestrator")

    found = await discover(orchestrator.nc, "INFO", timeout=2.0)

    assert found == [b'{"name": "calculator"}']
    assert agent.errors == []


# -- the BFF -----------------------------------------------------------------------------------


async def test_bff_asks_the_orchestrator_and_gets_the_reply_on_its_inbox(login):
    orchestrator = await login("orchestrator")

    async def answer(msg: Msg) -> None:
        await msg.respond(b'{"answer": "4"}')

    await orchestrator.nc.subscribe("ai.orchestrator.converse", queue="ai-orchestrator", cb=answer)
    await orchestrator.nc.flush()
    bff = await login("bff")

    reply = await bff.nc.request("ai.orchestrator.converse", b'{"message": "2+2?"}', timeout=5)

    assert reply.data == b'{"answer": "4"}'
    assert reply.subject.startswith("_INBOX_bff.")
    assert bff.errors == []
    assert orchestrator.errors == []


async def test_bff_can_cancel_and_probe_its_own_inbox(login):
    bff = await login("bff")
    inbox = bff.nc.new_inbox()
    received = await collect(bff, inbox)

    await bff.nc.publish("ai.cancel.conv-alice-1", b"")
    await bff.nc.publish(inbox, b"probe")  # the inbox watchdog's liveness probe

    await eventually(lambda: len(received) == 1, timeout=5)
    await settle(bff)
    assert bff.errors == []


async def test_bff_cannot_call_an_agent(login):
    agent = await login("agent-calculator")
    received = await collect(agent, "ai.agents.calculator", "agent-calculator")
    bff = await login("bff")

    await bff.nc.publish("ai.agents.calculator", b"2+2")

    await bff.denied("publish", "ai.agents.calculator")
    await settle(bff, agent)
    assert received == []


async def test_bff_gets_no_reply_without_its_inbox_prefix(login):
    orchestrator = await login("orchestrator")

    async def answer(msg: Msg) -> None:
        await msg.respond(b"{}")

    await orchestrator.nc.subscribe("ai.orchestrator.converse", cb=answer)
    await orchestrator.nc.flush()
    bff = await login("bff", inbox_prefix="_INBOX")

    with pytest.raises(nats.errors.TimeoutError):
        await bff.nc.request("ai.orchestrator.converse", b"{}", timeout=0.5)
    assert any("permissions violation for subscription" in str(e).lower() for e in bff.errors)


# -- the orchestrator --------------------------------------------------------------------------


async def test_orchestrator_cannot_read_the_bff_inbox(login):
    orchestrator = await login("orchestrator")
    await collect(orchestrator, "_INBOX_bff.>")
    await orchestrator.denied("subscription", "_INBOX_bff.>")


async def test_orchestrator_keeps_history_in_its_kv_bucket(login):
    orchestrator = await login("orchestrator")
    bucket = KVBucket(orchestrator.nc, "switchboard-history")

    await bucket.open()
    assert await bucket.put_if("conv-alice-1", b'{"turns": []}', None)

    stored = await bucket.get("conv-alice-1")
    assert stored is not None
    assert stored[0] == b'{"turns": []}'
    assert orchestrator.errors == []


async def test_orchestrator_cannot_write_other_kv_buckets(login):
    orchestrator = await login("orchestrator")
    await orchestrator.nc.publish("$KV.other-bucket.key", b"x")
    await orchestrator.denied("publish", "$KV.other-bucket.key")


async def test_ops_user_watches_events_but_reads_no_part_inbox(login):
    ops = await login("ops")
    events = await collect(ops, "ai.events.>")
    await collect(ops, "_INBOX_orchestrator.>")
    await ops.denied("subscription", "_INBOX_orchestrator.>")
    orchestrator = await login("orchestrator")

    await orchestrator.nc.publish("ai.events.conv-alice-1", b'{"kind": "planned"}')

    await eventually(lambda: len(events) == 1, timeout=5)


# -- the 3-node cluster config -----------------------------------------------------------------


def _cluster_node(name: str, cluster_port: int, routes: list[str], workdir: Path):
    env = {**dev_env(), "POD_NAME": name}
    env.update({f"NATS_ROUTE_{i}": route for i, route in enumerate(routes)})
    # --cluster moves the route listener to a free loopback port. It must carry the
    # route credentials: a --cluster URL without them switches route authentication off.
    listen = f"nats://route:{env['NATS_ROUTE_PASSWORD']}@127.0.0.1:{cluster_port}"
    srv = EmbeddedNatsServer(
        config_file=NATS_DIR / "cluster-node.conf",
        port=-1,
        monitor_port=-1,
        extra_args=("--cluster", listen, "--pid", str(workdir / f"{name}.pid")),
    )
    with pytest.MonkeyPatch.context() as patch:
        for var, value in env.items():
            patch.setenv(var, value)
        srv.start()
    return srv


@dataclass
class Cluster:
    nodes: list[EmbeddedNatsServer]
    route_ports: list[int]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """cluster-node.conf x 3 on loopback, routes with the route user's password."""
    workdir = tmp_path_factory.mktemp("cluster")
    ports = [free_port() for _ in range(3)]
    secret = dev_env()["NATS_ROUTE_PASSWORD"]
    routes = [f"nats://route:{secret}@127.0.0.1:{port}" for port in ports]
    nodes: list[EmbeddedNatsServer] = []
    try:
        for index, port in enumerate(ports):
            nodes.append(_cluster_node(f"nats-{index}", port, routes, workdir))
        yield Cluster(nodes, ports)
    finally:
        for node in nodes:
            node.cleanup()


async def _orchestrator_on(node: EmbeddedNatsServer) -> NATS:
    return await nats.connect(
        node.url,
        user="orchestrator",
        password=password("orchestrator"),
        inbox_prefix="_INBOX_orchestrator",
        error_cb=_ignore,
    )


async def _stream_has_leader(js, stream: str) -> bool:
    info = await js.stream_info(stream)
    return info.cluster is not None and bool(info.cluster.leader)


async def eventually_async(check, timeout: float = 10.0) -> None:
    give_up = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < give_up, f"not true within {timeout}s"
        await asyncio.sleep(0.05)


async def test_cluster_replicates_the_history_bucket_over_authenticated_routes(cluster):
    first = await _orchestrator_on(cluster.nodes[0])
    last = await _orchestrator_on(cluster.nodes[2])
    try:
        js = first.jetstream()
        for _ in range(150):  # the JetStream meta leader is elected within seconds
            try:
                await js.account_info()
                break
            except nats.errors.Error:
                await asyncio.sleep(0.1)
        kv = await js.create_key_value(bucket="switchboard-history", replicas=3)
        await eventually_async(lambda: _stream_has_leader(js, "KV_switchboard-history"))
        await kv.put("conv-alice-1", b"hello")

        entry = await (await last.jetstream().key_value("switchboard-history")).get("conv-alice-1")

        assert entry.value == b"hello"
        info = await js.stream_info("KV_switchboard-history")
        assert info.cluster is not None
        assert info.cluster.name == "switchboard"
        assert len(info.cluster.replicas or []) == 2
    finally:
        await first.close()
        await last.close()


async def test_cluster_refuses_a_route_without_the_password(cluster, tmp_path):
    intruder_conf = tmp_path / "intruder.conf"
    intruder_conf.write_text(
        "server_name: intruder\n"
        "cluster {\n"
        "  name: switchboard\n"
        "  listen: 127.0.0.1:-1\n"
        f'  routes: ["nats://127.0.0.1:{cluster.route_ports[0]}"]\n'
        "}\n"
    )
    intruder = EmbeddedNatsServer(config_file=intruder_conf, port=-1, jetstream=False)
    await asyncio.to_thread(intruder.start)
    try:
        await eventually(
            lambda: "authorization violation" in intruder.log_tail(50).lower(), timeout=10
        )
        assert "authentication error" in cluster.nodes[0].log_tail(50)
    finally:
        await asyncio.to_thread(intruder.cleanup)
