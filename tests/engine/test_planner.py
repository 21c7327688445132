"""Planning offline, and plan validation: before anything runs."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.agents import BUILTIN_PATTERNS
from switchboard.orchestrator import AgentInfo, Plan, PlanError, PlanStep
from switchboard.orchestrator.engine import LocalPlanner, validate_plan
from switchboard.orchestrator.engine.planner import PATTERN_BUDGET, PATTERN_TIMEOUT
from tests.support.system import builtin_catalog as catalog


def test_two_independent_questions_make_two_parallel_steps() -> None:
    plan = LocalPlanner().plan(
        "what is 17*23, and what time is it in Tokyo?", catalog(), max_steps=8
    )
    assert [(s.agent, s.depends_on) for s in plan.steps] == [("calculator", []), ("clock", [])]
    assert plan.steps[0].instruction == "what is 17*23"


def test_a_clause_that_refers_back_depends_on_the_step_before() -> None:
    plan = LocalPlanner().plan(
        "calculate 2+2 then count the words of the result", catalog(), max_steps=8
    )
    assert [(s.agent, s.depends_on) for s in plan.steps] == [
        ("calculator", []),
        ("text", ["s1"]),
    ]
    assert plan.steps[1].instruction == "count the words of the result"


def test_a_summary_depends_on_everything_before_it() -> None:
    plan = LocalPlanner().plan(
        "what is 2+2, what time is it in Paris, and summarize the results",
        catalog(),
        max_steps=8,
    )
    assert plan.steps[-1].agent == "summarizer"
    assert plan.steps[-1].depends_on == ["s1", "s2"]


def test_an_open_question_goes_to_the_general_agent() -> None:
    plan = LocalPlanner().plan("who wrote the odyssey", catalog(), max_steps=8)
    assert [s.agent for s in plan.steps] == ["llm"]


def test_nothing_matches_without_a_general_agent() -> None:
    agents = {k: v for k, v in catalog().items() if k != "llm"}
    assert LocalPlanner().plan("who wrote the odyssey", agents, max_steps=8).steps == []


def test_the_plan_respects_the_step_limit() -> None:
    message = ", ".join(f"what is {i}+{i}" for i in range(30))
    plan = LocalPlanner().plan(message, catalog(), max_steps=5)
    assert len(plan.steps) == 5


def test_restricting_the_catalog_restricts_the_plan() -> None:
    agents = {"clock": catalog()["clock"]}
    plan = LocalPlanner().plan("what is 17*23, and what time is it in Tokyo?", agents, max_steps=8)
    assert [s.agent for s in plan.steps] == ["clock"]


def step(id: str, agent: str = "calculator", depends: tuple[str, ...] = ()) -> PlanStep:
    return PlanStep(id=id, agent=agent, instruction="x", depends_on=list(depends))


def test_a_cycle_is_rejected() -> None:
    plan = Plan(
        steps=[step("a", depends=("c",)), step("b", depends=("a",)), step("c", depends=("b",))]
    )
    with pytest.raises(PlanError, match="cycle"):
        validate_plan(plan, catalog(), max_steps=10)


def test_an_oversized_plan_is_rejected() -> None:
    plan = Plan(steps=[step(f"s{i}") for i in range(20)])
    with pytest.raises(PlanError, match="20 steps; at most 16"):
        validate_plan(plan, catalog(), max_steps=16)


def test_an_unknown_agent_is_rejected_with_the_available_ones() -> None:
    with pytest.raises(PlanError, match=r"unknown agents: teleporter \(available: calculator"):
        validate_plan(Plan(steps=[step("a", agent="teleporter")]), catalog(), max_steps=5)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([step("a"), step("a")], "repeats step ids: a"),
        ([step("a", depends=("zz",))], "unknown steps: zz"),
        ([step("a", depends=("a",))], "depends on itself"),
    ],
)
def test_malformed_plans_are_rejected(steps: list[PlanStep], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        validate_plan(Plan(steps=steps), catalog(), max_steps=10)


def test_a_possessive_reference_depends_on_the_step_before() -> None:
    plan = LocalPlanner().plan("uppercase hello world and count its words", catalog(), max_steps=8)
    assert [(s.agent, s.depends_on) for s in plan.steps] == [("text", []), ("text", ["s1"])]


def test_a_final_summary_is_the_answer() -> None:
    from switchboard.orchestrator import StepResult
    from switchboard.orchestrator.engine import compose

    plan = Plan(steps=[step("s1"), step("s2", agent="summarizer", depends=("s1",))])
    results = [
        StepResult(id="s1", agent="calculator", status="ok", output="17 * 23 = 391"),
        StepResult(id="s2", agent="summarizer", status="ok", output="It is 391."),
    ]
    assert compose(plan, results) == "It is 391."


def test_identical_outputs_are_not_repeated() -> None:
    from switchboard.orchestrator import StepResult
    from switchboard.orchestrator.engine import compose

    plan = Plan(steps=[step("s1"), step("s2")])
    results = [
        StepResult(id=i, agent="calculator", status="ok", output="2 + 2 = 4") for i in ("s1", "s2")
    ]
    assert compose(plan, results) == "2 + 2 = 4"


def test_agents_patterns_get_one_time_budget_per_message() -> None:
    """Each pathological pattern stops at PATTERN_TIMEOUT; all of them, at PATTERN_BUDGET.

    Two rogue agents with three exponential patterns each, on 32 clauses that trigger
    them: 192 stopped matches, about 4 s of stalled event loop without the budget.
    """
    rogue = [r"(a+)+$", r"(a|aa)+$", r"(a+)*$"]
    agents = dict(catalog())
    for name in ("rogue1", "rogue2"):
        agents[name] = AgentInfo(
            name=name, description="x", subject=f"ai.agents.{name}", patterns=tuple(rogue)
        )
    message = "; ".join(["a" * 30 + "b"] * 32 + ["calculate 2+2"])
    started = time.perf_counter()
    plan = LocalPlanner().plan(message, agents, max_steps=40)
    took = time.perf_counter() - started
    assert took < PATTERN_BUDGET + 10 * PATTERN_TIMEOUT, f"{took:.2f} s"
    assert plan.steps[-1].agent == "calculator"  # keywords still plan past the budget


WORDS = [
    "what", "is", "17", "1.5", "*", "+", "x", "times", "squared", "percent", "of", "sqrt(",
    "square root of", "time", "in", "Tokyo", "New York", "current", "date", "uppercase",
    "reverse", "count", "words", "summarize", "then", "and", "also", ",", ".", "?", ":",
    '"hello world"', "the result", "2026-11-24", "İstanbul", "straße", "\t", "\n",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=14))
def test_trusted_patterns_plan_exactly_as_the_guarded_ones(words: list[str]) -> None:
    """Built-in patterns run without the regex timeout: the same plans as with it."""
    message = " ".join(words)
    agents = catalog()
    trusted = LocalPlanner(BUILTIN_PATTERNS).plan(message, agents, max_steps=8)
    assert trusted == LocalPlanner().plan(message, agents, max_steps=8)


def test_an_agent_cannot_get_its_own_pattern_trusted() -> None:
    """Trust is by a pattern's text: advertising a built-in pattern gains only that one."""
    rogue = AgentInfo(
        name="rogue",
        description="x",
        subject="ai.agents.rogue",
        patterns=(r"(a+)+$", next(iter(BUILTIN_PATTERNS))),
    )
    agents = {**catalog(), "rogue": rogue}
    message = "; ".join(["a" * 30 + "b"] * 32)
    started = time.perf_counter()
    LocalPlanner(BUILTIN_PATTERNS).plan(message, agents, max_steps=40)
    assert time.perf_counter() - started < PATTERN_BUDGET + 10 * PATTERN_TIMEOUT
