"""Publishing with headers on the hot path: one HPUB frame, built in one pass.

nats-py's ``Client.publish`` checks and encodes every header name and value on
every message -- a regular expression per name, strip, translate and encode per
value, a bytearray grown piece by piece: about 4 of the 6 µs a publish with three
headers takes on a 2-core machine, and the orchestrator publishes six or seven
messages per conversation (task, reply, progress events). :func:`header_block`
writes the same bytes (``tests/core/test_wire.py`` compares them with nats-py's
own encoder, property-based) checking each header name once per process, and
:func:`publish` hands the frame to the client's pending buffer and flusher with
the same checks, in the same order, as ``Client.publish``. Because the block is
exact, the max_payload check *with* headers -- nats-py checks only the payload,
and a message the server finds too large closes the connection for good -- is
one ``len``.

Refusals are Switchboard errors (``ConnectionClosedError``, ``ShuttingDownError``,
``OverloadedError``, ``PayloadTooLargeError``, ``RequestError`` for a bad subject or
header name), built by the same functions ``connection.map_nats_errors`` uses for
nats-py's own: a caller sees the same error whichever path sent the message.

:func:`publish` uses four of the client's internals (``_send_command``,
``_flush_queue``, ``_flush_pending`` and the pending-buffer sizes). If an upgrade
of nats-py drops one, :data:`FAST` is false and every message goes through
``Client.publish`` with the headers parsed back from the block -- slower, still
correct -- and a test fails so the upgrade is noticed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from nats.aio.client import Client as NATS

from .connection import (
    bad_header_error,
    bad_subject_error,
    buffer_full_error,
    closed_error,
    draining_error,
    map_nats_errors,
    too_large_error,
)

__all__ = ["FAST", "header_block", "publish"]

_FIRST_LINE = "NATS/1.0\r\n"
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 7230 token, as nats-py requires
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})
_BAD_SUBJECT = re.compile(r"[ \t\r\n]")
_INTERNALS = (
    "_send_command",
    "_flush_pending",
    "_flush_queue",
    "_max_pending_size",
    "_pending_data_size",
    "stats",
)

#: Whether this nats-py has the internals :func:`publish` writes frames with (an
#: unconnected client is a plain object: no loop, no socket).
FAST = all(hasattr(NATS(), name) for name in _INTERNALS)

# Header names seen valid, so each is checked once per process. Names come from a
# handful of constants (and the odd caller's own); the cap keeps a caller that invents
# names per message from growing it.
_known_names: set[str] = set()
_MAX_KNOWN_NAMES = 256


def _name(key: str) -> str | None:
    """``key`` as written on the wire, None to skip it (empty); RequestError if invalid."""
    name = key.strip()
    if not name:
        return None
    if not _NAME.fullmatch(name):
        raise bad_header_error(None, None, name=name)
    if name == key and len(_known_names) < _MAX_KNOWN_NAMES:
        _known_names.add(name)
    return name


def header_block(headers: Mapping[str, str]) -> bytes:
    """The header block nats-py would write for ``headers``, byte for byte.

    Names are stripped (empty ones skipped) and must be RFC 7230 tokens; values are
    stripped and CR/LF become spaces, so a value can never end its line or inject a
    protocol command.

    Raises:
        RequestError: a header name is not an RFC 7230 token (nats-py's BadHeaderError).
    """
    lines = [_FIRST_LINE]
    known = _known_names
    for key, value in headers.items():
        if key not in known:
            name = _name(key)
            if name is None:
                continue
            key = name
        lines.append(f"{key}: {value.strip().translate(_NEWLINES)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode()


async def publish(
    nc: NATS,
    subject: str,
    data: bytes,
    block: bytes,
    *,
    reply: str = "",
    correlation_id: str | None = None,
) -> None:
    """``nc.publish(subject, data, reply=reply, headers=...)`` with a prebuilt header block.

    Refuses what ``Client.publish`` refuses, in the same order, as Switchboard errors;
    ``correlation_id`` only names the request in their messages.

    Raises:
        RequestError: the subject or reply subject is not valid (nothing was written).
        ConnectionClosedError: the connection is closed.
        ShuttingDownError: the connection is draining.
        OverloadedError: disconnected, and the reconnect buffer is full.
        PayloadTooLargeError: the payload is over the server's max_payload.
    """
    if not FAST:
        with map_nats_errors(subject=subject, correlation_id=correlation_id):
            await nc.publish(subject, data, reply=reply, headers=_parse(block))
        return
    if not subject or _BAD_SUBJECT.search(subject) or (reply and _BAD_SUBJECT.search(reply)):
        raise bad_subject_error(subject, correlation_id)
    if nc.is_closed:
        raise closed_error(subject, correlation_id)
    if nc.is_draining_pubs:
        raise draining_error(subject, correlation_id)
    size = len(data)
    if not nc.is_connected and (
        nc._max_pending_size <= 0 or size + nc._pending_data_size > nc._max_pending_size
    ):
        raise buffer_full_error(subject, correlation_id)
    if size > nc.max_payload:
        raise too_large_error(subject, correlation_id, size=size, limit=nc.max_payload)
    head = len(block)
    frame = b"".join(
        (f"HPUB {subject} {reply} {head} {head + size}\r\n".encode(), block, data, b"\r\n")
    )
    stats = nc.stats
    stats["out_msgs"] += 1
    stats["out_bytes"] += size
    try:
        await nc._send_command(frame)
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()
    except Exception:
        # A socket error, when nats-py writes inline. Mapped only once raised: a ``with``
        # around every publish would cost more than the rest of this function.
        with map_nats_errors(subject=subject, correlation_id=correlation_id):
            raise


def _parse(block: bytes) -> dict[str, str]:
    """The headers of a block written by :func:`header_block` (the slow path)."""
    headers = {}
    for line in block.decode().split("\r\n")[1:]:
        name, sep, value = line.partition(": ")
        if sep:
            headers[name] = value
    return headers
