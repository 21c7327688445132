"""The trip agent's reading of a question (its clock and arithmetic are other agents')."""

from __future__ import annotations

import pytest

from switchboard.agents.builtin.trip import _span, destination, journey_minutes
from switchboard.orchestrator import AgentError


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("when I land in Tokyo in 13 hours", "13 * 60"),
        ("arriving in Paris in 2 hours and 30 minutes", "2 * 60 + 30"),
        ("I get there in 45 mins", "45"),
        ("landing in 1.5h", "1.5 * 60"),
    ],
)
def test_the_journey_is_an_expression_for_the_calculator(text: str, expression: str) -> None:
    assert journey_minutes(text) == expression


def test_the_destination_is_the_last_place_named() -> None:
    assert destination("flying from London, I land in Tokyo in 13 hours") == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("text", "needs"), [("I land in Tokyo soon", "how long"), ("I land in 3 hours", "destination")]
)
def test_a_question_it_cannot_read_says_what_is_missing(text: str, needs: str) -> None:
    with pytest.raises(AgentError, match=needs):
        destination(text) if needs == "destination" else journey_minutes(text)


def test_a_span_reads_as_a_person_says_it() -> None:
    assert [_span(m) for m in (780, 150, 45, 60)] == [
        "13 hours",
        "2 hours 30 minutes",
        "45 minutes",
        "1 hour",
    ]
