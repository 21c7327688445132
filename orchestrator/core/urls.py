"""Server URLs safe to show: ``nats://user:password@host`` carries a secret in its userinfo."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["without_credentials"]


def without_credentials(urls: str | Sequence[str]) -> str:
    """``urls`` (one, a list, or comma-separated) with any userinfo masked as ``***``.

    >>> without_credentials("nats://bob:hunter2@10.0.0.1:4222,nats://10.0.0.2:4222")
    'nats://***@10.0.0.1:4222, nats://10.0.0.2:4222'
    """
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    shown = []
    for url in (item.strip() for item in items):
        if not url:
            continue
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "", url
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            authority = "***@" + authority.rsplit("@", 1)[1]
        shown.append(scheme + sep + authority + slash + path)
    return ", ".join(shown)
