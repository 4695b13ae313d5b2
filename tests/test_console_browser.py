"""The operator console in a real headless Chromium, against the service under hypercorn.

Debian's ``chromium`` (``scripts/test.sh`` installs it when it can) is driven with
Playwright's Python client through ``executable_path`` - no browser is downloaded. The
service runs under a real hypercorn on loopback with the scripted upstream behind it, and
the test walks the console as an operator would: a member's token is refused, an admin
sees the pool, a slow stream started elsewhere shows as a busy slot and a listed stream,
the Cancel button ends it and frees the slot, the playground streams a chat token by
token, an agent turn shows its diff and follow-ups, a grant changes the balance in the
ledger; at 1280x800 and at a phone's width, by keyboard, with no console error. Each step
leaves a screenshot in ``test-artifacts/console/`` (git-ignored; CI keeps it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from quart_app import create_app
from quart_app.auth import mint_token
from quart_app.services import EXTENSION_KEY
from quart_app.services import Services
from tests.blueprints.agent_support import rename_mira_to_ann
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.conftest import chat_body
from tests.conftest import settings_for
from tests.serving import ROOT
from tests.serving import served

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("STORYWRITER_CHROMIUM", "/usr/bin/chromium")
#: CI (.ci/run) sets it: a missing browser is then a failure, not a skip.
REQUIRED = os.environ.get("STORYWRITER_REQUIRE_BROWSER") == "1"
ARTIFACTS = ROOT / "test-artifacts" / "console"
#: The network is closed here: without these Chromium keeps trying to reach Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
ADMIN = "root"
PIECES = [" Once", " upon", " a", " tide,", " the", " salt", " road", " sang."]


def _browser_or_skip() -> Any:
    reason = ""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        reason = "the playwright package is not installed (pip install -e '.[test]')"
    else:
        if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
            reason = f"no Chromium at {CHROMIUM} (scripts/test.sh installs Debian's chromium)"
        else:
            return async_playwright
    if REQUIRED:
        pytest.fail(f"STORYWRITER_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


class Watch:
    """Console errors and uncaught exceptions of the page, step by step."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.allowed: list[str] = []

    def console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            text = f"{message.type}: {message.text}"
            allowed = any(part in message.text for part in self.allowed)
            if not allowed:
                self.problems.append(text)

    def page_error(self, error: Any) -> None:
        self.problems.append(f"uncaught: {error}")


@pytest.fixture(name="service")
async def _service(tmp_path: Path) -> AsyncIterator[tuple[str, Services, ScriptedUpstream]]:
    async with ScriptedUpstream(models=[MODEL]) as upstream:
        settings = settings_for(
            upstream,
            credits={"database_url": f"sqlite:///{tmp_path / 'credits.db'}"},
            console={
                "admin_users": [ADMIN],
                "push_interval_s": 0.25,
                "sample_interval_s": 0.25,
            },
            server={"access_log": False, "log_level": "WARNING"},
            byok={"allow_private_addresses": True},  # the "own" upstream is on loopback too
        )
        app = create_app(settings)
        async with served(app) as base:
            yield base, app.extensions[EXTENSION_KEY], upstream


async def _slow_stream(base: str, user: str) -> list[dict[str, Any]]:
    """A stream from a member elsewhere (not the browser); its frames once it ends."""
    token = mint_token(SECRET.encode(), user)
    payloads: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            base + FRONTEND_CHAT,
            json=chat_body(max_tokens=500),
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 200
        body = await response.text()
    for event in body.split("\n\n"):
        if event.startswith("data: {"):
            payloads.append(json.loads(event[6:]))
    return payloads


