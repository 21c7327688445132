"""Text agent: where the text comes from, counts, extraction, transforms, limits."""

from __future__ import annotations

import contextlib
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.agents.builtin import text
from switchboard.agents.builtin.text import MAX_TEXT_LENGTH, run
from switchboard.orchestrator.core.errors import AgentError


def test_module_declares_the_agent_contract() -> None:
    assert text.NAME == "text"
    assert "count the words" in text.DESCRIPTION
    assert all(keyword == keyword.lower() for keyword in text.KEYWORDS)
    assert {"count", "words", "characters", "uppercase", "extract", "emails"} <= set(text.KEYWORDS)
    for pattern in text.PATTERNS:
        re.compile(pattern, re.IGNORECASE)


# --- where the text comes from -------------------------------------------------------


@pytest.mark.parametrize(
    "instruction",
    [
        'count the words in "the quick brown fox"',
        "count the words in 'the quick brown fox'",
        "count the words in \u201cthe quick brown fox\u201d",
        "count words: the quick brown fox",
    ],
)
def test_text_in_quotes_or_after_a_colon(instruction: str) -> None:
    assert run(instruction) == "The text has 4 words."


def test_quoted_text_wins_over_inputs() -> None:
    assert run('count the words in "a b"', {"s1": "one two three"}) == "The text has 2 words."


def test_apostrophes_are_not_quotes() -> None:
    assert run("what's the word count: don't stop") == "The text has 2 words."


def test_the_previous_result_comes_from_inputs() -> None:
    answer = run("count the words of the previous result", {"s1": "one two three"})
    assert answer == "The output of step s1 has 3 words."


def test_several_inputs_are_joined_in_step_order_and_json_encoded() -> None:
    inputs = {"b": "last", "a": {"k": [1, 2]}}
    assert run("count words", inputs) == "The outputs of steps a, b have 4 words."
    assert run("uppercase", inputs) == '{"K": [1, 2]}\n\nLAST'


def test_without_quotes_or_inputs_the_instruction_is_the_text() -> None:
    assert run("count the words in the quick brown fox") == (
        'The instruction\'s own text ("the quick brown fox") has 4 words.'
    )
    assert run("uppercase hello world") == "HELLO WORLD"


@pytest.mark.parametrize("instruction", ["count words", "", "   ", "how many characters"])
def test_no_text_at_all_is_an_agent_error(instruction: str) -> None:
    with pytest.raises(AgentError, match="There is no text to work on: put it in quotes"):
        run(instruction)


# --- counts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "answer"),
    [
        ("how many words: Hello, world!", "The text has 2 words."),
        ("count words: one \u2014 two", "The text has 2 words."),
        ('count the words in ""', "The text has 0 words."),
        ("how many characters in 'hello world'", "The text has 11 characters (10 without spaces)."),
        (
            "count characters without spaces: hello world",
            "The text has 10 characters (not counting spaces).",
        ),
        (
            "count characters including spaces: hello world",
            "The text has 11 characters (counting spaces).",
        ),
        ("how many letters: ab1 c!", "The text has 3 letters."),
        ("how many sentences: Hi. How are you? Fine!", "The text has 3 sentences."),
        ("count sentences: Pi is 3.14 today. Yes", "The text has 2 sentences."),
        ("count lines: a\nb\n\nc", "The text has 4 lines."),
        ("count paragraphs: a\nb\n\nc\n\n\n", "The text has 2 paragraphs."),
        ("number of words in 'a b c'", "The text has 3 words."),
        (
            "count the words and characters: hi there",
            "The text has 2 words and 8 characters (7 without spaces).",
        ),
    ],
)
def test_counts(instruction: str, answer: str) -> None:
    assert run(instruction) == answer


def test_most_frequent_words_ignore_stop_words() -> None:
    assert run("most frequent words: the cat and the dog and the Cat") == (
        "The most frequent words in the text are cat (2), dog (1)."
    )


def test_top_n_words() -> None:
    assert run("top 2 words", {"s": "a b b c c c"}) == (
        "The most frequent words in the output of step s are c (3), b (2)."
    )


def test_only_stop_words() -> None:
    assert run("most common words: the a") == (
        "The text has no words other than common stop words."
    )


@pytest.mark.parametrize(
    ("words", "estimate"),
    [
        (450, "about 3 minutes"),
        (200, "about 1 minute"),
        (2, "about 1 second"),
        (0, "about 0 seconds"),
    ],
)
def test_reading_time(words: int, estimate: str) -> None:
    answer = run("reading time", {"s": "word " * words})
    counted = f"{words} word" if words == 1 else f"{words} words"
    assert answer == (
        f"The output of step s takes {estimate} to read ({counted} at 200 words per minute)."
    )


