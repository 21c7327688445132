"""``fits``: does a message fit the server's max_payload with its headers, exactly."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client as NATS

from orchestrator.connection import fits

header_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n:"), max_size=40
)


def header_block(headers: dict[str, str]) -> bytes:
    """The header block nats-py writes before an HPUB payload."""
    lines = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
    return b"NATS/1.0\r\n" + lines + b"\r\n"


def server(max_payload: int) -> NATS:
    # fits() reads only the negotiated limit off the client.
    return cast(NATS, SimpleNamespace(max_payload=max_payload))


@given(
    headers=st.dictionaries(header_text.filter(bool), header_text, max_size=6),
    payload=st.integers(min_value=0, max_value=4096),
    slack=st.integers(min_value=-3, max_value=3),
)
def test_fits_exactly_at_the_limit_with_headers_in_utf8(
    headers: dict[str, str], payload: int, slack: int
) -> None:
    data = b"x" * payload
    size = payload + (len(header_block(headers)) if headers else 0)
    limit = size + slack
    assert fits(server(limit), data, headers) is (slack >= 0)


def test_a_message_without_headers_is_its_payload() -> None:
    assert fits(server(10), b"x" * 10, None)
    assert not fits(server(10), b"x" * 11, {})
