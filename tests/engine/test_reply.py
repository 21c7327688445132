"""The final reply's steps: each output byte once, and within what NATS carries."""

from __future__ import annotations

import pytest

from switchboard.orchestrator import (
    MAX_ANSWER_BYTES,
    AnswerTooLargeError,
    ErrorCode,
    StepResult,
    encode,
)
from switchboard.orchestrator.engine import answered_detail, check_answer, reply_steps

MIB = 1024 * 1024


def ok(step: str, output: object) -> StepResult:
    return StepResult(id=step, agent="text", status="ok", output=output)


def test_an_output_the_answer_holds_is_a_preview() -> None:
    big = "word " * 100_000
    answer = f"Here it is:\n{big.strip()}"
    (step,) = reply_steps(answer, [ok("s1", big)], answer_size=len(answer), max_payload=MIB)
    assert step.output_truncated is True
    assert step.output_size == len(encode(big))
    assert step.output == big[:1000]


def test_small_outputs_and_outputs_that_fit_stay_whole() -> None:
    other = "x" * 300_000  # not in the answer (an LLM wrote it), and it fits beside it
    steps = reply_steps("42", [ok("s1", 42), ok("s2", other)], answer_size=4, max_payload=MIB)
    assert [s.output for s in steps] == [42, other]
    assert not any(s.output_truncated for s in steps)


def test_outputs_that_do_not_fit_are_cut_largest_first() -> None:
    answer = "a" * 500_000
    outputs = [ok("s1", "b" * 400_000), ok("s2", "c" * 100_000), ok("s3", "d" * 30_000)]
    steps = reply_steps(answer, outputs, answer_size=500_002, max_payload=MIB)
    assert [s.output_truncated for s in steps] == [True, False, False]
    assert len(encode(steps)) + 500_002 < MIB


def test_an_answer_over_the_limit_names_its_size_and_the_limit() -> None:
    assert check_answer("a" * (MAX_ANSWER_BYTES - 2), max_payload=MIB) == MAX_ANSWER_BYTES
    with pytest.raises(AnswerTooLargeError) as too_large:
        check_answer("a" * MAX_ANSWER_BYTES, max_payload=MIB)
    error = too_large.value
    assert error.code is ErrorCode.TOO_LARGE
    assert (error.size, error.limit) == (MAX_ANSWER_BYTES + 2, MAX_ANSWER_BYTES)
    assert f"{MAX_ANSWER_BYTES + 2} bytes, over the limit of {MAX_ANSWER_BYTES}" in str(error)


def test_the_answered_event_previews_a_large_answer_only() -> None:
    small = answered_detail("42", partial=True)
    assert encode(small) == b'{"answer":"42","partial":true}'  # the bytes of old
    large = answered_detail("z" * 10_000, partial=False)
    assert (large.answer, large.truncated, large.size) == ("z" * 1000, True, 10_002)
