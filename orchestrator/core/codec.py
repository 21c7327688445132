"""JSON encoding and decoding of wire messages: the one place msgspec errors are caught.

Encoders and decoders are built once per type (msgspec ``perf-tips``).
Oversized payloads are refused before parsing; malformed ones raise
:class:`~switchboard.orchestrator.core.errors.DecodeError` whose message names the message
type and msgspec's ``$.path`` of the offending field.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from typing import Any, TypeVar, cast

import msgspec

from .errors import DecodeError, PayloadTooLargeError

__all__ = ["DEFAULT_MAX_PAYLOAD", "decode", "encode"]

T = TypeVar("T")

#: Default payload limit (NATS' own default ``max_payload`` is 1 MiB).
DEFAULT_MAX_PAYLOAD = 1024 * 1024

_encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `(\$[^`]*)`$")

#: Encode any msgspec-encodable value (Structs, dicts, lists, str, ...) to JSON bytes.
encode = _encoder.encode


@functools.cache
def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_)


def _type_name(type_: Any) -> str:
    if isinstance(type_, types.UnionType):  # a tagged union: its members' names
        return " | ".join(_type_name(member) for member in typing.get_args(type_))
    return getattr(type_, "__name__", None) or str(type_)


def decode(
    data: bytes | bytearray | memoryview | str,
    type_: type[T],
    *,
    max_bytes: int | None = DEFAULT_MAX_PAYLOAD,
) -> T:
    """Decode JSON ``data`` into ``type_``.

    Raises:
        PayloadTooLargeError: ``data`` is longer than ``max_bytes`` (not parsed).
        DecodeError: not JSON, or not of ``type_``; ``.path`` locates the field.
    """
    size = len(data)
    if max_bytes is not None and size > max_bytes:
        raise PayloadTooLargeError(
            f"The {_type_name(type_)} payload is {size} bytes, "
            f"over the limit of {max_bytes} bytes.",
            size=size,
            limit=max_bytes,
        )
    try:
        result: T = _decoder(cast(Any, type_)).decode(data)
    except msgspec.ValidationError as exc:
        detail = str(exc)
        match = _PATH.search(detail)
        raise DecodeError(
            f"Invalid {_type_name(type_)}: {detail}.", path=match.group(1) if match else "$"
        ) from exc
    except msgspec.DecodeError as exc:
        if size == 0:
            message = f"Invalid {_type_name(type_)}: the payload is empty (expected JSON)."
        else:
            message = f"Invalid {_type_name(type_)}: the payload is not valid JSON ({exc})."
        raise DecodeError(message) from exc
    except UnicodeError as exc:  # invalid UTF-8 in a string; a lone surrogate in a str input
        raise DecodeError(
            f"Invalid {_type_name(type_)}: the payload is not valid UTF-8 text."
        ) from exc
    except RecursionError as exc:  # free-form fields (inputs, output, detail) nested too deep
        raise DecodeError(f"Invalid {_type_name(type_)}: the JSON is nested too deeply.") from exc
    return result
