"""The chat page in a real browser (Debian's Chromium driven by Playwright) against a
real ``switchboard up``: the plan and each step's status appear live, the answer and
its correlation id arrive, errors are shown, and the conversation survives a reload.

Needs ``pip install playwright`` and ``apt-get install chromium`` (no ``playwright
install``: the browser is the system's). Missing either is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from tests.support.up import ROOT, UpProcess

try:
    from playwright.async_api import async_playwright, expect
except ImportError:  # reported by the ``page`` fixture as a failure
    async_playwright = None  # type: ignore[assignment]
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.async_api import Page, Response, Route

ARTIFACTS = ROOT / "artifacts" / "web"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home, and this machine's closed network refuses it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
WAIT_MS = 15_000


def _chromium() -> str:
    """The system Chromium (``SWITCHBOARD_CHROMIUM`` overrides), or fail saying how to get it."""
    candidates = [
        os.environ.get("SWITCHBOARD_CHROMIUM", ""),
        "/usr/bin/chromium",
        shutil.which("chromium") or "",
        shutil.which("chromium-browser") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "Chromium is not installed: run `apt-get install -y chromium` "
        "(or set SWITCHBOARD_CHROMIUM to a Chromium binary).",
        pytrace=False,
    )


@pytest.fixture
async def page(request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh browser tab (own sessionStorage, so its own conversation) on the page."""
    if async_playwright is None:
        pytest.fail(
            "Playwright is not installed: run `pip install playwright` "
            "(not `playwright install`: the browser is Debian's chromium).",
            pytrace=False,
        )
    executable = _chromium()
    # Only now: no point starting the system when the browser cannot run.
    up: UpProcess = request.getfixturevalue("switchboard_up")
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 860})
            tab = await context.new_page()
            tab.set_default_timeout(WAIT_MS)
            tab.on("pageerror", lambda error: errors.append(str(error)))
            await tab.goto(up.url + "/")
            # The sidebar lists the live agents once the page has talked to the server.
            await expect(tab.locator("[data-testid=agent][data-agent=calculator]")).to_be_visible()
            yield tab
        finally:
            await browser.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


async def _ask(page: Page, question: str) -> None:
    await page.get_by_label("Your message").fill(question)
    await page.get_by_label("Your message").press("Enter")


async def test_question_is_planned_run_and_answered(page: Page) -> None:
    turns = page.get_by_test_id("turn")
    await _ask(page, "what is 17*23, and what time is it in Tokyo?")

    await expect(turns).to_have_count(1)
    turn = turns.first
    rows = turn.get_by_test_id("step-row")
    await expect(rows).to_have_count(2)
    for agent, instruction in (("calculator", "17*23"), ("clock", "Tokyo")):
        row = turn.locator(f"[data-testid=step-row][data-agent={agent}]")
        await expect(row).to_have_attribute("data-status", "done")
        await expect(row.get_by_test_id("step-status")).to_have_text("done")
        await expect(row.get_by_test_id("step-instruction")).to_contain_text(instruction)
        await expect(row.get_by_test_id("step-duration")).to_have_text(re.compile(r"\d ms|\d s"))

    answer = turn.get_by_test_id("answer")
    await expect(answer).to_contain_text("391")
    await expect(answer).to_contain_text("Tokyo")
    await expect(turn).to_have_attribute("data-state", "done")
    await expect(turn.get_by_test_id("correlation-id")).to_have_text(
        re.compile(rf"^conv-local-{UUID4}$")
    )
    await expect(turn.get_by_test_id("duration")).to_have_text(re.compile(r"\d"))
    await expect(page.get_by_test_id("send")).to_be_enabled()
    await expect(page.get_by_test_id("error-banner")).to_be_hidden()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "answer.png"), full_page=True)


