"""Language model providers: ``OpenAIProvider`` (any OpenAI-compatible server) and ``LocalLLM``.

The names are loaded on first use (``__init__.pyi`` lists them), so the agent
SDK's use of the ``LLM`` interface does not load the OpenAI SDK.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
