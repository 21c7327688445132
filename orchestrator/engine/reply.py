"""The final reply, each output byte in it once, and within what NATS carries.

The answer travels whole. A step's output travels whole beside it unless the
answer already contains it (the offline answer is the outputs themselves) or
the reply would not fit in ``max_payload``: then the step keeps a preview
(``core.sizes``). An answer that cannot fit even alone is an
:class:`AnswerTooLargeError` naming its size and the limit.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ..core.codec import encode
from ..core.conversation import StepResult
from ..core.errors import AnswerTooLargeError
from ..core.progress import AnsweredDetail
from ..core.sizes import max_answer_bytes, preview, reply_reserve
from .aggregator import output_text

__all__ = ["answered_detail", "check_answer", "reply_steps"]


def check_answer(answer: str, *, max_payload: int) -> int:
    """The answer's JSON size in bytes.

    Raises:
        AnswerTooLargeError: over :func:`~..core.sizes.max_answer_bytes` of ``max_payload``.
    """
    size = len(encode(answer))
    limit = max_answer_bytes(max_payload)
    if size > limit:
        raise AnswerTooLargeError(
            f"The answer is {size} bytes, over the limit of {limit} bytes (max_payload "
            f"{max_payload} less {max_payload - limit} for the reply's envelope); ask for less.",
            size=size,
            limit=limit,
        )
    return size


def reply_steps(
    answer: str, results: Sequence[StepResult], *, answer_size: int, max_payload: int
) -> list[StepResult]:
    """The steps as the reply carries them: outputs the answer contains, and those that
    would not fit beside it, cut to previews (largest first)."""
    steps: list[StepResult] = []
    whole: list[tuple[int, int]] = []  # (size, index) of the large outputs kept whole
    for result in results:
        shown = preview(result.output)
        if shown.truncated and _contains(answer, result.output):
            result = msgspec.structs.replace(
                result, output=shown.value, output_truncated=True, output_size=shown.size
            )
        elif shown.truncated:
            whole.append((shown.size, len(steps)))
        steps.append(result)
    room = max_payload - reply_reserve(max_payload) - answer_size
    for size, index in sorted(whole, reverse=True):
        if sum(s for s, _ in whole) <= room:
            break
        shown = preview(steps[index].output)
        steps[index] = msgspec.structs.replace(
            steps[index], output=shown.value, output_truncated=True, output_size=shown.size
        )
        whole.remove((size, index))
    return steps


def answered_detail(answer: str, *, partial: bool) -> AnsweredDetail:
    """The ``answered`` event's detail: the answer, or a preview of a large one."""
    shown = preview(answer)
    if not shown.truncated:
        return AnsweredDetail(answer=answer, partial=partial)
    return AnsweredDetail(answer=shown.value, partial=partial, truncated=True, size=shown.size)


def _contains(answer: str, output: object) -> bool:
    text = output_text(output)
    return bool(text) and text in answer
