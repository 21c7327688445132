"""The NATS user of an agent, written from its declaration (``deploy/nats/auth.conf``).

Every agent logs in as its own user, ``agent-<name>``, which may serve its own subject,
hear cancel notices, answer the service API for its own name, and reply to the requests
it received. An agent that calls agents (``@agent(..., calls=("clock",))``) may also
publish to exactly the subjects of the agents it declares, send cancel notices (for the
calls it gives up) and use its own reply inbox, ``_INBOX_agent_<name>`` (set
``SWITCHBOARD_INBOX_PREFIX`` to it); a call to any other agent is refused by the NATS
server itself (a permissions violation), whatever the process does.

The agent users of ``deploy/nats/auth.conf`` are generated from the built-in agents'
declarations (``python scripts/update_docs.py``), and a test checks they match, so the
permissions cannot drift from the code. For an agent of your own, paste
:func:`agent_user`'s block into the ``users`` list.
"""

from __future__ import annotations

from collections.abc import Iterable

from .sdk import Agent

__all__ = ["agent_user", "agent_users", "inbox_prefix", "render_auth"]

BEGIN = "# -- agent users: generated from the agents' declarations (scripts/update_docs.py) --"
END = "# -- end of the generated agent users --"


def inbox_prefix(agent: Agent) -> str:
    """The reply inbox prefix of an agent that calls agents (its user may read only it)."""
    return f"_INBOX_agent_{agent.name}"


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def agent_user(agent: Agent, *, prefix: str = "ai", indent: str = "    ") -> str:
    """The ``auth.conf`` entry of ``agent``'s NATS user (subjects under ``prefix``)."""
    name = agent.name
    subscribe = [
        f"{prefix}.agents.{name}",
        f"{prefix}.cancel.*",
        "$SRV.*",
        f"$SRV.*.{name}",
        f"$SRV.*.{name}.*",
    ]
    lines = [
        "{",
        f"  user: agent-{name}",
        f"  password: $NATS_PASSWORD_AGENT_{name.upper().replace('-', '_')}",
        "  permissions: {",
    ]
    if agent.calls:
        inbox = inbox_prefix(agent) + ".>"
        publish = [
            *(f"{prefix}.agents.{callee}" for callee in sorted(agent.calls)),
            f"{prefix}.cancel.*",
            inbox,
        ]
        subscribe.append(inbox)
        lines.append(f"    publish: {{ allow: {_list(publish)} }}")
    lines += [
        "    subscribe: {",
        f"      allow: {_list(subscribe)}",
        "    }",
        "    allow_responses: $SERVICE_RESPONSES",
        "  }",
        "}",
    ]
    return "\n".join(indent + line for line in lines)


def agent_users(agents: Iterable[Agent], *, prefix: str = "ai") -> str:
    """The entries of every agent in ``agents``, between the generated-section markers."""
    blocks = "\n".join(agent_user(agent, prefix=prefix) for agent in agents)
    return f"    {BEGIN}\n{blocks}\n    {END}"


def render_auth(text: str, agents: Iterable[Agent], *, prefix: str = "ai") -> str:
    """``auth.conf``'s text with its generated agent users written from ``agents``.

    Raises:
        ValueError: the text has no generated section (its two marker comments).
    """
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"auth.conf has no generated section ({BEGIN!r} ... {END!r}).")
    line_start = text.rfind("\n", 0, start) + 1
    return text[:line_start] + agent_users(agents, prefix=prefix) + text[end + len(END) :]
