"""Clock agent: time and date in places, differences, weekdays, with a fixed clock."""

from __future__ import annotations

import contextlib
import re
import zoneinfo
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.agents.builtin import clock
from switchboard.agents.builtin.clock import find_places, run
from switchboard.orchestrator.core.errors import AgentError

# Tuesday, 24 November 2026, 05:05 UTC (winter in the north, summer in Sydney).
NOW = datetime(2026, 11, 24, 5, 5, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def test_module_declares_the_agent_contract() -> None:
    assert clock.NAME == "clock"
    assert "Tokyo" in clock.DESCRIPTION
    assert all(keyword == keyword.lower() for keyword in clock.KEYWORDS)
    assert {"time", "date", "day", "timezone", "o'clock"} <= set(clock.KEYWORDS)
    for pattern in clock.PATTERNS:
        re.compile(pattern, re.IGNORECASE)


# --- current time ---------------------------------------------------------------


def test_time_in_tokyo_with_a_fixed_clock() -> None:
    assert run("what time is it in Tokyo?", now=NOW) == (
        "In Tokyo (Asia/Tokyo) it is 14:05 on Tuesday, 24 November 2026 (UTC+09:00)."
    )


def test_time_in_several_places_answers_each_in_order() -> None:
    assert run("time in New York and London", now=NOW) == (
        "In New York (America/New_York) it is 00:05 on Tuesday, 24 November 2026 (UTC-05:00). "
        "In London (Europe/London) it is 05:05 on Tuesday, 24 November 2026 (UTC+00:00)."
    )


def test_the_date_can_differ_from_utc() -> None:
    answer = run("what's the date in Sydney", now=NOW)
    assert answer == (
        "In Sydney (Australia/Sydney) it is 16:05 on Tuesday, 24 November 2026 (UTC+11:00)."
    )
    assert "Monday, 23 November 2026" in run("time in Los Angeles", now=NOW)


def test_daylight_saving_time_follows_the_date() -> None:
    assert "08:00" in run("time in New York", now=SUMMER)
    assert "(UTC-04:00)" in run("time in New York", now=SUMMER)


@pytest.mark.parametrize("instruction", ["what day is it", "what time is it", ""])
def test_without_a_place_answers_in_utc_and_says_so(instruction: str) -> None:
    assert run(instruction, now=NOW) == (
        "In UTC it is 05:05 on Tuesday, 24 November 2026 (no place was given, so this is UTC)."
    )


def test_current_utc_time() -> None:
    assert run("current UTC time", now=NOW) == (
        "In UTC it is 05:05 on Tuesday, 24 November 2026 (UTC+00:00)."
    )


def test_tomorrow_in_a_place() -> None:
    assert run("what's the date tomorrow in Tokyo", now=NOW) == (
        "In Tokyo (Asia/Tokyo) tomorrow will be Wednesday, 25 November 2026."
    )


def test_default_now_is_the_real_clock() -> None:
    assert re.fullmatch(
        r"In UTC it is \d\d:\d\d on \w+, \d{1,2} \w+ \d{4} \(UTC\+00:00\)\.",
        run("current UTC time"),
    )


def test_a_naive_now_is_read_as_utc() -> None:
    assert run("time in Tokyo", now=NOW.replace(tzinfo=None)) == run("time in Tokyo", now=NOW)


# --- places ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("place", "zone"),
    [
        ("Tokyo", "Asia/Tokyo"),
        ("new york", "America/New_York"),
        ("NEW YORK", "America/New_York"),
        ("Buenos Aires", "America/Argentina/Buenos_Aires"),
        ("S\u00e3o Paulo", "America/Sao_Paulo"),
        ("Z\u00fcrich", "Europe/Zurich"),
        ("Port-au-Prince", "America/Port-au-Prince"),
        ("St. Petersburg", "Europe/Moscow"),
        ("San Francisco", "America/Los_Angeles"),
        ("Seattle", "America/Los_Angeles"),
        ("LA", "America/Los_Angeles"),
        ("Beijing", "Asia/Shanghai"),
        ("China", "Asia/Shanghai"),
        ("Delhi", "Asia/Kolkata"),
        ("Mumbai", "Asia/Kolkata"),
        ("India", "Asia/Kolkata"),
        ("Moscow", "Europe/Moscow"),
        ("Paris", "Europe/Paris"),
        ("Berlin", "Europe/Berlin"),
        ("Dubai", "Asia/Dubai"),
        ("Singapore", "Asia/Singapore"),
        ("Seoul", "Asia/Seoul"),
        ("Japan", "Asia/Tokyo"),
        ("Germany", "Europe/Berlin"),
        ("the UK", "Europe/London"),
        ("England", "Europe/London"),
        ("Istanbul", "Europe/Istanbul"),
        ("Europe/London", "Europe/London"),
        ("etc/gmt+5", "Etc/GMT+5"),
        ("UTC", "UTC"),
        ("GMT", "UTC"),
        ("PST", "America/Los_Angeles"),
        ("PDT", "America/Los_Angeles"),
        ("EST", "America/New_York"),
        ("EDT", "America/New_York"),
        ("CET", "Europe/Berlin"),
        ("JST", "Asia/Tokyo"),
        ("IST", "Asia/Kolkata"),
        ("AEST", "Australia/Sydney"),
    ],
)
def test_places_resolve_to_iana_zones(place: str, zone: str) -> None:
    assert find_places(f"what time is it in {place}?") == [zone]


