"""Hypothesis strategies for the wire messages, built by hand.

``st.from_type`` does not read msgspec's ``Meta`` constraints (token patterns,
lengths, bounds), so every message has its own strategy here that builds only
valid values. On top of them: random JSON values, JSON objects shaped like a
message (its field names with random values), and *mutations* of valid
messages (a field dropped, re-typed, oversized, nested too deep, a huge
number, broken UTF-8) that know where in the document they changed it, so a
test can check that the decoder's error names that place.
"""

from __future__ import annotations

import dataclasses
import re
import string
from typing import Any

import msgspec
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from switchboard.bff.schemas import ChatRequest
from switchboard.orchestrator import ErrorCode, encode
from switchboard.orchestrator.core.catalog import AgentInfo
from switchboard.orchestrator.core.conversation import (
    ConversationReply,
    ConversationRequest,
    ConversationTurn,
    HistoryReply,
    HistoryRequest,
    Plan,
    PlanStep,
    StepResult,
    TurnStep,
)
from switchboard.orchestrator.core.envelopes import (
    MAX_MESSAGE_CHARS,
    AgentResult,
    AgentTask,
    ErrorInfo,
    ErrorReply,
    Usage,
)
from switchboard.orchestrator.core.progress import (
    AnsweredDetail,
    AnsweredEvent,
    PlannedEvent,
    ReplannedDetail,
    ReplannedEvent,
    StepFailedEvent,
    StepFinishedDetail,
    StepFinishedEvent,
    StepProgressEvent,
    StepStartedDetail,
    StepStartedEvent,
)

# -- settings ------------------------------------------------------------------------------------

#: No example database (nothing written to .hypothesis/), and no shrinking: payloads here are
#: large, shrinking them takes minutes, and each failure mode has a minimal test of its own.
_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "phases": (Phase.explicit, Phase.generate),
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
#: Pure decoding: cheap, so more examples.
DECODER = settings(max_examples=100, **_COMMON)
#: Through a real nats-server and the parts: fewer examples.
NETWORK = settings(max_examples=60, **_COMMON)

# -- building blocks -----------------------------------------------------------------------------

TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"
INT64 = (-(2**63), 2**63 - 1)
VOCABULARY = [code.value for code in ErrorCode]


def tokens(max_size: int = 64) -> st.SearchStrategy[str]:
    """Subject-safe tokens (``^[A-Za-z0-9_-]+$``) of 1..``max_size`` characters."""
    return st.text(TOKEN_ALPHABET, min_size=1, max_size=max_size)


def texts(min_size: int = 0, max_size: int = 80) -> st.SearchStrategy[str]:
    """Any Unicode text that can be UTF-8 (no lone surrogates: Python can't send those)."""
    return st.text(st.characters(codec="utf-8"), min_size=min_size, max_size=max_size)


def questions() -> st.SearchStrategy[str]:
    """A message: any text that is not only blanks (those are refused like an empty one)."""
    return texts(min_size=1, max_size=120).filter(lambda text: re.search(r"\S", text) is not None)


def finite_floats(**bounds: Any) -> st.SearchStrategy[float]:
    return st.floats(allow_nan=False, allow_infinity=False, **bounds)


def json_scalars(*, big_ints: bool = False) -> st.SearchStrategy[Any]:
    ints = st.integers() if big_ints else st.integers(*INT64)
    return st.none() | st.booleans() | ints | finite_floats() | texts()


