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

__all__ = ["DEFAULT_MAX_PAYLOAD", "NOT_BLANK", "decode", "encode", "invalid_field"]

T = TypeVar("T")

#: Default payload limit (NATS' own default ``max_payload`` is 1 MiB).
DEFAULT_MAX_PAYLOAD = 1024 * 1024

#: The pattern of a text that must not be blank: a character that is not blank to any regex
#: engine. The document's patterns are read by ECMA-262 engines (OpenAPI clients,
#: schemathesis), the server's by Python's, and their ``\s`` differ (Python's also has
#: U+001C-U+001F and U+0085; ECMA's has U+FEFF).
NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"

_encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `(\$[^`]*)`$")

#: msgspec's validation messages, and the sentence each becomes (``{path}``: the field).
_SENTENCES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), sentence)
    for pattern, sentence in (
        (r"^Expected `str` of length <= (\d+)$", "{path} is too long: at most {0} characters"),
        (r"^Expected `str` of length >= 1$", "{path} is empty"),
        (r"^Expected `str` of length >= (\d+)$", "{path} is too short: at least {0} characters"),
        ("^Expected `str` matching regex " + re.escape(repr(NOT_BLANK)) + "$", "{path} is blank"),
        (r"^Expected `array` of length <= (\d+)$", "{path} has too many items: at most {0}"),
        (r"^Expected `(\w+)` ([<>]=?) (\S+)$", "{path} must be {1} {2}"),
    )
)

_MISSING = re.compile(r"^Object missing required field `(\w+)`$")
_WRONG_TYPE = re.compile(r"^Expected `([\w | ]+)`(?:, got `(\w+)`)?$")
#: JSON's types as a person names them.
_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def invalid_field(message: str, path: str = "$") -> str:
    """msgspec's validation ``message`` about the field at ``path`` (``$.message``), as a
    sentence a person reads: the same wording over NATS (:func:`decode`) and HTTP.

    >>> invalid_field("Expected `str` of length <= 32000", "$.message")
    '`$.message` is too long: at most 32000 characters.'
    """
    if match := _MISSING.match(message):
        return f"`{path}.{match.group(1)}` is missing."
    if match := _WRONG_TYPE.match(message):
        wanted = " or ".join(_KINDS.get(kind, kind) for kind in match.group(1).split(" | "))
        got = match.group(2)
        return f"`{path}` must be {wanted}" + (f", not {_KINDS.get(got, got)}." if got else ".")
    for pattern, sentence in _SENTENCES:
        if match := pattern.match(message):
            return sentence.format(*match.groups(), path=f"`{path}`") + "."
    return f"{message} (at `{path}`)."


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
        path = match.group(1) if match else "$"
        field = invalid_field(detail[: match.start()] if match else detail, path)
        raise DecodeError(f"Invalid {_type_name(type_)}: {field}", path=path) from exc
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
