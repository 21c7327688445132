"""The ``trip`` agent: what time it will be somewhere after a journey -- by asking agents.

It does no clock or arithmetic work of its own: it asks the ``clock`` agent for the time
at the destination and the ``calculator`` for the journey's length in minutes (both at
once), then the ``calculator`` again for the minutes since midnight at arrival, and
combines the answers. It is the example of an agent that calls agents (``ctx.call``,
``ctx.call_all``): the calls carry the conversation's correlation id and deadline, and
show nested under the step in the web page.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Final

from switchboard.orchestrator.core import AgentError, AgentTask

from ..sdk import Agent, TaskContext
from .clock import find_places

__all__ = ["TRIP"]

NAME: Final = "trip"
DESCRIPTION: Final = (
    "Tells what time and day it will be at a destination after a journey, by asking the "
    "clock and calculator agents. Example: 'what time will it be in Tokyo when I land "
    "in 13 hours?'"
)
KEYWORDS: Final = ("land", "arrive", "flight", "trip", "journey", "landing", "arrival")
PATTERNS: Final = (
    r"\b(?:land|lands|landing|arrive|arrives|arriving|get\s+there)\b",
    r"\bin\s+\d{1,4}(?:\.\d{1,2})?\s*(?:hours?|hrs?|minutes?|mins?)\b",
)

_DURATION: Final = re.compile(
    r"(\d{1,4}(?:\.\d{1,2})?)\s*(hours?|hrs?|h|minutes?|mins?|m)\b", re.IGNORECASE
)
#: The clock agent's answer for one place: "In Asia/Tokyo it is 20:06 on Wednesday, 2
#: December 2026 (UTC+09:00)."
_CLOCK: Final = re.compile(r"\bit is (\d{1,2}):(\d{2}) on \w+, (\d{1,2} \w+ \d{4})")
_RESULT: Final = re.compile(r"=\s*(-?\d+(?:\.\d+)?)\s*$")


def journey_minutes(text: str) -> str:
    """The journey's length as an expression in minutes (``13 * 60 + 30``).

    Raises:
        AgentError: the text names no duration.
    """
    terms = []
    for number, unit in _DURATION.findall(text):
        terms.append(f"{number} * 60" if unit.lower().startswith("h") else number)
    if not terms:
        raise AgentError(
            "The trip agent needs to know how long until you arrive, e.g. 'when I land in "
            "13 hours' or 'in 2 hours and 30 minutes'."
        )
    return " + ".join(terms)


def destination(text: str) -> str:
    """The time zone of the place the text names (the last one: where you land).

    Raises:
        AgentError: no place it knows.
    """
    zones = find_places(text)
    if not zones:
        raise AgentError(
            "The trip agent needs a destination it knows: a city, country or time zone, "
            "e.g. 'in Tokyo'."
        )
    return zones[-1]


def _span(minutes: float) -> str:
    """``780`` -> "13 hours", ``150`` -> "2 hours 30 minutes"."""
    hours, rest = divmod(round(minutes), 60)
    parts = [f"{hours} hour{'s' * (hours != 1)}"] if hours else []
    if rest or not parts:
        parts.append(f"{rest} minute{'s' * (rest != 1)}")
    return " ".join(parts)


def _number(answer: object, what: str) -> float:
    match = _RESULT.search(str(answer))
    if match is None:
        raise AgentError(f"The calculator's answer for {what} was not a number: {answer!r}.")
    return float(match.group(1))


async def plan_trip(task: AgentTask, ctx: TaskContext) -> str:
    zone = destination(task.instruction)
    place = zone.rsplit("/", 1)[-1].replace("_", " ")
    expression = journey_minutes(task.instruction)
    await ctx.progress(f"asking the clock for {place} and the calculator for {expression}")
    now, journey = await ctx.call_all(
        [("clock", f"what time is it in {zone}"), ("calculator", expression)]
    )
    found = _CLOCK.search(str(now))
    if found is None:
        raise AgentError(f"The clock's answer for {place} could not be read: {now!r}.")
    hour, minute, day = found.groups()
    minutes = _number(journey, "the journey")
    total = await ctx.call("calculator", f"{int(hour)} * 60 + {int(minute)} + {minutes:g}")
    arrival_minutes = int(_number(total, "the arrival"))
    days, of_day = divmod(arrival_minutes, 24 * 60)
    arrival_day = datetime.strptime(day, "%d %B %Y") + timedelta(days=days)
    later = {0: "the same day", 1: "the next day"}.get(days, f"{days} days later")
    return (
        f"It is {int(hour):02d}:{minute} in {place} now; {_span(minutes)} from now it "
        f"will be {of_day // 60:02d}:{of_day % 60:02d} there, on "
        f"{arrival_day:%A}, {arrival_day.day} {arrival_day:%B %Y} ({later})."
    )


TRIP = Agent(
    name=NAME,
    description=DESCRIPTION,
    handler=plan_trip,
    keywords=KEYWORDS,
    patterns=PATTERNS,
    input_hints="a destination and how long until arrival",
    calls=("clock", "calculator"),
)
