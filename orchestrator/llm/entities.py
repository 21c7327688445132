"""HTML entities a model copied from its chat template, decoded.

Some servers render the prompt through an HTML-escaping template (llama.cpp's
Jinja templates among them), so a quote reaches the model as ``&#34;``; a
small model then writes the entity back into its answer, and the user reads
``&#34;`` where a quote belongs. A model's text is decoded here -- unless the
prompt itself holds entities: then an entity in the answer may be meant (a
question about HTML), and the text is left as it is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

__all__ = ["decode_entities"]

#: A named, decimal or hexadecimal character reference.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def decode_entities(text: str, prompt: Iterable[str] = ()) -> str:
    """``text`` with HTML character references decoded, unless ``prompt`` holds some."""
    if _ENTITY.search(text) is None:
        return text
    if any(_ENTITY.search(part) for part in prompt):
        return text
    return html.unescape(text)