def json_values(*, big_ints: bool = False, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON document (as Python builtins)."""
    return st.recursive(
        json_scalars(big_ints=big_ints),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(texts(max_size=12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


# -- the messages --------------------------------------------------------------------------------

error_infos = st.builds(ErrorInfo, code=st.sampled_from(VOCABULARY) | texts(), message=texts())
usages = st.builds(
    Usage,
    prompt_tokens=st.integers(*INT64),
    completion_tokens=st.integers(*INT64),
    total_tokens=st.integers(*INT64),
)
timeouts = finite_floats(min_value=0, max_value=3600, exclude_min=True)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


MESSAGES: dict[type, st.SearchStrategy[Any]] = {
    ErrorInfo: error_infos,
    ErrorReply: st.builds(ErrorReply, correlation_id=_optional(texts()), error=error_infos),
    Usage: usages,
    ConversationRequest: st.builds(
        ConversationRequest,
        correlation_id=tokens(200),
        user_id=tokens(64),
        message=questions(),
        conversation_id=_optional(tokens(200)),
        timeout_s=_optional(timeouts),
        agents=_optional(st.lists(tokens(), max_size=6)),
    ),
    PlanStep: st.builds(
        PlanStep,
        id=tokens(),
        agent=tokens(),
        instruction=texts(),
        depends_on=st.lists(tokens(), max_size=4),
        required=st.booleans(),
        timeout_s=_optional(timeouts),
    ),
    StepResult: st.builds(
        StepResult,
        id=texts(),
        agent=texts(),
        status=st.sampled_from(["ok", "failed", "skipped"]),
        required=st.booleans(),
        output=json_values(),
        error=_optional(error_infos),
        duration_ms=finite_floats(),
        attempts=st.integers(*INT64),
        usage=_optional(usages),
        round=st.integers(*INT64),
    ),
    AgentTask: st.builds(
        AgentTask,
        correlation_id=tokens(200),
        task_id=tokens(),
        agent=tokens(),
        instruction=texts(),
        inputs=st.dictionaries(texts(max_size=12), json_values(), max_size=4),
        user_id=_optional(texts()),
    ),
    AgentResult: st.builds(
        AgentResult,
        correlation_id=texts(),
        task_id=texts(),
        ok=st.booleans(),
        output=json_values(),
        error=_optional(error_infos),
        usage=_optional(usages),
        duration_ms=finite_floats(),
    ),
    ConversationTurn: st.builds(
        ConversationTurn,
        correlation_id=texts(),
        message=texts(),
        answer=texts(),
        ts=finite_floats(),
        steps=st.lists(
            st.builds(
                TurnStep,
                id=texts(),
                agent=texts(),
                instruction=texts(),
                status=st.sampled_from(["ok", "failed", "skipped"]),
                output=texts(),
                round=st.integers(*INT64),
            ),
            max_size=3,
        ),
    ),
    HistoryRequest: st.builds(HistoryRequest, user_id=tokens(64), conversation_id=tokens(200)),
    ChatRequest: st.builds(
        ChatRequest,
        message=questions(),
        conversation_id=_optional(tokens(200)),
        agents=st.lists(tokens(), max_size=6),
        timeout_s=finite_floats(min_value=0, max_value=600),
    ),
    AgentInfo: st.builds(
        AgentInfo,
        name=texts(),
        description=texts(),
        subject=texts(),
        keywords=st.lists(texts(), max_size=4).map(tuple),
        patterns=st.lists(texts(), max_size=4).map(tuple),
        input_hints=texts(),
        version=texts(),
        instances=st.integers(*INT64),
    ),
}
MESSAGES[Plan] = st.builds(
    Plan, steps=st.lists(MESSAGES[PlanStep], max_size=5), source=texts(max_size=10)
)
#: The detail of each kind of progress event (decoded only inside their events).
EVENT_DETAILS: dict[type, st.SearchStrategy[Any]] = {
    PlannedEvent: MESSAGES[Plan],
    StepStartedEvent: st.builds(StepStartedDetail, instruction=texts()),
    StepProgressEvent: json_values(),
    StepFinishedEvent: st.builds(StepFinishedDetail, output=json_values()),
    StepFailedEvent: error_infos,
    AnsweredEvent: st.builds(AnsweredDetail, answer=texts(), partial=st.booleans()),
    ReplannedEvent: st.builds(
        ReplannedDetail, round=st.integers(*INT64), reason=texts(), plan=MESSAGES[Plan]
    ),
}
for _event, _detail in EVENT_DETAILS.items():
    MESSAGES[_event] = st.builds(
        _event,
        correlation_id=texts(),
        step=_optional(texts()),
        agent=_optional(texts()),
        detail=_detail,
        ts=finite_floats(),
        seq=st.integers(*INT64),
    )
#: Any progress event.
progress_events: st.SearchStrategy[Any] = st.one_of(*(MESSAGES[event] for event in EVENT_DETAILS))
MESSAGES[ConversationReply] = st.builds(
    ConversationReply,
    correlation_id=texts(),
    answer=texts(),
    steps=st.lists(MESSAGES[StepResult], max_size=3),
    partial=st.booleans(),
    usage=usages,
    duration_ms=finite_floats(),
    error=_optional(error_infos),
    conversation_id=_optional(texts()),
)
MESSAGES[HistoryReply] = st.builds(
    HistoryReply,
    conversation_id=texts(),
    turns=st.lists(MESSAGES[ConversationTurn], max_size=3),
)

#: Every type a Switchboard process decodes off the wire (and the BFF's request body).
WIRE_TYPES: list[type] = list(MESSAGES)


def messages(type_: type) -> st.SearchStrategy[Any]:
    return MESSAGES[type_]


# -- random input --------------------------------------------------------------------------------


def field_names(type_: type) -> tuple[str, ...]:
    return tuple(f.encode_name for f in msgspec.structs.fields(type_))


def shaped_objects(type_: type) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects with (mostly) the message's own field names and random values."""
    keys = st.sampled_from(field_names(type_)) | texts(max_size=10)
    return st.dictionaries(keys, json_values(big_ints=True), max_size=len(field_names(type_)) + 2)


def random_json(type_: type) -> st.SearchStrategy[bytes]:
    """Random JSON documents (any shape, or the message's shape with random values)."""
    return (json_values(big_ints=True) | shaped_objects(type_)).map(encode)


def random_bytes() -> st.SearchStrategy[bytes]:
    """Bytes: pure noise, or JSON-ish fragments with noise (more likely to get deep)."""
    fragments = st.sampled_from(
        [b"{", b"}", b"[", b"]", b'"', b":", b",", b"null", b"true", b"1e999", b"-0", b"\\u"]
    )
    return st.binary(max_size=512) | st.lists(fragments | st.binary(max_size=4), max_size=40).map(
        b"".join
    )


# -- mutations of valid messages -----------------------------------------------------------------

Path = tuple[str | int, ...]


def render(path: Path) -> str:
    """A path in msgspec's notation: ``$.steps[0].id``."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def within(error_path: str | None, path: Path) -> bool:
    """Whether msgspec's ``error_path`` is ``path`` or lies inside it."""
    if error_path is None:
        return False
    where = render(path)
    return error_path == where or error_path.startswith((where + ".", where + "["))


@dataclasses.dataclass(frozen=True, repr=False)
class Mutation:
    """A valid message changed in one place; ``data`` is the JSON to decode."""

    kind: str
    data: bytes
    #: Where the change is (the field, or the object a field was dropped from / added to).
    path: Path
    #: The field dropped or added (its name must appear in the error message).
    name: str | None = None
    #: The valid message before the change.
    original: Any = None
    #: For ``drop``: whether the dropped field is required (so decoding must fail).
    required: bool | None = None

    def __repr__(self) -> str:  # hypothesis prints this for a failing example
        shown = self.data if len(self.data) < 300 else self.data[:300] + b"..."
        return f"Mutation({self.kind} at {render(self.path)} name={self.name!r} data={shown!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' printer
        printer.text(repr(self))


def _struct_objects(type_: Any, value: Any, path: Path = ()) -> list[tuple[Path, type, Any]]:
    """Every JSON object of ``value`` that is a message Struct, with its path and type.

    Free-form fields (``Any``, ``dict[str, Any]``) are not descended into: there any
    content is valid.
    """
    found: list[tuple[Path, type, Any]] = []
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        if not isinstance(value, dict):
            return found
        found.append((path, type_, value))
        for field in msgspec.structs.fields(type_):
            if field.encode_name in value:
                found += _struct_objects(
                    field.type, value[field.encode_name], (*path, field.encode_name)
                )
        return found
    for inner in _inner_types(type_):
        if isinstance(value, list):
            for i, item in enumerate(value):
                found += _struct_objects(inner, item, (*path, i))
        else:
            found += _struct_objects(inner, value, path)
    return found


def _inner_types(type_: Any) -> list[Any]:
    """Struct types nested in ``type_`` (``X | None``, ``list[X]``, ``Annotated[...]``)."""
    key = repr(type_)
    if key not in _INNER:  # msgspec.inspect compiles annotations: not while generating
        _INNER[key] = _struct_types(msgspec.inspect.type_info(type_))
    return _INNER[key]


_INNER: dict[str, list[Any]] = {}


def _struct_types(info: msgspec.inspect.Type) -> list[Any]:
    if isinstance(info, msgspec.inspect.StructType):
        return [info.cls]
    if isinstance(info, msgspec.inspect.UnionType):
        return [t for member in info.types for t in _struct_types(member)]
    if isinstance(info, msgspec.inspect.ListType | msgspec.inspect.VarTupleType):
        return _struct_types(info.item_type)
    return []


def _fields(doc: dict[str, Any], type_: type) -> list[tuple[Path, Any]]:
    """(path, value) of every field present in every Struct object of ``doc``."""
    return [
        ((*path, name), obj[name]) for path, _t, obj in _struct_objects(type_, doc) for name in obj
    ]


def _set(doc: Any, path: Path, value: Any) -> None:
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def _get(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _with_raw(doc: Any, path: Path, raw: bytes) -> bytes:
    """``doc`` as JSON with the value at ``path`` replaced by the raw JSON text ``raw``."""
    marker = "\x00mutation-marker\x00"
    _set(doc, path, marker)
    data = encode(doc)
    needle = encode(marker)
    assert data.count(needle) == 1
    return data.replace(needle, raw)


@st.composite
def mutations(draw: st.DrawFn, type_: type, kind: str) -> Mutation:
    """A valid ``type_`` message with one change of ``kind``:

    ``drop``: a field removed; ``retype``: a field's value of another JSON type;
    ``unknown``: a field no message has, added to an object; ``oversize``: a string
    field 40,000 characters long (past ``MAX_MESSAGE_CHARS``); ``deep``: a value
    nested thousands of levels deep; ``huge``: a number far outside 64 bits or floats;
    ``utf8``: a string holding bytes that are not UTF-8 (or a lone surrogate escape).
    """
    message = draw(messages(type_))
    doc = msgspec.to_builtins(message)
    objects = _struct_objects(type_, doc)
    if kind == "drop":
        candidates = [(p, t, n) for p, t, obj in objects for n in obj]
        path, struct, name = draw(st.sampled_from(candidates))
        del _get(doc, path)[name]
        required = {f.encode_name: f.required for f in msgspec.structs.fields(struct)}
        # A tagged struct (a progress event) decoded as itself checks its tag, if present.
        required[struct.__struct_config__.tag_field or ""] = False
        return Mutation(kind, encode(doc), path, name, message, required[name])
    if kind == "unknown":
        path, _t, obj = draw(st.sampled_from(objects))
        name = "x-" + draw(texts(max_size=12))
        obj[name] = draw(json_values(big_ints=True))
        return Mutation(kind, encode(doc), path, name, message)
    if kind == "deep":
        depth = draw(st.integers(1_000, 20_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        raw = opener * depth + b"0" + closer * depth
        if draw(st.booleans()):  # as an unknown field (msgspec must skip it) ...
            path, _t, _obj = draw(st.sampled_from(objects))
            data = _with_raw(doc, (*path, "x-deep"), raw)
            return Mutation(kind, data, path, "x-deep", message)
        path, _value = draw(st.sampled_from(_fields(doc, type_)))  # ... or as a field's value
        return Mutation(kind, _with_raw(doc, path, raw), path, None, message)
    fields = _fields(doc, type_)
    if kind == "retype":
        path, value = draw(st.sampled_from(fields))
        other = draw(
            json_values(big_ints=True).filter(lambda v: _json_type(v) != _json_type(value))
        )
        _set(doc, path, other)
        return Mutation(kind, encode(doc), path, None, message)
    if kind == "oversize":
        strings = [(p, v) for p, v in fields if isinstance(v, str)]
        path, _value = draw(st.sampled_from(strings))
        _set(doc, path, "x" * (MAX_MESSAGE_CHARS + draw(st.integers(1, 8_000))))
        return Mutation(kind, encode(doc), path, None, message)
    if kind == "huge":
        path, _value = draw(st.sampled_from(fields))
        raw = draw(
            st.sampled_from([b"1e400", b"-1e400", b"1e-400", b"123456789012345678901234567890"])
            | st.integers(20, 4_000).map(lambda n: b"9" * n)
            | st.integers(20, 4_000).map(lambda n: b"-" + b"9" * n)
            | st.integers(1, 4_000).map(lambda n: b"0." + b"0" * n + b"1")
        )
        return Mutation(kind, _with_raw(doc, path, raw), path, None, message)
    if kind == "utf8":
        strings = [(p, v) for p, v in fields if isinstance(v, str)]
        path, value = draw(st.sampled_from(strings))
        bad = draw(
            st.sampled_from(
                [
                    b"\xff",
                    b"\xfe\xfe",
                    b"\xc0\xaf",  # overlong "/"
                    b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8
                    b"\xf4\x90\x80\x80",  # past U+10FFFF
                    b"\xe2\x82",  # truncated sequence
                    b"\\ud800",  # lone surrogate escapes
                    b"\\udfff",
                    b"\\ud800\\u0041",
                ]
            )
        )
        cut = draw(st.integers(0, len(value)))
        raw = encode(value[:cut])[:-1] + bad + encode(value[cut:])[1:]
        return Mutation(kind, _with_raw(doc, path, raw), path, None, message)
    raise ValueError(f"unknown mutation kind {kind!r}")


MUTATION_KINDS = ("drop", "retype", "unknown", "oversize", "deep", "huge", "utf8")


for _type in WIRE_TYPES:  # resolve every field's nested message types once, up front
    for _field in msgspec.structs.fields(_type):
        _inner_types(_field.type)
