from .base import LLM, ChatMessage, Completion
from .factory import make_llm
from .local import LocalLLM
from .openai import OpenAIProvider

__all__ = ["LLM", "ChatMessage", "Completion", "LocalLLM", "OpenAIProvider", "make_llm"]