async def test_the_console_in_a_real_browser(
    service: tuple[str, Services, ScriptedUpstream],
) -> None:
    async_playwright = _browser_or_skip()
    from playwright.async_api import expect

    base, services, upstream = service
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watch = Watch()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(10_000)
        page.on("console", watch.console)
        page.on("pageerror", watch.page_error)

        async def shot(name: str) -> None:
            await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

        # A member's token opens nothing: the data endpoints answer 403.
        watch.allowed = ["status of 403"]  # the browser logs the refused request itself
        await page.goto(base + "/console")
        await page.fill("#token-input", mint_token(SECRET.encode(), "alice"))
        await page.click("#sign-in-form button[type=submit]")
        await expect(page.locator("#sign-in-error")).to_contain_text("Not an admin")
        await expect(page.locator("#app")).to_be_hidden()
        await shot("00-member-refused")
        watch.allowed = []

        # The admin sees the pool, live.
        await page.fill("#token-input", mint_token(SECRET.encode(), ADMIN))
        await page.click("#sign-in-form button[type=submit]")
        scripted = page.locator('#pool-table tr[data-provider="scripted"]')
        await expect(scripted).to_contain_text("scripted-model")
        await expect(scripted).to_contain_text("0 / 2")
        await expect(scripted.locator(".pill.ok", has_text="up")).to_be_visible()
        await expect(page.locator("#live-state")).to_have_text("live")
        await shot("01-pool")

        # A slow stream elsewhere: its slot goes busy and it is listed; Cancel ends it.
        upstream.script = Script(tokens=400, delay_s=0.05)
        elsewhere = asyncio.create_task(_slow_stream(base, "bob"))
        listed = page.locator("#streams-table tbody tr")
        await expect(listed).to_have_count(1)
        await expect(listed).to_contain_text("bob")
        await expect(scripted).to_contain_text("1 / 2")
        await shot("02-stream-listed")
        await listed.get_by_role("button", name="Cancel the stream of bob on scripted").click()
        frames = await asyncio.wait_for(elsewhere, 10)
        assert frames[-1] == {
            "error": {"message": "an operator cancelled this stream", "type": "cancelled"}
        }
        await expect(listed).to_have_count(0)
        await expect(scripted).to_contain_text("0 / 2")
        await expect(page.locator("#streams-empty")).to_be_visible()
        await shot("03-cancelled")

        # The playground streams a chat: tokens appear one by one, in order, then the stats.
        upstream.script = Script(pieces=PIECES, delay_s=0.08)
        await page.click("#tab-chat")
        await expect(page.locator("#chat-model option")).to_have_count(1)
        await page.evaluate(
            """() => {
              window.seen = [];
              new MutationObserver(() => window.seen.push(
                document.getElementById('chat-output').textContent
              )).observe(document.getElementById('chat-output'), {childList: true});
            }"""
        )
        await page.fill("#chat-message", "Tell me a story in one line.")
        await page.click("#chat-send")
        await expect(page.locator("#stat-completion")).to_have_text(str(len(PIECES)))
        seen: list[str] = await page.evaluate("window.seen")
        final = "".join(PIECES)
        assert await page.locator("#chat-output").text_content() == final
        growing = [text for text in seen if text]
        assert growing == ["".join(PIECES[:n]) for n in range(1, len(PIECES) + 1)]
        for stat in ("#stat-ttft", "#stat-rate", "#stat-prompt", "#stat-credits", "#stat-usd"):
            # An en dash is the page's "no value".
            assert (await page.locator(stat).text_content()) not in ("", "\u2013"), stat
        await expect(page.locator("#stat-provider")).to_have_text("scripted")
        await expect(page.locator("#stat-finish")).to_have_text("stop")
        await shot("04-playground-chat")

        # The same through a BYOK upstream (the operator's own key): free, named byok.
        await page.click("#chat-form summary")
        await page.fill("#byok-key", "sk-operators-own-key")
        await page.fill("#byok-base-url", upstream.base_url)
        await page.click("#chat-models-refresh")
        await expect(page.locator("#chat-model option")).to_have_text([f"{MODEL} (byok)"])
        await page.click("#chat-send")
        await expect(page.locator("#stat-provider")).to_have_text("byok")
        await expect(page.locator("#stat-credits")).to_have_text("0")
        await expect(page.locator("#chat-output")).to_have_text("".join(PIECES))
        assert upstream.chat_requests[-1].headers["authorization"] == "Bearer sk-operators-own-key"
        await page.fill("#byok-key", "")

        # An agent turn over the WebSocket: status steps, prose, the diff, the follow-ups.
        rename_mira_to_ann(upstream, delay_s=0.02)
        await page.click("#tab-agent")
        await page.click("#scenario-sample")
        await expect(page.locator("#scenario-editor")).to_have_value(
            # the sample is loaded, pretty-printed
            json.dumps(
                json.loads((ROOT / "blueprints/console_static/sample-scenario.json").read_text()),
                indent=2,
            )
        )
        await page.fill("#agent-message", "Rename Mira to Ann and describe her")
        await page.keyboard.press("Enter")
        await expect(page.locator("#agent-steps li.done", has_text="completed")).to_be_visible()
        await expect(page.locator("#agent-prose")).to_contain_text("Ann is a cartographer.")
        await expect(page.locator("#agent-diff .del")).to_contain_text('"Mira"')
        await expect(page.locator("#agent-diff .add")).to_contain_text('"Ann"')
        followups = page.locator("#agent-followups button")
        await expect(followups).to_have_text(["One?", "Two?", "Three?"])
        assert '"name": "Ann"' in await page.locator("#scenario-editor").input_value()
        await shot("05-agent")

        # Users and credits: the top users, one account, a grant that the ledger shows.
        assert services.ledger is not None
        before = (await services.ledger.balance("bob")).balance
        await page.click("#tab-users")
        top = page.locator("#top-table tbody tr")
        await expect(top.filter(has_text="bob")).to_have_count(1)
        await top.get_by_role("button", name="bob").click()
        await expect(page.locator("#account-balance")).to_have_text(f"{before:,}")
        await expect(page.locator("#usage-table tbody tr")).to_contain_text(["cancelled"])
        await page.fill("#grant-amount", "5000")
        await page.fill("#grant-note", "console test grant")
        await page.click("#grant-form button[type=submit]")
        await expect(page.locator("#grant-result")).to_contain_text(f"now has {before + 5000:,}")
        await expect(page.locator("#grants-table tbody tr").first).to_contain_text(
            "console test grant"
        )
        assert (await services.ledger.balance("bob")).balance == before + 5000
        [last, *_] = await services.ledger.grants("bob")
        assert (last.amount, last.note) == (5000, "console test grant")
        await shot("06-credits")

        # Keyboard: the tabs move with the arrow keys, and focus follows.
        await page.focus("#tab-users")
        await page.keyboard.press("ArrowLeft")
        await expect(page.locator("#tab-pool")).to_be_focused()
        await expect(page.locator("#panel-pool")).to_be_visible()
        await page.keyboard.press("End")
        await expect(page.locator("#tab-agent")).to_have_attribute("aria-selected", "true")
        await page.keyboard.press("Home")

        # The overview with a stream in flight and the window's TTFT: the README's picture.
        upstream.responder = None
        upstream.script = Script(tokens=400, delay_s=0.05)
        elsewhere = asyncio.create_task(_slow_stream(base, "carol"))
        await expect(listed).to_have_count(1)
        await expect(scripted.locator("td").nth(6)).to_contain_text("ms")
        await shot("07-overview")

        # A phone's width: everything fits the screen (wide tables scroll inside their card).
        await page.set_viewport_size({"width": 390, "height": 844})
        for tab in ("#tab-pool", "#tab-users", "#tab-chat", "#tab-agent"):
            await page.click(tab)
            await shot(f"08-phone-{tab[5:]}")
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{tab} is wider than a phone by {overflow}px"
        await page.click("#tab-pool")
        await listed.get_by_role("button").click()
        await asyncio.wait_for(elsewhere, 10)
        await expect(listed).to_have_count(0)
        await browser.close()
    assert watch.problems == []
