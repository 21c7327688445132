"""Security: per-part NATS credentials end to end, TLS, secrets kept out of every output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest
import trustme

from switchboard.agents import builtin_agents
from switchboard.bff import build_bff
from switchboard.orchestrator import ConnectionClosedError, EmbeddedNatsServer, Runtime, Settings
from switchboard.orchestrator.core import Deadline
from switchboard.orchestrator.testing import running_nats
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.nats_jwt import operator_setup
from tests.support.nats_users import NATS_DIR, dev_env, password
from tests.support.system import agents_running, make_settings, orchestrator_running
from tests.support.up import start_up


@contextlib.asynccontextmanager
async def secured_nats() -> AsyncIterator[EmbeddedNatsServer]:
    """nats-server with the shipped users and permissions (deploy/nats/nats.conf)."""
    async with running_nats(config_file=NATS_DIR / "nats.conf", env=dev_env()) as server:
        yield server


def as_part(url: str, user: str, inbox: str = "_INBOX", **more: object) -> Settings:
    return make_settings(
        url, nats_user=user, nats_password=password(user), inbox_prefix=inbox, **more
    )


async def test_each_part_works_with_its_own_credentials() -> None:
    async with secured_nats() as server, contextlib.AsyncExitStack() as stack:
        for name, agent in builtin_agents().items():
            await stack.enter_async_context(
                agents_running(as_part(server.url, f"agent-{name}"), agent)
            )
        orchestrator = as_part(server.url, "orchestrator", "_INBOX_orchestrator")
        await stack.enter_async_context(orchestrator_running(orchestrator))
        bff = as_part(server.url, "bff", "_INBOX_bff", http_port=0)
        runtime = Runtime(bff, part="bff", name="test", health=False, configure_logs=False)
        await runtime.connect()
        stack.push_async_callback(runtime.shutdown)
        http_server = await build_bff(runtime)
        await runtime.start()
        async with httpx.AsyncClient(base_url=http_server.url, timeout=30) as http:
            reply = await http.post(
                "/v1/chat", json={"message": "what is 17*23, and what time is it in Tokyo?"}
            )
            assert reply.status_code == 200, reply.text
            assert "391" in reply.json()["answer"]
            assert [s["status"] for s in reply.json()["steps"]] == ["ok", "ok"]
            agents = await http.get("/v1/agents")
            assert {"calculator", "clock", "text", "llm", "summarizer"} <= {
                a["name"] for a in agents.json()
            }


async def test_the_bff_credentials_cannot_read_anyones_events() -> None:
    async with secured_nats() as server:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await nats.connect(
            server.url,
            user="bff",
            password=password("bff"),
            inbox_prefix="_INBOX_bff",
            error_cb=on_error,
        )
        seen: list[bytes] = []

        async def collect(msg: nats.aio.msg.Msg) -> None:
            seen.append(msg.data)

        await nc.subscribe("ai.events.>", cb=collect)
        ops = await nats.connect(server.url, user="ops", password=password("ops"))
        await ops.publish("ai.events.conv-alice-1", b'{"kind": "answered"}')
        await ops.flush()
        await asyncio.sleep(0.5)
        assert seen == []
        assert any("permissions violation" in e.lower() for e in errors), errors
        await ops.close()
        await nc.close()


async def test_anonymous_clients_are_refused() -> None:
    async with secured_nats() as server:
        settings = make_settings(server.url)
        runtime = Runtime(
            settings, part="bff", name="anonymous", health=False, configure_logs=False
        )
        with pytest.raises(ConnectionClosedError, match="Could not connect"):
            await runtime.connect()


@contextlib.asynccontextmanager
async def tls_nats(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedNatsServer, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    config = tmp_path / "tls.conf"
    config.write_text(f'tls {{\n  cert_file: "{cert_file}"\n  key_file: "{key_file}"\n}}\n')
    async with running_nats(config_file=config) as server:
        yield server, ca_file


@contextlib.asynccontextmanager
async def calculator_answers(settings: Settings, name: str) -> AsyncIterator[Runtime]:
    """A calculator agent and a runtime, both on ``settings``: 6*7 answered over them."""
    async with agents_running(settings, builtin_agents()["calculator"]):
        runtime = Runtime(settings, part="test", name=name, health=False, configure_logs=False)
        await runtime.connect()
        requester = runtime.requester  # wired before start: the runtime starts it
        await runtime.start()
        try:
            msg = await requester.request(
                "ai.agents.calculator",
                b'{"correlation_id":"c","task_id":"s1","agent":"calculator","instruction":"6*7"}',
                correlation_id="c",
                deadline=Deadline.after(10),
            )
            assert json.loads(msg.data)["output"] == "6 * 7 = 42"
            yield runtime
        finally:
            await runtime.shutdown()


async def test_tls_to_nats_works_when_configured(tmp_path: Path) -> None:
    async with tls_nats(tmp_path) as (server, ca_file):
        url = server.url.replace("nats://", "tls://")
        settings = make_settings(url, nats_tls_ca=str(ca_file))
        async with calculator_answers(settings, "tls") as runtime:
            assert runtime.nc.connected_url is not None
            assert isinstance(
                runtime.nc._transport._io_writer.get_extra_info("ssl_object"), ssl.SSLObject
            )


async def test_tls_without_the_right_ca_is_refused(tmp_path: Path) -> None:
    async with tls_nats(tmp_path) as (server, _):
        other_ca = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other_ca))
        settings = make_settings(server.url.replace("nats://", "tls://"), nats_tls_ca=str(other_ca))
        runtime = Runtime(settings, part="test", name="tls", health=False, configure_logs=False)
        with pytest.raises(ConnectionClosedError):
            await runtime.connect()


async def test_tls_asked_for_is_never_given_up_for_plaintext(tmp_path: Path) -> None:
    # nats-py upgrades only when the server asks for TLS: to a server (or a man in the
    # middle) that does not, a tls:// URL sent the password in clear.
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    async with running_nats() as server:  # no TLS
        tls_url = server.url.replace("nats://", "tls://")
        for settings in (
            make_settings(tls_url, nats_user="bff", nats_password="hunter2"),
            make_settings(server.url, nats_tls_ca=str(ca), nats_user="bff", nats_password="x"),
        ):
            runtime = Runtime(settings, part="test", name="tls", health=False, configure_logs=False)
            with pytest.raises(ConnectionClosedError, match="did not offer TLS"):
                await runtime.connect()
        plain = Runtime(
            make_settings(server.url), part="test", name="plain", health=False, configure_logs=False
        )
        await plain.connect()  # no TLS asked for: plaintext is what was configured
        await plain.shutdown()


async def test_a_creds_file_connects_a_part_to_an_operator_mode_server(tmp_path: Path) -> None:
    # nats-py signs with a .creds file through the nkeys package: without it installed
    # (nats-py's [nkeys] extra) SWITCHBOARD_NATS_CREDS was a ModuleNotFoundError.
    config, creds = operator_setup(tmp_path)
    async with running_nats(config_file=config) as server:
        async with calculator_answers(make_settings(server.url, nats_creds=str(creds)), "creds"):
            pass
        anonymous = Runtime(
            make_settings(server.url), part="test", name="anon", health=False, configure_logs=False
        )
        with pytest.raises(ConnectionClosedError, match="Could not connect"):
            await anonymous.connect()


@pytest.mark.parametrize("user_id", ["a.b", "*", ">", "a b", "x" * 65])
async def test_subject_injection_in_user_ids_is_rejected(
    system: object, nats_client: nats.aio.client.Client, user_id: str
) -> None:
    body = json.dumps({"correlation_id": "conv-x-1", "user_id": user_id, "message": "hi"})
    msg = await nats_client.request("ai.orchestrator.converse", body.encode(), timeout=10)
    assert (msg.headers or {})["Switchboard-Error"] == "bad_request"
    assert "$.user_id" in json.loads(msg.data)["error"]["message"]


SECRETS = {
    "api key": "alice-secret-api-key-7d1e4c",
    "other api key": "bob-secret-api-key-99aa31",
    "openai key": "sk-test-openai-secret-4f9b2a",
}


async def test_no_secret_appears_in_logs_metrics_errors_or_agents() -> None:
    async with FakeOpenAI() as fake:
        fake.default = Reply.text("An answer from the model.")
        env = {
            "SWITCHBOARD_API_KEYS": f"alice:{SECRETS['api key']},bob:{SECRETS['other api key']}",
            "OPENAI_API_KEY": SECRETS["openai key"],
            "OPENAI_BASE_URL": fake.base_url,
            "SWITCHBOARD_LOG_LEVEL": "debug",
        }
        up = await asyncio.to_thread(start_up, env=env)
        bodies: list[str] = []
        try:
            async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
                alice = {"Authorization": f"Bearer {SECRETS['api key']}"}
                for response in (
                    await http.post("/v1/chat", json={"message": "what is 2+2"}, headers=alice),
                    await http.post(
                        "/v1/chat", json={"message": "who wrote the odyssey"}, headers=alice
                    ),
                    await http.post("/v1/chat", content=b"{bad", headers=alice),
                    await http.post(
                        "/v1/chat",
                        json={"message": "x"},
                        headers={"Authorization": f"Bearer {SECRETS['api key']}x"},
                    ),
                    await http.get("/v1/agents", headers=alice),
                    await http.get("/v1/conversations/none", headers=alice),
                    await http.get("/docs/openapi.json"),
                ):
                    bodies.append(response.text + json.dumps(dict(response.headers)))
                for url in up.metrics.values():
                    bodies.append((await http.get(url)).text)
                    bodies.append((await http.get(url.replace("/metrics", "/debug/pending"))).text)
            assert fake.requests, "the model was never called: the test would prove nothing"
            assert fake.request_headers[0]["authorization"] == f"Bearer {SECRETS['openai key']}"
        finally:
            assert await asyncio.to_thread(up.stop) == 0
        outputs = {"logs": up.logs(), "stdout": up.output(), "responses": "\n".join(bodies)}
        assert len(outputs["logs"]) > 1000  # debug logs were written
        for where, text in outputs.items():
            for what, secret in SECRETS.items():
                assert secret not in text, f"the {what} appears in the {where}"
