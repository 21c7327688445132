"""The model server of the end-to-end streaming tests: the fake, or any real one.

The ``model_server`` fixture is parametrized by the server: ``llama`` is the real small
model (llama.cpp with SmolLM2, ``tests.support.llama``), and ``fake`` is
:class:`~tests.support.fake_openai.FakeOpenAI` answering every request with
:data:`LONG_ANSWER`, streamed a word every 10 ms. Set ``SWITCHBOARD_TEST_MODEL_URL`` (and
``SWITCHBOARD_TEST_MODEL``, the model id) to run them against another OpenAI-compatible
server instead of llama::

    SWITCHBOARD_TEST_MODEL_URL=http://127.0.0.1:8088/v1 pytest tests/engine/test_token_streaming.py

What only the fake can show (the exact text, that the server saw its client leave)
is checked through :attr:`ModelServer.fake` when there is one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from switchboard.orchestrator import OpenAIProvider
from tests.support.fake_openai import FakeOpenAI, Reply

if TYPE_CHECKING:
    from tests.support.llama import LlamaServer

__all__ = ["LONG_ANSWER", "ModelServer", "model_server"]

#: What the fake model answers: long enough to be streamed in many pieces.
LONG_ANSWER = " ".join(f"Sentence {i} of the streamed answer." for i in range(1, 13))
#: Seconds between the fake model's chunks (one word each).
CHUNK_DELAY = 0.01

URL = os.environ.get("SWITCHBOARD_TEST_MODEL_URL", "fake")


@dataclass(frozen=True, slots=True)
class ModelServer:
    """Where the model server answers, and the fake behind it (None for a real server)."""

    base_url: str
    model: str
    fake: FakeOpenAI | None

    def provider(self, *, timeout: float = 30.0) -> OpenAIProvider:
        return OpenAIProvider(
            model=self.model,
            api_key="test-key",
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,
        )


#: The servers every streaming test runs against: the scripted fake, and the real small
#: model (llama.cpp with SmolLM2, the ``llama_server`` session fixture) -- or the server
#: ``SWITCHBOARD_TEST_MODEL_URL`` names instead of that one.
SERVERS = ["fake", URL if URL != "fake" else "llama"]


@pytest_asyncio.fixture(params=SERVERS, ids=lambda url: url if url in ("fake", "llama") else "real")
async def model_server(request: pytest.FixtureRequest) -> AsyncIterator[ModelServer]:
    """The model server the streaming tests talk to (see the module docstring)."""
    if request.param == "llama":
        llama: LlamaServer = request.getfixturevalue("llama_server")
        yield ModelServer(llama.base_url, llama.model, None)
        return
    if request.param != "fake":
        yield ModelServer(
            request.param, os.environ.get("SWITCHBOARD_TEST_MODEL", "local-model"), None
        )
        return
    async with FakeOpenAI(default=Reply.text(LONG_ANSWER).streamed(CHUNK_DELAY)) as fake:
        yield ModelServer(fake.base_url, "gpt-4o-mini", fake)