async def test_nested_agent_calls_show_under_their_step(page: Page) -> None:
    """The trip agent calls the clock and the calculator (twice): three call rows under
    its step, from the call_started / call_finished events, each done with its output."""
    turns = page.get_by_test_id("turn")
    await _ask(page, "What time will it be in Tokyo when I land in 13 hours?")

    turn = turns.last
    row = turn.locator("[data-testid=step-row][data-agent=trip]")
    await expect(row).to_have_attribute("data-status", "done")
    calls = row.get_by_test_id("step-calls").get_by_test_id("call-row")
    await expect(calls).to_have_count(3)
    for path in ("s1>trip>clock", "s1>trip>calculator"):
        await expect(
            row.locator(f'[data-testid=call-row][data-path="{path}"]').first
        ).to_be_visible()
    for index in range(3):
        await expect(calls.nth(index)).to_have_attribute("data-status", "done")
    await expect(row.locator('[data-path="s1>trip>clock"] >> .call-head')).to_have_text(
        "trip → clock"
    )
    await expect(
        row.locator('[data-path="s1>trip>clock"]').get_by_test_id("call-note")
    ).to_contain_text("Tokyo")
    await expect(turn.get_by_test_id("answer")).to_contain_text("13 hours from now")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "nested-calls.png"), full_page=True)


