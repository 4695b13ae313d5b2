"""An upstream reporting negative or absurd usage cannot break a stream (issue 14.3).

``providers.usage`` replaces implausible counts by the service's own; this drives it over
HTTP, as the issue found it: the stream ends normally with ``[DONE]``, the usage it
reports is the service's count, and the hold is settled for it (on main before the fix,
``-50`` raised ``ValueError`` in pricing, cut the chunked body and left the hold pending).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from credits.pricing import credits_for
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import stream
from tests.credits.helpers import assert_consistent
from tests.credits.test_service_billing import MULTIPLIER
from tests.credits.test_service_billing import billed_app
from tests.credits.test_service_billing import final_usage
from tests.credits.test_service_billing import ledger_of
from tests.credits.test_service_billing import settled

IMPLAUSIBLE: list[dict[str, Any]] = [
    {"prompt_tokens": 5, "completion_tokens": -50, "total_tokens": -45},
    {"prompt_tokens": 5, "completion_tokens": 10**15, "total_tokens": 10**15 + 5},
    {"prompt_tokens": -1, "completion_tokens": "many", "total_tokens": None},
]


@pytest.mark.parametrize("reported", IMPLAUSIBLE)
async def test_implausible_usage_is_replaced_by_our_count(
    make_app: AppFactory,
    upstream: ScriptedUpstream,
    ledger_url: str,
    token: str,
    reported: dict[str, Any],
) -> None:
    upstream.script = Script(tokens=6, reported_usage=reported)
    async with billed_app(make_app, upstream, ledger_url) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 5000)
        status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
        assert status == 200
        payloads = frames(writes)
        assert payloads[-1] == b"[DONE]"
        usage = final_usage(writes)
        assert usage["completion_tokens"] == 6, "our own count of the 6 chunks"
        assert 0 < usage["prompt_tokens"] < 100
        json_answer = await app.test_client().post(
            CHAT, json=chat_body(stream=False), headers=auth(token, Accept="application/json")
        )
        assert json_answer.status_code == 200
        answer = await json_answer.get_json()
        assert answer["usage"]["completion_tokens"] >= 1
        await settled(app)
        rows = await ledger.recent_usage("alice")
        assert len(rows) == 2 and all(row.status == "completed" for row in rows)
        price = credits_for(usage["prompt_tokens"], 6, MULTIPLIER)
        balance = await ledger.balance("alice")
        assert balance.reserved == 0, "every hold settled"
        assert balance.balance == 5000 - price - answer["cost"]["credits"]
        await assert_consistent(ledger_url)


async def test_the_scripted_upstream_reports_the_usage_it_is_given(
    upstream: ScriptedUpstream,
) -> None:
    upstream.script = Script(tokens=2, reported_usage={"completion_tokens": -50})
    body = {**chat_body(stream=True), "stream_options": {"include_usage": True}}
    url = f"{upstream.base_url}/chat/completions"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        text = await response.read()
    usage_frames = [orjson.loads(line[6:]) for line in text.split(b"\n\n") if b'"usage"' in line]
    assert [frame["usage"] for frame in usage_frames] == [{"completion_tokens": -50}]
