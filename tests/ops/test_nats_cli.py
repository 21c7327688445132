"""Every recipe of docs/nats-cli.md, sending the bytes the NATS CLI would send."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
from nats.aio.client import Client as NATS

from switchboard.orchestrator import OrchestratorService
from tests.helpers import eventually, metric

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "nats-cli.md").read_text()


def test_the_guide_shows_the_commands_tested_here() -> None:
    for command in (
        "nats req ai.orchestrator.converse",
        "nats sub 'ai.events.conv-cli-2'",
        "nats micro ls",
        "nats micro info calculator",
        "nats req ai.agents.calculator",
        "nats pub ai.cancel.conv-cli-4 ''",
        "nats kv get switchboard-history cli.notes --raw",
        "nats req ai.orchestrator.history",
        "nats req ai.orchestrator.converse -H Switchboard-Request-Id:r1",
    ):
        assert command in GUIDE


async def test_ask_the_orchestrator_directly(
    system: OrchestratorService, nats_client: NATS
) -> None:
    msg = await nats_client.request(
        "ai.orchestrator.converse",
        b'{"correlation_id":"conv-cli-1","user_id":"cli","message":"what is 17*23?"}',
        timeout=20,
    )
    reply = json.loads(msg.data)
    assert reply["correlation_id"] == "conv-cli-1"
    assert reply["answer"] == "17 * 23 = 391"
    assert [(s["id"], s["agent"], s["status"]) for s in reply["steps"]] == [
        ("s1", "calculator", "ok")
    ]
    assert reply["partial"] is False
    assert reply["error"] is None


async def test_a_request_sent_twice_with_its_id_is_answered_once(
    system: OrchestratorService, nats_client: NATS
) -> None:
    replayed = metric(
        "switchboard_endpoint_deduplicated_total", endpoint="orchestrator", how="replayed"
    )
    replies = [
        await nats_client.request(
            "ai.orchestrator.converse",
            b'{"correlation_id":"conv-cli-5","user_id":"cli","message":"what is 2+2?"}',
            timeout=20,
            headers={"Switchboard-Request-Id": "r1"},
        )
        for _ in range(2)
    ]
    assert replies[0].data == replies[1].data
    assert json.loads(replies[0].data)["answer"] == "2 + 2 = 4"
    assert (
        metric("switchboard_endpoint_deduplicated_total", endpoint="orchestrator", how="replayed")
        == replayed + 1
    )


async def test_a_malformed_request_names_the_field(
    system: OrchestratorService, nats_client: NATS
) -> None:
    msg = await nats_client.request("ai.orchestrator.converse", b'{"message": 1}', timeout=5)
    assert (msg.headers or {})["Switchboard-Error"] == "bad_request"
    assert json.loads(msg.data)["error"] == {
        "code": "bad_request",
        "message": "Invalid ConversationRequest: `$.message` must be a string, not an integer.",
    }


async def test_watch_one_conversation(system: OrchestratorService, nats_client: NATS) -> None:
    seen: list[dict] = []

    async def collect(msg: nats.aio.msg.Msg) -> None:
        seen.append(json.loads(msg.data))

    sub = await nats_client.subscribe("ai.events.conv-cli-2", cb=collect)
    await nats_client.request(
        "ai.orchestrator.converse",
        b'{"correlation_id":"conv-cli-2","user_id":"cli",'
        b'"message":"what is 6*7 then count the words of the result","watch":true}',
        timeout=20,
    )
    await eventually(lambda: bool(seen) and seen[-1]["kind"] == "answered")
    await sub.unsubscribe()
    assert seen[0]["kind"] == "planned"
    assert seen[0]["detail"]["source"] == "local"
    assert seen[1]["kind"] == "step_started"
    assert (seen[1]["step"], seen[1]["agent"]) == ("s1", "calculator")
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert all(e["correlation_id"] == "conv-cli-2" for e in seen)


async def test_agent_traffic_carries_the_documented_headers(
    system: OrchestratorService, nats_client: NATS
) -> None:
    tasks: list[nats.aio.msg.Msg] = []

    async def collect(msg: nats.aio.msg.Msg) -> None:
        tasks.append(msg)

    sub = await nats_client.subscribe("ai.agents.>", cb=collect)
    await nats_client.request(
        "ai.orchestrator.converse",
        b'{"correlation_id":"conv-cli-6","user_id":"cli","message":"what is 1+1"}',
        timeout=20,
    )
    await nats_client.request(  # followed: the agents are asked for their progress
        "ai.orchestrator.converse",
        b'{"correlation_id":"conv-cli-7","user_id":"cli","message":"what is 1+1","watch":true}',
        timeout=20,
    )
    await eventually(lambda: len(tasks) >= 2)
    await sub.unsubscribe()
    plain, watched = (t.headers or {} for t in tasks[:2])
    assert plain["Correlation-Id"] == "conv-cli-6"
    assert int(plain["Switchboard-Timeout"]) > 0
    assert "Switchboard-Heartbeat" in plain
    assert plain["Switchboard-Beats"] == "batch"
    assert "Switchboard-Progress" not in plain  # nobody follows: no progress for nobody
    assert watched["Correlation-Id"] == "conv-cli-7"
    assert watched["Switchboard-Progress"] == "1"


async def test_list_and_inspect_agents(system: OrchestratorService, nats_client: NATS) -> None:
    info = json.loads((await nats_client.request("$SRV.INFO.calculator", b"", timeout=5)).data)
    assert info["type"] == "io.nats.micro.v1.info_response"
    assert info["name"] == "calculator"
    assert info["description"].startswith("Evaluates arithmetic exactly and offline")
    endpoint = info["endpoints"][0]
    assert (endpoint["name"], endpoint["subject"], endpoint["queue_group"]) == (
        "calculator",
        "ai.agents.calculator",
        "agent-calculator",
    )
    assert set(endpoint["metadata"]) == {"keywords", "patterns", "input_hints"}
    assert info["metadata"] == {"switchboard.role": "agent"}
    stats = json.loads((await nats_client.request("$SRV.STATS.calculator", b"", timeout=5)).data)
    assert stats["type"] == "io.nats.micro.v1.stats_response"
    assert stats["endpoints"][0]["num_requests"] >= 0
    # `nats req '$SRV.PING' '' --replies 0`: every service answers
    inbox = nats_client.new_inbox()
    sub = await nats_client.subscribe(inbox)
    await nats_client.publish("$SRV.PING", b"", reply=inbox)
    names = set()
    try:
        while True:
            names.add(json.loads((await sub.next_msg(timeout=1)).data)["name"])
    except nats.errors.TimeoutError:
        pass
    await sub.unsubscribe()
    assert {"calculator", "clock", "text", "llm", "summarizer", "orchestrator"} <= names


async def test_call_one_agent(system: OrchestratorService, nats_client: NATS) -> None:
    msg = await nats_client.request(
        "ai.agents.calculator",
        b'{"correlation_id":"conv-cli-3","task_id":"s1","agent":"calculator",'
        b'"instruction":"17*23"}',
        timeout=5,
    )
    result = json.loads(msg.data)
    assert (result["correlation_id"], result["task_id"], result["ok"], result["output"]) == (
        "conv-cli-3",
        "s1",
        True,
        "17 * 23 = 391",
    )
    assert result["error"] is None


async def test_cancel_a_conversation(system: OrchestratorService, nats_client: NATS) -> None:
    before = metric("switchboard_endpoint_cancelled_total", endpoint="sleepy")
    ask = asyncio.create_task(
        nats_client.request(
            "ai.orchestrator.converse",
            b'{"correlation_id":"conv-cli-4","user_id":"cli","message":"sleep 30"}',
            timeout=20,
        )
    )
    await eventually(lambda: metric("switchboard_endpoint_in_flight", endpoint="sleepy") == 1)
    await nats_client.publish("ai.cancel.conv-cli-4", b"")  # nats pub ai.cancel.conv-cli-4 ''
    msg = await ask  # answered at once, not after 30 s
    assert (msg.headers or {})["Switchboard-Error"] == "cancelled"
    assert "conv-cli-4 was cancelled" in json.loads(msg.data)["error"]["message"]
    assert json.loads(msg.data)["error"]["code"] == "cancelled"
    # The request had no Correlation-Id header (nats req sends none): the body's id, not "".
    assert json.loads(msg.data)["correlation_id"] == "conv-cli-4"
    await eventually(
        lambda: metric("switchboard_endpoint_cancelled_total", endpoint="sleepy") == before + 1
    )


async def test_conversation_history(system: OrchestratorService, nats_client: NATS) -> None:
    await nats_client.request(
        "ai.orchestrator.converse",
        b'{"correlation_id":"conv-cli-5","user_id":"cli","message":"what is 2+2",'
        b'"conversation_id":"notes"}',
        timeout=20,
    )
    kv = await nats_client.jetstream().key_value("switchboard-history")
    assert "cli.notes" in await kv.keys()
    turns = json.loads((await kv.get("cli.notes")).value or b"")
    assert [(t["correlation_id"], t["message"], t["answer"]) for t in turns] == [
        ("conv-cli-5", "what is 2+2", "2 + 2 = 4")
    ]
    msg = await nats_client.request(
        "ai.orchestrator.history", b'{"user_id":"cli","conversation_id":"notes"}', timeout=5
    )
    assert json.loads(msg.data)["turns"] == turns