async def test_errors_are_shown_in_a_banner(page: Page) -> None:
    banner = page.get_by_test_id("error-banner")
    send = page.get_by_test_id("send")

    # The real server refuses an over-long message with a 400 problem. The page itself no
    # longer sends one (Send is disabled over the limit), so the body is lengthened on its
    # way, as an older page or another client would send it.
    async def lengthened(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        await route.continue_(post_data=json.dumps({**body, "message": "x" * 32_001}))

    await page.route("**/v1/chat/stream", lengthened)
    await _ask(page, "what is 1+1")
    await expect(banner).to_be_visible()
    await expect(page.get_by_test_id("error-title")).to_contain_text("Bad request (400)")
    await expect(page.get_by_test_id("error-detail")).to_contain_text("32000")
    await expect(page.get_by_test_id("turn").first).to_have_attribute("data-state", "error")
    await expect(send).to_be_enabled()
    # The refused question is given back, to be shortened.
    await expect(page.get_by_label("Your message")).to_have_value("what is 1+1")
    await page.unroute("**/v1/chat/stream", lengthened)

    # An overloaded orchestrator (503), answered slowly: the button is disabled meanwhile.
    detail = "The orchestrator is restarting; retry shortly."
    problem = {
        "type": "urn:switchboard:error:overloaded",
        "title": "Overloaded",
        "status": 503,
        "detail": detail,
        "code": "overloaded",
        "correlation_id": "conv-local-test-503",
    }
    release = asyncio.Event()

    async def unavailable(route: Route) -> None:
        await release.wait()
        await route.fulfill(
            status=503, content_type="application/problem+json", body=json.dumps(problem)
        )

    await page.route("**/v1/chat/stream", unavailable)
    await _ask(page, "what is 2+2")
    await expect(send).to_be_disabled()
    await expect(banner).to_be_hidden()  # a new question clears the old error
    release.set()
    await expect(banner).to_be_visible()
    await expect(page.get_by_test_id("error-title")).to_have_text("Overloaded (503)")
    await expect(page.get_by_test_id("error-detail")).to_have_text(detail)
    await expect(page.get_by_test_id("error-correlation")).to_contain_text("conv-local-test-503")
    await expect(send).to_be_enabled()
    await expect(page.get_by_test_id("turn").nth(1).get_by_test_id("answer")).to_contain_text(
        "restarting"
    )


async def test_conversation_is_kept_across_reloads(page: Page) -> None:
    turns = page.get_by_test_id("turn")
    conversation = page.get_by_test_id("conversation-id")
    conversation_id = await conversation.text_content()
    assert conversation_id and re.fullmatch(r"[A-Za-z0-9_-]{1,200}", conversation_id)

    await _ask(page, "what is 2+3")
    await expect(turns.nth(0).get_by_test_id("answer")).to_contain_text("5")
    await _ask(page, "what is 6*7")
    await expect(turns.nth(1).get_by_test_id("answer")).to_contain_text("42")
    await expect(turns).to_have_count(2)

    await page.reload()
    await expect(turns).to_have_count(2)
    await expect(conversation).to_have_text(conversation_id)
    await expect(turns.nth(0).get_by_test_id("turn-message")).to_have_text("what is 2+3")
    await expect(turns.nth(0).get_by_test_id("answer")).to_contain_text("5")
    await expect(turns.nth(1).get_by_test_id("turn-message")).to_have_text("what is 6*7")
    await expect(turns.nth(1).get_by_test_id("answer")).to_contain_text("42")
    await expect(turns.nth(1).get_by_test_id("correlation-id")).to_have_text(
        re.compile(rf"^conv-local-{UUID4}$")
    )

    # A new conversation starts empty, under a new id, and stays empty after a reload.
    await page.get_by_test_id("new-conversation").click()
    await expect(turns).to_have_count(0)
    await expect(conversation).not_to_have_text(conversation_id)
    await page.reload()
    await expect(page.get_by_test_id("empty")).to_be_visible()
    await expect(turns).to_have_count(0)


async def test_a_large_answer_shows_whole_once_its_reply_comes(page: Page) -> None:
    # Events carry previews of a large output (its first characters and its size); the
    # reply carries the answer whole, and the step a preview of what the answer holds.
    size = 200_000
    text = ("All work and no play. " * (size // 22 + 1))[:size]
    cid = "conv-local-large"
    preview = {"truncated": True, "size": size + 2}
    plan = {"steps": [{"id": "s1", "agent": "text", "instruction": "big", "depends_on": []}]}
    events = [
        ("planned", {"correlation_id": cid, "kind": "planned", "detail": plan, "seq": 1}),
        ("step_started", {"correlation_id": cid, "kind": "step_started", "step": "s1",
                          "agent": "text", "detail": {"instruction": "big"}, "seq": 2}),
        ("step_finished", {"correlation_id": cid, "kind": "step_finished", "step": "s1",
                           "agent": "text", "detail": {"output": text[:1000], **preview},
                           "seq": 3}),
        ("answered", {"correlation_id": cid, "kind": "answered",
                      "detail": {"answer": text[:1000], "partial": False, **preview},
                      "seq": 4}),
    ]  # fmt: skip
    reply = {
        "correlation_id": cid,
        "answer": text,
        "steps": [
            {"id": "s1", "agent": "text", "status": "ok", "output": text[:1000],
             "output_truncated": True, "output_size": size + 2, "duration_ms": 5.0,
             "attempts": 1},
        ],
        "partial": False,
        "duration_ms": 12.0,
    }  # fmt: skip
    body = "".join(f"event: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in events)
    body += f"event: reply\ndata: {json.dumps(reply)}\n\n"

    async def large(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/event-stream", body=body)

    await page.route("**/v1/chat/stream", large)
    await _ask(page, "something big")
    turn = page.get_by_test_id("turn").first
    await expect(turn).to_have_attribute("data-state", "done")
    answer = await turn.get_by_test_id("answer").text_content()
    assert answer == text
    row = turn.locator("[data-testid=step-row][data-agent=text]")
    await expect(row).to_have_attribute("data-status", "done")
    await expect(row).to_contain_text("195 KiB in all")


async def test_the_docs_page_renders_the_api_and_can_try_it(page: Page) -> None:
    # Swagger UI 4 read the OpenAPI 3.1 document as "Unable to render this definition".
    base = page.url.rstrip("/")
    offsite: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(base) else offsite.append(request.url),
    )
    await page.goto(base + "/docs")
    chat = page.locator(".opblock-post", has=page.locator("[data-path='/v1/chat']"))
    await expect(chat).to_be_visible()
    await expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    await expect(page.locator(".opblock-get [data-path='/v1/agents']")).to_be_visible()

    await chat.locator(".opblock-summary").click()
    await chat.get_by_role("button", name="Try it out").click()
    body = chat.locator("textarea.body-param__text")
    await body.fill('{"message": "what is 6*7"}')
    await chat.get_by_role("button", name="Execute").click()
    response = chat.locator(".live-responses-table .response .response-col_status")
    await expect(response.first).to_have_text("200")
    await expect(chat.locator(".live-responses-table .highlight-code").first).to_contain_text("42")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "docs.png"), full_page=True)
    assert offsite == [], f"the docs loaded assets from elsewhere: {offsite}"


async def test_history_is_asked_for_only_once_the_conversation_has_started(page: Page) -> None:
    # Every load asked for the history of a conversation not yet started: a 404 each time.
    asked: list[int] = []

    async def on_response(response: Response) -> None:
        if "/v1/conversations/" in response.url:
            asked.append(response.status)

    page.on("response", on_response)
    await page.reload()
    await expect(page.locator("[data-testid=agent][data-agent=calculator]")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    assert asked == []

    await _ask(page, "what is 2+3")
    await expect(page.get_by_test_id("turn").first.get_by_test_id("answer")).to_contain_text("5")
    await page.reload()
    await expect(page.get_by_test_id("turn").first.get_by_test_id("answer")).to_contain_text("5")
    assert asked == [200]


async def test_send_is_disabled_while_the_message_is_over_the_limit(page: Page) -> None:
    send = page.get_by_test_id("send")
    box = page.get_by_label("Your message")
    await box.fill("x" * 32_001)
    await expect(send).to_be_disabled()
    await expect(page.get_by_test_id("counter")).to_have_text("32,001 / 32,000 characters")
    await box.press("Enter")  # nor by the keyboard
    await expect(page.get_by_test_id("turn")).to_have_count(0)
    # The limit counts characters as the server does (one emoji is one, not two).
    await box.fill("\N{GRINNING FACE}" * 32_000)
    await expect(send).to_be_enabled()
    await box.fill("x" * 32_000)
    await expect(send).to_be_enabled()


async def test_rounds_show_live_and_after_a_reload(page: Page) -> None:
    # Offline, with the built-in agents of `switchboard up`: the square root needs the other
    # step's result, which it did not wait for; round 2 runs it again with that result.
    turns = page.get_by_test_id("turn")
    await _ask(page, "what is the square root of the result, and what is 9*9?")
    turn = turns.first
    await expect(turn).to_have_attribute("data-state", "done")
    rounds = turn.get_by_test_id("round")
    await expect(rounds).to_have_count(2)
    await expect(rounds.nth(0)).to_have_text("Round 1")
    await expect(rounds.nth(1)).to_contain_text("Round 2")
    await expect(rounds.nth(1).get_by_test_id("round-reason")).to_contain_text(
        "output of s2 (calculator)"
    )
    first = turn.locator("[data-testid=step-row][data-step=s1]")
    retry = turn.locator("[data-testid=step-row][data-step=r2s1]")
    await expect(first).to_have_attribute("data-status", "failed")
    await expect(retry).to_have_attribute("data-round", "2")
    await expect(retry).to_have_attribute("data-status", "done")
    await expect(retry.get_by_test_id("step-deps")).to_have_text("↳ after s2")
    await expect(retry.get_by_test_id("step-note")).to_contain_text("= 9")
    await expect(turn.get_by_test_id("answer")).to_contain_text("= 9")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "rounds.png"), full_page=True)

    # History keeps the steps: after a reload the turn shows them again, by round.
    await page.reload()
    turn = turns.first
    await expect(turn.get_by_test_id("round")).to_have_count(2)
    await expect(turn.get_by_test_id("step-row")).to_have_count(3)
    retry = turn.locator("[data-testid=step-row][data-step=r2s1]")
    await expect(retry).to_have_attribute("data-status", "done")
    await expect(retry.get_by_test_id("step-note")).to_contain_text("= 9")
    await page.screenshot(path=str(ARTIFACTS / "rounds-reloaded.png"), full_page=True)
