"""The client side of ``bench.loadtest_workers``: options, outcomes and one checked request.

Every request the load test sends goes through :func:`chat` (or a plain GET), which turns
whatever happens into exactly one :class:`Outcome`: a complete stream (right number of
content chunks and ``[DONE]``), a clean refusal (409 ``AI_BUSY``, 429 ``RATE_LIMITED``), a
cut stream, another error, or a hang (no answer within the timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import aiohttp
import orjson

from bench.workers_cluster import SECRET
from bench.workers_cluster import STATUS
from quart_app.auth import mint_token

MODEL = "scripted-model"
CHAT = "/api/proxy/llm/v1/frontend/chat/completions"
MODELS = "/api/proxy/llm/v1/models"
LONG = "long"


@dataclass
class Options:
    short: bool
    redis_url: str
    capacity: int = 6
    rpm: int = 20
    concurrent: int = 3
    lease_ttl_s: float = 3.0
    capacity_s: float = 6.0
    tokens: int = 16
    delay_s: float = 0.02
    timeout_s: float = 20.0
    budget_s: float = 90.0

    @classmethod
    def parse(cls, argv: list[str] | None) -> Options:
        parser = argparse.ArgumentParser(prog="python -m bench.loadtest_workers")
        parser.add_argument("--short", action="store_true", help="the CI version (< 60 s)")
        parser.add_argument(
            "--redis-url",
            default=os.environ.get("STORYWRITER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        )
        args = parser.parse_args(argv)
        if args.short:
            return cls(short=True, redis_url=args.redis_url)
        return cls(
            short=False,
            redis_url=args.redis_url,
            capacity=8,
            rpm=60,
            concurrent=4,
            lease_ttl_s=6.0,
            capacity_s=30.0,
            budget_s=300.0,
        )


@dataclass
class Report:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append((name, passed, detail))
        print(f"  [{'PASS' if passed else 'FAIL'}] {name}: {detail}", flush=True)

    @property
    def passed(self) -> bool:
        return all(passed for _, passed, _ in self.checks)


@dataclass
class Outcome:
    kind: str  # ok | busy | limited | cut | error | hang
    detail: str = ""


def headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET.encode(), user)}"}


async def chat(
    session: aiohttp.ClientSession,
    base: str,
    user: str,
    expected: int,
    opts: Options,
    text: str = "Hi",
) -> Outcome:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    try:
        async with asyncio.timeout(opts.timeout_s):
            async with session.post(base + CHAT, json=body, headers=headers(user)) as response:
                if response.status != 200:
                    return _refusal(response.status, await response.read())
                return await _read_stream(response, expected)
    except TimeoutError:
        return Outcome("hang", f"{user}: no answer within {opts.timeout_s} s")
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as error:
        return Outcome("cut", type(error).__name__)
    except aiohttp.ClientError as error:
        return Outcome("error", f"{type(error).__name__}: {error}")


def _refusal(status: int, raw: bytes) -> Outcome:
    try:
        code = orjson.loads(raw).get("code")
    except orjson.JSONDecodeError:
        code = None
    if status == 409 and code == "AI_BUSY":
        return Outcome("busy")
    if status == 429 and code == "RATE_LIMITED":
        return Outcome("limited")
    return Outcome("error", f"{status} {raw[:200]!r}")


async def _read_stream(response: aiohttp.ClientResponse, expected: int) -> Outcome:
    content, done = 0, False
    async for line in response.content:
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].strip()
        if payload == b"[DONE]":
            done = True
            continue
        chunk = orjson.loads(payload)
        if "error" in chunk:
            return Outcome("error", f"error frame {chunk['error']}")
        for choice in chunk.get("choices", []):
            content += bool(choice.get("delta", {}).get("content"))
    if done and content == expected:
        return Outcome("ok")
    return Outcome("cut", f"{content}/{expected} chunks, [DONE]={done}")


async def in_use(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(base + STATUS) as response:
        body = await response.json()
    return int(body["providers"][0]["slots_in_use"])


async def until_in_use(
    session: aiohttp.ClientSession, base: str, slots: int, within_s: float
) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and await in_use(session, base) < slots:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])
