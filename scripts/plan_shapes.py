"""Measure Switchboard's plan request against a real model server: shape before and after.

    python scripts/plan_shapes.py [--base-url URL] [--runs N]

Without ``--base-url`` it starts llama.cpp's server with the bundled SmolLM2 (the
``local-llm`` extra), as ``switchboard up --local-model`` does, one for each shape. Each
run asks for the plan of a few requests with the request shape of before issue 16 (the
msgspec schema of the lenient draft, the server's default sampling, no bound on the
answer) and with today's (agents an enum, bounded steps, temperature 0, max_tokens), and
prints per shape: plans that timed out, answers that decode as a plan, plans naming only
known agents, plans the engine would run as they are (not replaced by the rules), and the
median and worst latency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import openai

from switchboard.agents import builtin_agents
from switchboard.orchestrator import AgentInfo, ChildProcess, LocalModel
from switchboard.orchestrator.engine import LocalPlanner, check_llm_plan
from switchboard.orchestrator.engine.planner import (
    SYSTEM_PROMPT,
    LLMPlanner,
    _PlanDraft,
    plan_schema,
)
from switchboard.orchestrator.llm.openai import STRUCTURED_OPTIONS, _json_schema

#: Seconds one plan may take (the issue saw an 18 s plan timeout).
TIMEOUT = 20.0
REQUESTS = [
    "what is 17*23, and what time is it in Tokyo?",
    "write a haiku about the sea",
    "count the words in 'the quick brown fox', then uppercase it",
    "what day of the week is 2026-12-25? and what is 2^10?",
]


def catalog() -> dict[str, AgentInfo]:
    return {
        name: AgentInfo(
            name=name,
            description=a.description,
            subject=f"ai.agents.{name}",
            keywords=a.keywords,
            patterns=a.patterns,
            input_hints=a.input_hints,
        )
        for name, a in builtin_agents().items()
    }


async def measure(base_url: str, runs: int, only: str | None = None) -> None:
    agents = catalog()
    rules = LocalPlanner()
    client = openai.AsyncOpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=TIMEOUT)
    lines = "\n".join(f"- {a.name}: {a.description}" for a in sorted(agents.values(), key=str))
    system = SYSTEM_PROMPT.format(max_steps=4, agents=lines)
    shapes: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "before": (_json_schema(_PlanDraft), {}),
        "after": (_json_schema(plan_schema(tuple(sorted(agents)), 4)), STRUCTURED_OPTIONS),
    }
    for label, (schema, options) in shapes.items():
        if only is not None and label != only:
            continue
        decoded = known = kept = timeouts = 0
        times: list[float] = []
        for _ in range(runs):
            for message in REQUESTS:
                tool = {"type": "function", "function": {"name": "make_plan", "parameters": schema}}
                started = time.perf_counter()
                try:
                    response = await client.chat.completions.create(
                        model="local",
                        messages=[
                            {"role": "system", "content": system},
                            {"role": "user", "content": message},
                        ],
                        tools=[tool],  # type: ignore[list-item]
                        tool_choice={"type": "function", "function": {"name": "make_plan"}},
                        **options,
                    )
                except openai.APITimeoutError:
                    timeouts += 1
                    times.append(TIMEOUT)
                    continue
                times.append(time.perf_counter() - started)
                calls = response.choices[0].message.tool_calls or []
                raw = calls[0].function.arguments if calls else ""  # type: ignore[union-attr]
                try:
                    draft = msgspec.json.decode(raw, type=_PlanDraft)
                except msgspec.MsgspecError:
                    continue
                decoded += 1
                if all(step.agent in agents for step in draft.steps):
                    known += 1
                    plan, _ = LLMPlanner._repair(draft, agents, 4)
                    if plan.steps and not check_llm_plan(plan, message, agents, rules).unusable:
                        kept += 1
        total = runs * len(REQUESTS)
        print(
            f"{label:>6}: timed out {timeouts}/{total}, decoded {decoded}/{total}, "
            f"known agents {known}/{total}, "
            f"run as planned {kept}/{total}, latency median {statistics.median(times):.2f} s, "
            f"worst {max(times):.2f} s"
        )
    await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible server (default: start one)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.base_url:
        await measure(args.base_url, args.runs)
        return
    # A server of its own for each shape: llama.cpp finishes a request whose client gave up
    # (a runaway plan keeps it busy until max_tokens or the context's end), and the next
    # shape's requests would wait behind the last one's.
    log = Path(tempfile.gettempdir()) / "switchboard-plan-shapes-model.log"
    for shape in ("before", "after"):
        child: ChildProcess
        child, base_url = LocalModel.choose(None).child(log=log, grace=60.0)
        async with child:
            await measure(base_url, args.runs, shape)


if __name__ == "__main__":
    asyncio.run(main())