def test_find_places_keeps_the_order_of_appearance_without_repeats() -> None:
    assert find_places("London, then Tokyo, New York and NYC, then London again") == [
        "Europe/London",
        "Asia/Tokyo",
        "America/New_York",
    ]


@pytest.mark.parametrize(
    "sentence",
    [
        "what day is it",
        "wake me up on Christmas, north of the west gate",
        "la la land",
        "count the words in this text",
        "what is 17*23",
    ],
)
def test_ordinary_words_are_not_places(sentence: str) -> None:
    assert find_places(sentence) == []


def test_every_iana_zone_name_is_understood() -> None:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z)
    for zone in zones:
        assert find_places(f"time in {zone}") == [zone]
        assert f"In {zone} it is " in run(f"time in {zone}", now=NOW)


# --- differences ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "answer"),
    [
        (
            "time difference between Tokyo and London",
            "Tokyo (Asia/Tokyo, UTC+09:00) is 9 hours ahead of London (Europe/London, "
            "UTC+00:00) right now.",
        ),
        (
            "time difference between London and Tokyo",
            "London (Europe/London, UTC+00:00) is 9 hours behind Tokyo (Asia/Tokyo, "
            "UTC+09:00) right now.",
        ),
        (
            "how many hours ahead is Delhi of New York",
            "Delhi (Asia/Kolkata, UTC+05:30) is 10 hours 30 minutes ahead of New York "
            "(America/New_York, UTC-05:00) right now.",
        ),
        (
            "time difference between Paris and Berlin",
            "Paris (Europe/Paris, UTC+01:00) and Berlin (Europe/Berlin, UTC+01:00) have the "
            "same time right now.",
        ),
        (
            "time difference in Tokyo",
            "Tokyo (Asia/Tokyo, UTC+09:00) is 9 hours ahead of UTC (UTC+00:00) right now.",
        ),
    ],
)
def test_time_difference(instruction: str, answer: str) -> None:
    assert run(instruction, now=NOW) == answer


def test_a_difference_needs_a_place() -> None:
    with pytest.raises(AgentError, match="needs two places"):
        run("what is the time difference", now=NOW)


# --- weekdays --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "answer"),
    [
        ("what day of the week is 2026-12-25", "25 December 2026 is a Friday."),
        ("what day of the week is December 25, 2026", "25 December 2026 is a Friday."),
        ("what day is the 25th of December 2026", "25 December 2026 is a Friday."),
        ("what day was 2020-02-29", "29 February 2020 was a Saturday."),
        ("what weekday is 2026-11-24", "24 November 2026 is a Tuesday."),
    ],
)
def test_weekday_of_a_date(instruction: str, answer: str) -> None:
    assert run(instruction, now=NOW) == answer


def test_an_impossible_date_is_an_agent_error() -> None:
    with pytest.raises(AgentError, match=re.escape('"2026-02-30" is not a valid calendar date')):
        run("what day is 2026-02-30", now=NOW)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "place"),
    [("what time is it in Atlantis?", "Atlantis"), ("time in Tokyo and Gondor", "Gondor")],
)
def test_an_unknown_place_is_named_with_examples(instruction: str, place: str) -> None:
    with pytest.raises(AgentError) as caught:
        run(instruction, now=NOW)
    message = str(caught.value)
    assert f'does not know the place "{place}"' in message
    assert "'Tokyo'" in message
    assert "'Europe/London'" in message


def test_an_instruction_about_something_else_is_refused() -> None:
    with pytest.raises(AgentError, match="what time is it in Tokyo"):
        run("count the words in 'hello world'", now=NOW)


def test_an_overlong_instruction_is_refused() -> None:
    with pytest.raises(AgentError, match="too long"):
        run("time " * 3000, now=NOW)


@given(st.text())
def test_any_text_gives_an_answer_or_an_agent_error(instruction: str) -> None:
    with contextlib.suppress(AgentError):
        assert isinstance(run(instruction, now=NOW), str)


_CLOCKY = st.lists(
    st.sampled_from(
        [
            *("time", " in ", "Tokyo", " and ", " ", "difference", "2026-02-30", "9999-12-31"),
            *("day", "tomorrow", "Europe/London", "Etc/GMT+5", "/", "between", ",", "\u00e9"),
            *("'s", "?"),
        ]
    ),
    max_size=20,
).map("".join)


@given(_CLOCKY)
def test_any_clock_like_text_gives_an_answer_or_an_agent_error(instruction: str) -> None:
    assert all(isinstance(zone, str) for zone in find_places(instruction))
    with contextlib.suppress(AgentError):
        assert isinstance(run(instruction, now=NOW), str)
