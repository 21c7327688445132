"""Conversations end to end over NATS: orchestrator + agents, offline by default."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from switchboard.agents import agent, builtin_agents
from switchboard.orchestrator import (
    REPLY_MARGIN,
    ConversationReply,
    ConversationRequest,
    HistoryReply,
    HistoryRequest,
    OrchestratorService,
    RemoteError,
    Requester,
    Settings,
    discover,
    encode,
)
from switchboard.orchestrator.core import Deadline
from switchboard.orchestrator.runtime import EmbeddedNatsServer
from tests.helpers import eventually
from tests.support.system import agents_running, converse, make_settings, orchestrator_running


async def test_a_multi_step_question_is_answered_offline(
    system: OrchestratorService, requester: Requester
) -> None:
    reply = await converse(requester, "what is 17*23, and what time is it in Tokyo?")
    assert "391" in reply.answer
    tokyo_hour = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:")
    assert "Tokyo" in reply.answer
    assert tokyo_hour in reply.answer or "Tokyo (Asia/Tokyo)" in reply.answer
    assert [(s.agent, s.status) for s in reply.steps] == [("calculator", "ok"), ("clock", "ok")]
    assert not reply.partial
    assert reply.error is None


async def test_the_nats_cli_request_works(system: OrchestratorService, nats_client: NATS) -> None:
    # nats req ai.orchestrator.converse '{"correlation_id":"conv-cli-1","user_id":"cli",...}'
    body = b'{"correlation_id":"conv-cli-1","user_id":"cli","message":"what is 2+2?"}'
    msg = await nats_client.request("ai.orchestrator.converse", body, timeout=20)
    reply = json.loads(msg.data)
    assert reply["correlation_id"] == "conv-cli-1"
    assert "4" in reply["answer"]


async def test_a_bad_request_from_the_cli_gets_a_readable_error(
    system: OrchestratorService, nats_client: NATS
) -> None:
    msg = await nats_client.request("ai.orchestrator.converse", b'{"message": 1}', timeout=10)
    assert (msg.headers or {}).get("Switchboard-Error") == "bad_request"
    reply = json.loads(msg.data)
    assert reply["error"]["code"] == "bad_request"
    assert "$.message" in reply["error"]["message"]


async def test_progress_events_stream_before_the_answer(
    system: OrchestratorService, requester: Requester, nats_client: NATS
) -> None:
    watched: list[str] = []
    request = ConversationRequest(
        correlation_id="conv-tester-ev1",
        user_id="tester",
        message="what is 6*7 and then count the words of the result",
        watch=True,
    )

    async def watch(msg: nats.aio.msg.Msg) -> None:
        watched.append(json.loads(msg.data)["kind"])

    sub = await nats_client.subscribe("ai.events.conv-tester-ev1", cb=watch)  # nats sub
    kinds: list[str] = []
    final: ConversationReply | None = None
    async with requester.stream(
        "ai.orchestrator.converse",
        request,
        ConversationReply,
        correlation_id=request.correlation_id,
        deadline=Deadline.after(20),
    ) as events:
        async for item in events:
            match item:
                case ConversationReply():
                    final = item
                case _:
                    kinds.append(item.kind)
    assert final is not None
    assert "42" in final.answer
    assert kinds[0] == "planned"
    assert kinds[-1] == "answered"
    assert kinds.count("step_started") == 2
    assert kinds.count("step_finished") == 2
    await eventually(lambda: watched == kinds)
    await sub.unsubscribe()


async def test_a_failed_required_step_gives_a_partial_answer(
    system: OrchestratorService, requester: Requester
) -> None:
    reply = await converse(requester, "what is 2+3; broken please")
    assert reply.partial
    failed = [s for s in reply.steps if s.status == "failed"]
    assert [s.agent for s in failed] == ["broken"]
    assert "5" in reply.answer
    assert "broken on purpose" in reply.answer


async def test_restricting_agents_limits_the_plan(
    system: OrchestratorService, requester: Requester
) -> None:
    reply = await converse(
        requester, "what is 17*23, and what time is it in Tokyo?", agents=["clock"]
    )
    assert [s.agent for s in reply.steps] == ["clock"]
    assert "391" not in reply.answer


async def test_a_question_no_agent_can_handle_says_so(
    settings: Settings, requester: Requester
) -> None:
    from tests.support.agents import upper

    async with agents_running(settings, upper), orchestrator_running(settings):
        reply = await converse(requester, "who wrote the odyssey")
    assert reply.steps == []
    assert "No agent can handle that request" in reply.answer
    assert "upper" in reply.answer


async def test_200_conversations_from_50_users_never_mix(
    system: OrchestratorService, requester: Requester
) -> None:
    async def one(user: int, n: int) -> None:
        a, b = user + 1, n + 2
        reply = await converse(
            requester, f"whoami u{user}n{n} and what is {a}*{b}", user=f"user{user}", timeout=60
        )
        outputs = {s.agent: s.output for s in reply.steps}
        assert outputs["whoami"]["user"] == f"user{user}"
        assert outputs["whoami"]["correlation_id"] == reply.correlation_id
        assert re.search(rf"\b{a * b}\b", reply.answer), reply.answer

    await asyncio.gather(*(one(u, n) for u in range(50) for n in range(4)))
    assert len(requester.tracker) == 0
    assert len(system.requester.tracker) == 0


async def test_discovery_lists_every_agent_with_its_description(
    system: OrchestratorService, nats_client: NATS
) -> None:
    infos = [json.loads(raw) for raw in await discover(nats_client, "INFO", timeout=2)]
    by_name = {i["name"]: i for i in infos}
    for name in ("calculator", "clock", "text", "llm", "summarizer", "orchestrator"):
        assert name in by_name
        assert by_name[name]["description"]
        assert by_name[name]["type"] == "io.nats.micro.v1.info_response"
    assert by_name["calculator"]["endpoints"][0]["subject"] == "ai.agents.calculator"
    assert by_name["calculator"]["endpoints"][0]["queue_group"] == "agent-calculator"
    pings = [json.loads(raw) for raw in await discover(nats_client, "PING", timeout=2)]
    assert {"calculator", "orchestrator"} <= {p["name"] for p in pings}


async def test_nats_micro_can_parse_our_service_api(
    system: OrchestratorService, nats_client: NATS
) -> None:
    from nats.micro.service import ServiceInfo, ServiceStats

    info = ServiceInfo.from_dict(
        json.loads((await nats_client.request("$SRV.INFO.calculator", b"", timeout=2)).data)
    )
    assert info.name == "calculator"
    assert info.endpoints[0].subject == "ai.agents.calculator"
    stats = ServiceStats.from_dict(
        json.loads((await nats_client.request("$SRV.STATS.calculator", b"", timeout=2)).data)
    )
    assert stats.endpoints[0].name == "calculator"


async def test_a_new_agent_is_plannable_without_a_restart(
    settings: Settings, requester: Requester
) -> None:
    @agent("weather", "Tells the weather in a city.", keywords=("weather", "forecast"))
    async def weather(task, ctx):  # type: ignore[no-untyped-def]
        return "Sunny in Paris, 21 C."

    async with orchestrator_running(settings) as service:
        before = await converse(requester, "what is the weather in Paris")
        assert before.steps == []
        async with agents_running(settings, weather):
            await eventually(lambda: "weather" in service.catalog.agents, timeout=10)
            after = await converse(requester, "what is the weather in Paris")
    assert [s.agent for s in after.steps] == ["weather"]
    assert after.answer == "Sunny in Paris, 21 C."


async def test_the_catalog_endpoint_lists_agents(
    system: OrchestratorService, requester: Requester
) -> None:
    msg = await requester.request(
        "ai.orchestrator.agents", b"{}", correlation_id="c-cat", deadline=Deadline.after(10)
    )
    names = [a["name"] for a in json.loads(msg.data)]
    assert names == sorted(names)
    assert {"calculator", "clock", "text", "llm", "summarizer"} <= set(names)


async def test_memory_survives_an_orchestrator_restart_and_is_per_user(
    settings: Settings, requester: Requester
) -> None:
    from switchboard.agents import builtin_agents

    async with agents_running(settings, *builtin_agents().values()):
        async with orchestrator_running(settings):
            await converse(requester, "what is 2+2", user="alice", conversation_id="trip")
        async with orchestrator_running(settings):  # a new replica: no state carried over
            await converse(requester, "what is 3+3", user="alice", conversation_id="trip")
            await converse(requester, "what is 9+9", user="bob", conversation_id="trip")
            alice = await _history(requester, "alice", "trip")
            bob = await _history(requester, "bob", "trip")
            mallory = await _history(requester, "mallory", "trip")
    assert [t.message for t in alice.turns] == ["what is 2+2", "what is 3+3"]
    assert "4" in alice.turns[0].answer
    assert [t.message for t in bob.turns] == ["what is 9+9"]
    assert mallory.turns == []


async def _history(requester: Requester, user: str, conversation: str) -> HistoryReply:
    return await requester.call(
        "ai.orchestrator.history",
        HistoryRequest(user_id=user, conversation_id=conversation),
        HistoryReply,
        correlation_id=f"conv-{user}-h",
        deadline=Deadline.after(10),
    )


async def test_a_conversation_deadline_holds(
    system: OrchestratorService, requester: Requester
) -> None:
    started = asyncio.get_running_loop().time()
    reply = await converse(requester, "sleep 30", timeout_s=1.0, timeout=10)
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 5
    assert reply.partial
    assert reply.steps[0].error is not None
    assert reply.steps[0].error.code == "timeout"


async def test_the_answer_arrives_before_a_callers_deadline_without_a_budget(
    system: OrchestratorService, requester: Requester
) -> None:
    # No timeout_s in the body: the orchestrator works until REPLY_MARGIN before the
    # caller's deadline, so its partial answer arrives instead of the caller's timeout.
    started = asyncio.get_running_loop().time()
    reply = await converse(requester, "sleep 30", timeout=REPLY_MARGIN + 2.0)
    assert asyncio.get_running_loop().time() - started < REPLY_MARGIN + 2.0
    assert reply.partial
    assert reply.steps[0].error is not None
    assert reply.steps[0].error.code == "timeout"


async def test_history_requests_are_validated(
    system: OrchestratorService, requester: Requester
) -> None:
    with pytest.raises(RemoteError) as caught:
        await requester.request(
            "ai.orchestrator.history",
            b'{"user_id": "a.b", "conversation_id": "x"}',
            correlation_id="c-h",
            deadline=Deadline.after(10),
        )
    assert caught.value.code.value == "bad_request"


def test_reply_shapes_are_stable() -> None:
    # The CLI user sees these keys; they are the contract.
    reply = msgspec.json.decode(encode(ConversationReply(correlation_id="c", answer="a")))
    assert set(reply) == {
        "correlation_id",
        "answer",
        "steps",
        "partial",
        "usage",
        "duration_ms",
        "error",
        "conversation_id",
    }


async def test_naming_an_agent_that_is_not_running_is_a_clear_error(
    system: OrchestratorService, requester: Requester
) -> None:
    with pytest.raises(RemoteError, match="not running: teleporter") as caught:
        await converse(requester, "beam me up", agents=["teleporter", "clock"])
    assert caught.value.code.value == "bad_request"


async def test_a_name_no_agent_ever_had_is_refused_without_waiting_or_asking_around(
    nats_server: EmbeddedNatsServer, requester: Requester, nats_client: NATS
) -> None:
    # Waiting for agents to come back is for agents that were here (NATS just came back);
    # a name never seen (a typo, a fuzzer) must not buy a discovery broadcast to every
    # agent and seconds of waiting, request after request.
    settings = make_settings(nats_server.url, catalog_refresh=600)  # no periodic rounds
    rounds: list[str] = []

    async def spy(msg: object) -> None:
        rounds.append("INFO")

    async with agents_running(settings, *builtin_agents().values()), orchestrator_running(settings):
        await converse(requester, "what is 1+1")  # the catalog is known
        sub = await nats_client.subscribe("$SRV.INFO", cb=spy)
        await nats_client.flush()
        for name in ("teleporter", "warp-drive", "holodeck"):
            for agents in ([name, "clock"], [name]):  # beside a running agent, and alone
                with pytest.raises(RemoteError, match=f"not running: {name}"):
                    await converse(requester, "beam me up", agents=agents)
        await nats_client.flush()
        await sub.unsubscribe()
    assert rounds == []


async def test_events_can_be_kept_off_the_bus(
    settings: Settings, requester: Requester, nats_client: NATS
) -> None:
    from switchboard.agents import builtin_agents

    quiet = msgspec.structs.replace(settings, publish_events=False)
    watched: list[bytes] = []

    async def watch(msg: nats.aio.msg.Msg) -> None:
        watched.append(msg.data)

    sub = await nats_client.subscribe("ai.events.>", cb=watch)
    async with agents_running(quiet, *builtin_agents().values()), orchestrator_running(quiet):
        request = ConversationRequest(correlation_id="conv-q-1", user_id="q", message="what is 1+1")
        kinds = []
        async with requester.stream(
            "ai.orchestrator.converse",
            request,
            ConversationReply,
            correlation_id="conv-q-1",
            deadline=Deadline.after(20),
        ) as events:
            async for item in events:
                if not isinstance(item, ConversationReply):
                    kinds.append(item.kind)
    await nats_client.flush()
    await sub.unsubscribe()
    assert kinds[0] == "planned"  # the requester that asked still sees the progress
    assert kinds[-1] == "answered"
    assert watched == []  # nothing on ai.events
