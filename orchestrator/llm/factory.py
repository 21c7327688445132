"""Choosing the provider the settings ask for."""

from __future__ import annotations

from ..runtime.settings import Settings
from .local import LocalLLM
from .openai import OpenAIProvider

__all__ = ["make_llm"]


def make_llm(settings: Settings) -> LocalLLM | OpenAIProvider:
    """The provider the settings ask for (``auto``: OpenAI when a key is set, else local)."""
    provider = settings.llm_provider
    if provider == "auto":
        provider = "openai" if settings.openai_api_key else "local"
    if provider == "local":
        return LocalLLM()
    return OpenAIProvider(
        model=settings.llm_model,
        api_key=settings.openai_api_key or "unset",
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )
