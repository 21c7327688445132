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

:func:`publish` uses four of the client's internals (``_send_command``,
``_flush_queue``, ``_flush_pending`` and the pending-buffer sizes). If an upgrade
of nats-py drops one, :data:`FAST` is false and every message goes through
``Client.publish`` with the headers parsed back from the block -- slower, still
correct -- and a test fails so the upgrade is noticed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import nats.errors
from nats.aio.client import Client as NATS

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
    """``key`` as written on the wire, None to skip it (empty), or BadHeaderError."""
    name = key.strip()
    if not name:
        return None
    if not _NAME.fullmatch(name):
        raise nats.errors.BadHeaderError(name)
    if name == key and len(_known_names) < _MAX_KNOWN_NAMES:
        _known_names.add(name)
    return name


def header_block(headers: Mapping[str, str]) -> bytes:
    """The header block nats-py would write for ``headers``, byte for byte.

    Names are stripped (empty ones skipped) and must be RFC 7230 tokens
    (``nats.errors.BadHeaderError`` otherwise); values are stripped and CR/LF become
    spaces, so a value can never end its line or inject a protocol command.
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


async def publish(nc: NATS, subject: str, data: bytes, block: bytes, *, reply: str = "") -> None:
    """``nc.publish(subject, data, reply=reply, headers=...)`` with a prebuilt header block.

    Raises what ``Client.publish`` raises (``BadSubjectError``, ``ConnectionClosedError``,
    ``ConnectionDrainingError``, ``OutboundBufferLimitError``, ``MaxPayloadError``).
    """
    if not FAST:
        await nc.publish(subject, data, reply=reply, headers=_parse(block))
        return
    if not subject or _BAD_SUBJECT.search(subject) or (reply and _BAD_SUBJECT.search(reply)):
        raise nats.errors.BadSubjectError
    if nc.is_closed:
        raise nats.errors.ConnectionClosedError
    if nc.is_draining_pubs:
        raise nats.errors.ConnectionDrainingError
    size = len(data)
    if not nc.is_connected and (
        nc._max_pending_size <= 0 or size + nc._pending_data_size > nc._max_pending_size
    ):
        raise nats.errors.OutboundBufferLimitError
    if size > nc.max_payload:
        raise nats.errors.MaxPayloadError
    head = len(block)
    frame = b"".join(
        (f"HPUB {subject} {reply} {head} {head + size}\r\n".encode(), block, data, b"\r\n")
    )
    stats = nc.stats
    stats["out_msgs"] += 1
    stats["out_bytes"] += size
    await nc._send_command(frame)
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()


def _parse(block: bytes) -> dict[str, str]:
    """The headers of a block written by :func:`header_block` (the slow path)."""
    headers = {}
    for line in block.decode().split("\r\n")[1:]:
        name, sep, value = line.partition(": ")
        if sep:
            headers[name] = value
    return headers
