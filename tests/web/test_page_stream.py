"""The chat page renders an answer as the model writes it (Chromium, real BFF, real NATS).

The llm agent streams from the model server of the ``model_server`` fixture; the page
shows the text growing in the answer area (and the step's row), then the final answer.
A screenshot taken mid-stream is kept as ``artifacts/web/streaming.png``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from switchboard.agents import builtin_agents
from switchboard.orchestrator import EmbeddedNatsServer
from tests.support.fake_openai import Reply
from tests.support.model_server import ModelServer
from tests.support.system import agents_running, bff_running, make_settings, orchestrator_running
from tests.web.test_page import ARTIFACTS, CHROMIUM_ARGS, WAIT_MS, _chromium

try:
    from playwright.async_api import async_playwright, expect
except ImportError:  # reported by the fixture as a failure
    async_playwright = None  # type: ignore[assignment]
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.async_api import Page

ANSWER = " ".join(f"Word {i}." for i in range(1, 16))


@pytest.fixture
async def streaming_page(
    nats_server: EmbeddedNatsServer, model_server: ModelServer
) -> AsyncIterator[Page]:
    """The page of an in-process system whose llm agent streams from ``model_server``."""
    if async_playwright is None:
        pytest.fail("Playwright is not installed: run `pip install playwright`.", pytrace=False)
    executable = _chromium()
    if model_server.fake is not None:  # 3 s of writing: long enough to see it half-done
        model_server.fake.default = Reply.text(ANSWER).streamed(0.1)
    settings = make_settings(nats_server.url, http_port=0)
    llm = model_server.provider()
    errors: list[str] = []
    async with (
        agents_running(settings, *builtin_agents().values(), llm=llm),
        orchestrator_running(settings),
        bff_running(settings) as http,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            tab = await browser.new_page(viewport={"width": 1280, "height": 860})
            tab.set_default_timeout(WAIT_MS)
            tab.on("pageerror", lambda error: errors.append(str(error)))
            await tab.goto(str(http.base_url).rstrip("/") + "/")
            await expect(tab.locator("[data-testid=agent][data-agent=llm]")).to_be_visible()
            yield tab
        finally:
            await browser.close()
    await llm.aclose()
    assert not errors, f"JavaScript errors on the page: {errors}"


# The fake only: the real model's streaming is shown through NATS and SSE
# (tests/engine/test_token_streaming.py); this shows the client's side.
@pytest.mark.parametrize("model_server", ["fake"], indirect=True)
async def test_the_answer_grows_on_the_page_as_it_is_written(
    streaming_page: Page, model_server: ModelServer
) -> None:
    page = streaming_page
    await page.get_by_label("Your message").fill("explain what a message broker does")
    await page.get_by_label("Your message").press("Enter")
    turn = page.get_by_test_id("turn").first
    answer = turn.get_by_test_id("answer")

    # Mid-answer: the text so far, marked as still being written.
    await expect(answer).to_have_class("text answer streaming")
    await expect(answer).to_contain_text("Word 2." if model_server.fake else " ")
    partial = await answer.text_content() or ""
    row = turn.locator("[data-testid=step-row][data-agent=llm]")
    await expect(row).to_have_attribute("data-status", "running")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "streaming.png"), full_page=True)

    # Then the whole answer, no longer streaming, which the partial text began.
    await expect(turn).to_have_attribute("data-state", "done")
    await expect(answer).to_have_class("text answer")
    final = await answer.text_content() or ""
    assert partial.strip() and len(partial) < len(final)
    assert final.startswith(partial.strip())
    if model_server.fake is not None:
        assert final == ANSWER
