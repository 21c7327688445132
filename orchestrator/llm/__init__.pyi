from .base import (
    LLM,
    ChatMessage,
    Completion,
    TokenStream,
    Tool,
    ToolCall,
    ToolCallingLLM,
    ToolTurn,
)
from .entities import decode_entities
from .factory import make_llm
from .local import LocalLLM, LocalTokenStream
from .openai import OpenAIProvider
from .openai_stream import OpenAITokenStream

__all__ = [
    "LLM",
    "ChatMessage",
    "Completion",
    "LocalLLM",
    "LocalTokenStream",
    "OpenAIProvider",
    "OpenAITokenStream",
    "TokenStream",
    "Tool",
    "ToolCall",
    "ToolCallingLLM",
    "ToolTurn",
    "decode_entities",
    "make_llm",
]
