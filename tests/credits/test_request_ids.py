"""A client's ``X-Request-Id`` is for correlation only (issue 14, 6).

The service keys every hold and usage row by its own unique id, so a retry that reuses an
id, concurrent requests sharing one, or another user who guessed it can never make a
request fail or merge its charge with another. The client's id is still echoed and sent
upstream, and kept on the usage row for correlation.
"""

from __future__ import annotations

import asyncio

from quart_app.auth import mint_token
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import FRONTEND_CHAT
from tests.conftest import SECRET
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import stream
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import charges
from tests.credits.test_service_billing import billed_app
from tests.credits.test_service_billing import final_usage
from tests.credits.test_service_billing import ledger_of
from tests.credits.test_service_billing import settled

CLIENT_ID = "client-chosen-id-42"


async def test_reused_request_ids_never_fail_or_merge(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    upstream.script = Script(tokens=6)
    bob = mint_token(SECRET.encode(), "bob")
    async with billed_app(make_app, upstream, ledger_url) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 50_000)  # room for 7 holds of 1,024 tokens at once
        await ledger.grant("bob", 5000)
        headers = auth(token, **{"X-Request-Id": CLIENT_ID})
        first = await stream(app, FRONTEND_CHAT, chat_body(), headers)
        retry = await stream(app, FRONTEND_CHAT, chat_body(), headers)
        concurrent = await asyncio.gather(
            *(stream(app, FRONTEND_CHAT, chat_body(), headers) for _ in range(5))
        )
        other_user = await stream(
            app, FRONTEND_CHAT, chat_body(), auth(bob, **{"X-Request-Id": CLIENT_ID})
        )
        answers = [first, retry, *concurrent, other_user]
        assert [status for status, _, _ in answers] == [200] * 8
        assert all(
            response_headers["X-Request-Id"] == CLIENT_ID for _, response_headers, _ in answers
        )
        # Forwarded upstream as the client sent it, for correlation across both logs.
        assert [r.headers.get("x-request-id") for r in upstream.chat_requests] == [CLIENT_ID] * 8
        await settled(app)
        price = sum(final_usage(writes)["total_tokens"] for _, _, writes in answers[:7])
        assert (await ledger.balance("alice")).balance == 50_000 - price
        assert (await ledger.balance("bob")).balance == 5000 - final_usage(other_user[2])[
            "total_tokens"
        ]
        rows = await ledger.recent_usage("alice", limit=20)
        assert len(rows) == 7 and len({row.request_id for row in rows}) == 7
        assert {row.correlation_id for row in rows} == {CLIENT_ID}
        assert CLIENT_ID not in await charges(ledger_url)  # never a key, only a label
        assert all(amounts == [amounts[0]] for amounts in (await charges(ledger_url)).values())
        await assert_consistent(ledger_url)
