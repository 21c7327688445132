from .base import LLM, ChatMessage, Completion, Tool, ToolCall, ToolCallingLLM, ToolTurn
from .entities import decode_entities
from .factory import make_llm
from .local import LocalLLM
from .openai import OpenAIProvider

__all__ = [
    "LLM",
    "ChatMessage",
    "Completion",
    "LocalLLM",
    "OpenAIProvider",
    "Tool",
    "ToolCall",
    "ToolCallingLLM",
    "ToolTurn",
    "decode_entities",
    "make_llm",
]
