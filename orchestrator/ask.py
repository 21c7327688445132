"""``switchboard ask``: a conversation from the terminal, over NATS."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from .core.client import ConversationClient
from .core.codec import encode
from .core.connection import connect
from .core.conversation import ConversationReply
from .core.errors import SwitchboardError
from .core.progress import PlannedEvent, ProgressEvent, TokenEvent
from .core.requester import Requester
from .core.subjects import Subjects, new_correlation_id, safe_token
from .runtime.logs import configure_logging
from .runtime.part import nats_options
from .runtime.settings import Settings

__all__ = ["ask"]


async def ask(
    settings: Settings,
    message: str,
    *,
    user: str = "cli",
    conversation: str | None = None,
    agents: list[str] | None = None,
    timeout: float = 60.0,
    stream: bool = False,
    as_json: bool = False,
) -> int:
    """Send one ConversationRequest and print the answer; 0 ok, 1 failed or partial."""
    user_id = safe_token(user)
    correlation_id = new_correlation_id(user_id)
    # The answer goes to stdout; logs (warnings and worse unless asked) to stderr.
    level = settings.log_level if settings.log_level in ("warning", "error") else "warning"
    configure_logging(level, json=settings.log_format == "json")
    options = nats_options(settings)  # a setting that cannot work: ConfigurationError
    try:
        nc = await connect(settings.nats_servers, name="switchboard-ask", budget=timeout, **options)
    except SwitchboardError as exc:
        print(f"error: {exc}", file=sys.stderr)  # not an error reply: no code to show
        return 1
    requester = Requester(
        nc, subjects=Subjects(settings.subject_prefix), inbox_prefix=settings.inbox_prefix
    )
    await requester.start()
    client = ConversationClient(requester, default_timeout=timeout, retries=0)
    reply_printed = False  # streamed to stdout already, token by token
    try:
        if stream:
            reply = None
            printer = _TokenPrinter(enabled=not as_json)
            async with client.stream(
                message,
                user_id=user_id,
                correlation_id=correlation_id,
                conversation_id=conversation,
                agents=agents,
            ) as events:
                async for item in events:
                    match item:
                        case ConversationReply():
                            reply = item
                        case TokenEvent():
                            printer.write(item)
                        case _:
                            _print_event(item)
            assert reply is not None
            if printer.printed(reply.answer):
                reply_printed = True
        else:
            reply = await client.ask(
                message,
                user_id=user_id,
                correlation_id=correlation_id,
                conversation_id=conversation,
                agents=agents,
            )
    except SwitchboardError as exc:
        print(f"error [{exc.code.value}] {exc}", file=sys.stderr)
        return 1
    finally:
        await requester.close()
        await nc.drain()
    if as_json:
        sys.stdout.buffer.write(encode(reply) + b"\n")
    else:
        if not reply_printed:
            print(reply.answer)
        print(
            f"({correlation_id}, {reply.duration_ms:.0f} ms"
            + (", partial" if reply.partial else "")
            + ")",
            file=sys.stderr,
        )
    return 1 if reply.partial else 0


def _print_event(event: ProgressEvent) -> None:
    where = f" {event.step}/{event.agent}" if event.step else ""
    match event:
        case PlannedEvent(detail=plan):
            detail: Any = ", ".join(f"{s.id}:{s.agent}" for s in plan.steps) or "no steps"
        case _:  # as it came, the same text as ever
            detail = msgspec.to_builtins(event.detail)
    print(f"[{event.seq:>3}] {event.kind}{where}: {detail}", file=sys.stderr)


class _TokenPrinter:
    """Writes streamed text to stdout as it comes, one line per writer (a step, or the
    answer itself); ``printed`` says whether the answer was among what it wrote."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.source: tuple[str | None, str | None] | None = None
        self.texts: dict[tuple[str | None, str | None], list[str]] = {}

    def write(self, event: TokenEvent) -> None:
        if not self.enabled:
            return
        path = event.detail.path if isinstance(event.detail.path, str) else None
        source = (event.step, path)
        if self.source is not None and source != self.source:
            sys.stdout.write("\n")  # another writer: a line of its own
        self.source = source
        self.texts.setdefault(source, []).append(event.detail.text)
        sys.stdout.write(event.detail.text)
        sys.stdout.flush()

    def printed(self, answer: str) -> bool:
        """End the streamed line; True when the streamed text of the last writer is the
        whole answer (it is not printed again)."""
        if self.source is None:
            return False
        sys.stdout.write("\n")
        sys.stdout.flush()
        return "".join(self.texts[self.source]).strip() == answer.strip()
