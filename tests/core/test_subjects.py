"""Every subject of an installation comes from ``Subjects`` and starts with its prefix."""

from __future__ import annotations

import pytest

from switchboard.orchestrator.core.errors import ConfigurationError
from switchboard.orchestrator.core.subjects import Subjects, is_safe_token, safe_token


def test_each_subject_of_the_design_table_under_a_dotted_prefix() -> None:
    subjects = Subjects("team.ai")
    assert subjects.converse == "team.ai.orchestrator.converse"
    assert subjects.catalog == "team.ai.orchestrator.agents"
    assert subjects.history == "team.ai.orchestrator.history"
    assert subjects.agent("calculator") == "team.ai.agents.calculator"
    assert subjects.events("conv-u-1") == "team.ai.events.conv-u-1"
    assert subjects.cancel("conv-u-1") == "team.ai.cancel.conv-u-1"
    assert subjects.all_cancels == "team.ai.cancel.*"
    assert (subjects.orchestrator_queue, subjects.agent_queue("calculator")) == (
        "team.ai-orchestrator",
        "agent-calculator",
    )


@pytest.mark.parametrize("prefix", ["", "ai.", "a*", "ai.>", "a b", "ai..x"])
def test_a_prefix_that_is_not_dot_separated_tokens_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="subject prefix"):
        Subjects(prefix)


def test_safe_token_makes_what_is_safe_token_accepts() -> None:
    for raw in ("user@example.com", "a.b*c>d e", "ümlaut", ""):
        assert is_safe_token(safe_token(raw)), raw
    assert safe_token("ok-Name_9") == "ok-Name_9"
