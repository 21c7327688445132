"""The plan request against the response shapes of the servers people run (docs/llm-servers.md).

llama.cpp is tested for real (tests/realmodel); here each server's documented
(or, for llama.cpp, recorded) answer to Switchboard's forced tool call is
replayed byte for byte by the scripted server, through the real ``openai``
client, and must become the same plan.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchboard.orchestrator import OpenAIProvider
from switchboard.orchestrator.engine import LLMPlanner
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.system import builtin_catalog as catalog

MESSAGE = "what is 17*23, and what time is it in Tokyo?"
PLAN = {
    "steps": [
        {"id": "s1", "agent": "calculator", "instruction": "17*23"},
        {"id": "s2", "agent": "clock", "instruction": "what time is it in Tokyo"},
    ]
}
ARGUMENTS = json.dumps(PLAN)
USAGE = {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}


def completion(message: dict[str, Any], finish_reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-replayed",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "replayed",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": USAGE,
        **extra,
    }


def call(call_id: str, **extra: Any) -> dict[str, Any]:
    function = {"name": "make_plan", "arguments": ARGUMENTS}
    return {"id": call_id, "type": "function", "function": function, **extra}


SHAPES = {
    # OpenAI: a forced function call ends with finish_reason "stop", content null.
    "openai": completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call("call_abc123")],
            "refusal": None,
        },
        "stop",
        system_fingerprint="fp_replayed",
    ),
    # llama-cpp-python 0.3.36, recorded from the real server: the grammar-constrained call,
    # repeated in the legacy function_call field.
    "llama.cpp": completion(
        {
            "content": None,
            "tool_calls": [call("call__0_make_plan_cmpl-replayed")],
            "role": "assistant",
            "function_call": {"name": "make_plan", "arguments": ARGUMENTS},
        },
        "tool_calls",
    ),
    # Ollama's OpenAI-compatible endpoint: content "" beside the calls, each with an index.
    "ollama": completion(
        {"role": "assistant", "content": "", "tool_calls": [call("call_px63ad04", index=0)]},
        "tool_calls",
        system_fingerprint="fp_ollama",
    ),
    # Ollama does not honour tool_choice: a model may answer in text, JSON in a fence.
    "ollama-text": completion(
        {"role": "assistant", "content": f"```json\n{ARGUMENTS}\n```"},
        "stop",
        system_fingerprint="fp_ollama",
    ),
    # vLLM's named function calling (guided decoding): content "", finish_reason "stop".
    "vllm": completion(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [call("chatcmpl-tool-8f2a")],
            "reasoning_content": None,
        },
        "stop",
        prompt_logprobs=None,
    ),
}


@pytest.mark.parametrize("server", sorted(SHAPES))
async def test_each_servers_answer_becomes_the_same_plan(
    fake_openai: FakeOpenAI, server: str
) -> None:
    fake_openai.enqueue(Reply.raw(json.dumps(SHAPES[server]), content_type="application/json"))
    llm = OpenAIProvider(
        model="replayed", api_key="local", base_url=fake_openai.base_url, max_retries=0
    )
    plan, usage = await LLMPlanner(llm).plan(MESSAGE, catalog(), max_steps=4)
    await llm.aclose()
    assert plan.source == "llm"
    assert [(s.id, s.agent, s.instruction) for s in plan.steps] == [
        ("s1", "calculator", "17*23"),
        ("s2", "clock", "what time is it in Tokyo"),
    ]
    assert usage.total_tokens == 160


async def test_a_server_that_rejects_the_request_shape_falls_back(fake_openai: FakeOpenAI) -> None:
    """llama-cpp-python answers 500 to a json_schema response_format; any server may reject
    a field it does not know: the local plan answers, the model's error is logged."""
    fake_openai.enqueue(Reply.server_error("1 validation error: response_format.type"))
    llm = OpenAIProvider(
        model="replayed", api_key="local", base_url=fake_openai.base_url, max_retries=0
    )
    plan, _ = await LLMPlanner(llm).plan(MESSAGE, catalog(), max_steps=4)
    await llm.aclose()
    assert plan.source == "fallback"
    assert [s.agent for s in plan.steps] == ["calculator", "clock"]
