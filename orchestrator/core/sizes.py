"""How large an answer may be, and the previews that stand in for large outputs.

A conversation's output used to cross each hop three or four times (the
``step_finished`` event, the ``answered`` event, the reply's ``answer`` and its
``steps[].output``), so a burst of large answers filled a part's NATS buffers
four times as fast as it needed to, and a reply carrying its answer twice was
over NATS' ``max_payload`` at half the size. Now each byte crosses each hop once:

* the final reply carries the whole ``answer``;
* a step's output in the reply is whole, unless the answer already contains it
  or the reply would not fit: then it is a :func:`preview` (``output_truncated``,
  ``output_size``);
* ``step_finished`` and ``answered`` events carry a :func:`preview` of an output
  or answer larger than :data:`PREVIEW_BYTES` (``truncated``, ``size``): watchers see
  what is going on, the reply brings the content.

The largest answer is :func:`max_answer_bytes` of the server's ``max_payload``:
what is left of it after :func:`reply_reserve` (a sixteenth: 64 KiB of 1 MiB)
for the reply's envelope, the steps' previews and the headers. An answer over it
fails the conversation with ``too_large`` naming both sizes (:class:`~.errors.AnswerTooLargeError`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .codec import DEFAULT_MAX_PAYLOAD, encode

__all__ = [
    "MAX_ANSWER_BYTES",
    "PREVIEW_BYTES",
    "PREVIEW_CHARS",
    "SERVER_MAX_PENDING",
    "Preview",
    "max_answer_bytes",
    "preview",
    "reply_reserve",
]

#: An output or answer up to this size (JSON-encoded) travels whole in events and replies.
PREVIEW_BYTES = 2048
#: Characters of a larger one that its preview keeps.
PREVIEW_CHARS = 1000

#: What nats-server buffers for one client before cutting it off as a slow consumer
#: (``max_pending`` of deploy/nats/*.conf and the embedded server): twice a part's own
#: byte bound (``max_inflight_bytes``, 64 MiB), so a burst meets the part's bound (an
#: ``overloaded`` answer to one request) before the server's (a disconnect that fails every
#: request on the connection). A subscription buffers at least as much in the client, so
#: it never drops what the server delivered.
SERVER_MAX_PENDING = 128 * 1024 * 1024


def reply_reserve(max_payload: int = DEFAULT_MAX_PAYLOAD) -> int:
    """Room a reply keeps beside its answer (envelope, steps' previews, usage, headers):
    a sixteenth of ``max_payload``, 64 KiB of 1 MiB."""
    return max_payload // 16


def max_answer_bytes(max_payload: int = DEFAULT_MAX_PAYLOAD) -> int:
    """The largest answer (JSON-encoded, in bytes) a reply of ``max_payload`` carries."""
    return max_payload - reply_reserve(max_payload)


#: The largest answer with NATS' default ``max_payload`` of 1 MiB: 960 KiB.
MAX_ANSWER_BYTES = max_answer_bytes()


class Preview(NamedTuple):
    """A value cut to a preview (or the value itself), and its whole size in bytes."""

    value: Any
    size: int
    truncated: bool


def preview(value: Any, *, limit: int = PREVIEW_BYTES) -> Preview:
    """``value`` if its JSON is at most ``limit`` bytes, else its first characters.

    A string keeps its first :data:`PREVIEW_CHARS` characters; any other value
    becomes the first characters of its JSON text (a string).
    """
    if value is None:
        return Preview(None, 4, False)
    data = encode(value)
    if len(data) <= limit:
        return Preview(value, len(data), False)
    text = value if isinstance(value, str) else data.decode()
    return Preview(text[:PREVIEW_CHARS], len(data), True)