# --- extraction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "answer"),
    [
        (
            "extract emails: write to a@b.com or c.d@e.org, a@b.com.",
            "The text has 2 email addresses: a@b.com, c.d@e.org.",
        ),
        ("emails: a@b.com", "The text has 1 email address: a@b.com."),
        ("extract emails: none here", "The text has no email addresses."),
        ("how many emails: a@b.com x@y.io", "The text has 2 email addresses."),
        (
            "extract urls: see https://x.com/a?b=1, and www.y.org.",
            "The text has 2 URLs: https://x.com/a?b=1, www.y.org.",
        ),
        (
            "extract numbers: 3.5 kg, -2, 1,000 and 2026-11-24",
            "The text has 3 numbers: 3.5, -2, 1,000.",
        ),
        (
            "extract hashtags and mentions: #ai rocks @bob #2024 #go2 me@x.io",
            "The text has 2 hashtags: #ai, #go2; 1 mention: @bob.",
        ),
        (
            "extract dates: 2026-11-24, 24 November 2026 and 12/25/2026",
            "The text has 3 dates: 2026-11-24, 24 November 2026, 12/25/2026.",
        ),
    ],
)
def test_extraction(instruction: str, answer: str) -> None:
    assert run(instruction) == answer


def test_long_extractions_are_capped() -> None:
    emails = " ".join(f"u{i}@x.io" for i in range(150))
    answer = run("extract emails", {"s": emails})
    assert answer.startswith("The output of step s has 150 email addresses: u0@x.io, ")
    assert answer.endswith("u99@x.io (and 50 more).")


# --- transforms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "answer"),
    [
        ("uppercase: hello world", "HELLO WORLD"),
        ("convert to lower case: HeLLo", "hello"),
        ("title case: don't stop me now", "Don't Stop Me Now"),
        ("reverse the words: one two three", "three two one"),
        ("reverse: abc", "cba"),
    ],
)
def test_transforms(instruction: str, answer: str) -> None:
    assert run(instruction) == answer


def test_an_unknown_instruction_with_text_gives_compact_stats() -> None:
    assert run("summarize this", {"s": "Hello there. General Kenobi."}) == (
        "The output of step s has 4 words, 28 characters and 2 sentences."
    )


# --- limits ------------------------------------------------------------------------------------


def test_text_over_a_million_characters_is_refused() -> None:
    with pytest.raises(AgentError, match=r"too long \(1,000,001 characters\)"):
        run("count words", {"s": "a" * (MAX_TEXT_LENGTH + 1)})
    with pytest.raises(AgentError, match="too long"):
        run("count words: " + "a" * MAX_TEXT_LENGTH)


@pytest.mark.parametrize(
    "payload",
    [
        "word " * (MAX_TEXT_LENGTH // 5),
        "\u201c" * MAX_TEXT_LENGTH,
        "a" * MAX_TEXT_LENGTH,
        "#1" * (MAX_TEXT_LENGTH // 2),
        "a." * (MAX_TEXT_LENGTH // 2),
        "http://" + "a" * (MAX_TEXT_LENGTH - 7),
    ],
)
def test_a_million_characters_is_handled_quickly(payload: str) -> None:
    started = time.perf_counter()
    for instruction in ("extract emails, urls, numbers, hashtags and dates", "most frequent words"):
        assert isinstance(run(instruction, {"s": payload}), str)
    with contextlib.suppress(AgentError):  # "word word ..." is all command words
        run(payload)
    assert time.perf_counter() - started < 10


@given(st.text())
def test_any_text_gives_an_answer_or_an_agent_error(instruction: str) -> None:
    with contextlib.suppress(AgentError):
        assert isinstance(run(instruction), str)


@given(st.text(), st.dictionaries(st.text(max_size=5), st.text() | st.integers()))
def test_any_text_and_inputs_give_an_answer_or_an_agent_error(
    instruction: str, inputs: dict[str, str | int]
) -> None:
    with contextlib.suppress(AgentError):
        assert isinstance(run(instruction, inputs), str)


@given(st.lists(st.sampled_from(["a", "b", " ", "\n", "\n\n", ".", "!"]), max_size=40).map("".join))
def test_words_and_characters_match_simple_definitions(body: str) -> None:
    answer = run("count the words and characters", {"s": body})
    words = len([w for w in body.split() if any(c.isalnum() for c in w)])
    assert f" {words} word" in answer
    assert f" {len(body)} character" in answer
