"""A mixed soak: does the service keep its memory and its slots over thousands of requests?

Why: targets.md F asks for an idle RSS of at most 120 MiB and at most 5 % growth between
the end of a warm-up and the end of a 10-minute soak. A leak per request (a task, a
connection, a buffer, a slot) shows up as growth under a steady mix, so the mix covers every
ending the service has: complete streams on both endpoints, non-streamed answers, clients
that disconnect mid-stream, upstream HTTP errors before the first byte, upstream resets
mid-stream, and the cheap GETs. Each answer is checked against what that request must get;
anything else is an unexpected outcome and fails the soak as surely as a leak.

The service runs as in the benchmarks (``bench.stack``: one hypercorn uvloop worker pinned
to core 1, the scripted upstream and this process on core 0) with the credit ledger on
(SQLite in a temporary directory) and the access log on, because that is the default
deployment. RSS is read from
``/proc/<worker pid>/status`` with the load paused: after the warm-up (the idle RSS) and at
the end; the peak while loaded is reported too.

Exit status: 0 when idle RSS <= 120 MiB, growth <= 5 %, no unexpected outcome and no slot
left in use; 1 when a memory target is missed; 2 on an unexpected outcome or a leaked slot.
CI runs ``python -m bench.soak --duration 30`` (tests/test_soak_smoke.py); the real check is
``python -m bench.soak`` (600 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

import aiohttp
import orjson

from bench.catalog import FAIL
from bench.catalog import FAST
from bench.catalog import RESET
from bench.catalog import SLOW
from bench.loadgen import chat_body
from bench.stack import Stack
from bench.stack import StackOptions
from bench.stack import rss_kib

__all__ = ["SoakResult", "main", "run_soak"]

MIB: Final = 1024
IDLE_RSS_LIMIT_KIB: Final = 120 * MIB
GROWTH_LIMIT: Final = 0.05
_API: Final = "/api/proxy/llm/v1"
_DONE: Final = b"data: [DONE]\n\n"
_CONTENT: Final = b'"content":"'
# One cycle of the mix, run in order by every worker (offset by its index): 20 requests,
# 8 streamed on /frontend, 3 streamed on /chat/completions, 4 non-streamed, 1 disconnect,
# 1 upstream error, 1 reset mid-stream, a /models and a /status.
_CYCLE: Final = (
    "stream",
    "json",
    "stream",
    "robust",
    "stream",
    "disconnect",
    "json",
    "stream",
    "error",
    "robust",
    "stream",
    "json",
    "reset",
    "stream",
    "models",
    "robust",
    "stream",
    "json",
    "status",
    "stream",
)


@dataclass(slots=True)
class SoakResult:
    """What the soak measured (RSS in KiB)."""

    duration_s: float
    warmup_s: float
    concurrency: int
    idle_rss_kib: int = 0
    final_rss_kib: int = 0
    peak_rss_kib: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    slots_in_use_at_end: int = -1
    credits: bool = True
    service_log_tail: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float:
        """Relative RSS growth from the idle RSS to the final one."""
        if not self.idle_rss_kib:
            return 0.0
        return (self.final_rss_kib - self.idle_rss_kib) / self.idle_rss_kib

    @property
    def memory_ok(self) -> bool:
        """Targets F: idle RSS <= 120 MiB and growth <= 5 %."""
        return self.idle_rss_kib <= IDLE_RSS_LIMIT_KIB and self.growth <= GROWTH_LIMIT

    @property
    def functional_ok(self) -> bool:
        """Every answer as expected and every slot returned."""
        return not self.unexpected and self.slots_in_use_at_end == 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict with the derived figures."""
        data = asdict(self)
        data.update(growth=self.growth, memory_ok=self.memory_ok, functional_ok=self.functional_ok)
        return data


class _Unexpected(Exception):
    """An answer that is not what this kind of request must get."""


class _Mix:
    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        self.session = session
        root = stack.service_root + _API
        self.frontend = root + "/frontend/chat/completions"
        self.chat = root + "/chat/completions"
        self.models = root + "/models"
        self.status = root + "/status"
        auth = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}
        self.headers = auth
        self.json_headers = {**auth, "Accept": "application/json"}
        self.bodies = {
            "stream": chat_body(FAST, 64, stream=True),
            "json": chat_body(FAST, 64, stream=False),
            "disconnect": chat_body(SLOW, 32, stream=True),
            "error": chat_body(FAIL, 8, stream=True),
            "reset": chat_body(RESET, 64, stream=True),
        }
        self.counts: Counter[str] = Counter()
        self.unexpected: Counter[str] = Counter()
        self.examples: list[str] = []
        self.running = True
        self.paused = asyncio.Event()
        self.paused.set()
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def worker(self, index: int) -> None:
        position = index
        while self.running:
            await self.paused.wait()
            if not self.running:
                return
            kind = _CYCLE[position % len(_CYCLE)]
            position += 1
            self.in_flight += 1
            self.idle.clear()
            try:
                await getattr(self, "_" + kind)()
                self.counts[kind] += 1
            except (_Unexpected, aiohttp.ClientError, OSError, TimeoutError) as error:
                self.unexpected[kind] += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{kind}: {type(error).__name__}: {error}"[:300])
            finally:
                self.in_flight -= 1
                if not self.in_flight:
                    self.idle.set()

    async def _read_stream(self, url: str, body: bytes) -> bytes:
        async with self.session.post(url, data=body, headers=self.headers) as response:
            if response.status != 200:
                raise _Unexpected(f"status {response.status}")
            return await response.read()

    async def _stream(self) -> None:
        data = await self._read_stream(self.frontend, self.bodies["stream"])
        if not data.endswith(_DONE) or data.count(_CONTENT) != 64:
            raise _Unexpected("incomplete stream")

    async def _robust(self) -> None:
        data = await self._read_stream(self.chat, self.bodies["stream"])
        if not data.endswith(_DONE) or data.count(_CONTENT) != 64:
            raise _Unexpected("incomplete stream")

    async def _json(self) -> None:
        async with self.session.post(
            self.chat, data=self.bodies["json"], headers=self.json_headers
        ) as response:
            raw = await response.read()
            if response.status != 200:
                raise _Unexpected(f"status {response.status}")
        answer = orjson.loads(raw)
        if answer.get("usage", {}).get("completion_tokens") != 64:
            raise _Unexpected("wrong usage")

    async def _disconnect(self) -> None:
        async with self.session.post(
            self.frontend, data=self.bodies["disconnect"], headers=self.headers
        ) as response:
            if response.status != 200:
                raise _Unexpected(f"status {response.status}")
            first = await response.content.readany()
            if _CONTENT not in first:
                raise _Unexpected("no first chunk")
            response.close()  # hang up mid-stream: the service must cancel the upstream call

    async def _error(self) -> None:
        async with self.session.post(
            self.frontend, data=self.bodies["error"], headers=self.headers
        ) as response:
            raw = await response.read()
            if response.status != 502:
                raise _Unexpected(f"status {response.status}, wanted 502")
        if "code" not in orjson.loads(raw):
            raise _Unexpected("error body without a code")

    async def _reset(self) -> None:
        data = await self._read_stream(self.frontend, self.bodies["reset"])
        if data.endswith(_DONE) or b'data: {"error"' not in data:
            raise _Unexpected("a reset stream must end with one error frame, not [DONE]")

    async def _models(self) -> None:
        async with self.session.get(self.models, headers=self.headers) as response:
            await response.read()
            if response.status != 200:
                raise _Unexpected(f"status {response.status}")

    async def _status(self) -> None:
        async with self.session.get(self.status) as response:
            await response.read()
            if response.status != 200:
                raise _Unexpected(f"status {response.status}")

    async def pause(self) -> None:
        """Stop starting requests and wait for those in flight."""
        self.paused.clear()
        await self.idle.wait()

    async def slots_in_use(self) -> int:
        async with self.session.get(self.status) as response:
            status = await response.json()
        return sum(int(p.get("slots_in_use", 0)) for p in status.get("providers", []))


async def _settle(pid: int) -> int:
    """RSS once the service has finished what the paused load left behind."""
    await asyncio.sleep(1.5)  # disconnect clean-ups and background settlements
    return rss_kib(pid)


async def _soak(stack: Stack, result: SoakResult, log: bool) -> None:
    connector = aiohttp.TCPConnector(limit=result.concurrency * 2)
    timeout = aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        mix = _Mix(stack, session)
        # One request first: it opens the user's credit account, so the concurrent ones that
        # follow never race to open it.
        await mix._stream()
        workers = [asyncio.create_task(mix.worker(i)) for i in range(result.concurrency)]
        pid = stack.service_pid

        async def sample_until(deadline: float) -> None:
            while time.monotonic() < deadline:
                await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
                result.peak_rss_kib = max(result.peak_rss_kib, rss_kib(pid))

        try:
            await sample_until(time.monotonic() + result.warmup_s)
            await mix.pause()
            result.idle_rss_kib = await _settle(pid)
            if log:
                done = sum(mix.counts.values())
                print(f"warm-up: {done} requests, idle RSS {result.idle_rss_kib / MIB:.1f} MiB")
            mix.paused.set()
            start = time.monotonic()
            next_report = start + 60
            while (left := start + result.duration_s - time.monotonic()) > 0:
                await sample_until(time.monotonic() + min(left, 5.0))
                if log and time.monotonic() >= next_report:
                    next_report += 60
                    print(
                        f"  {time.monotonic() - start:5.0f} s: {sum(mix.counts.values())} "
                        f"requests, RSS {rss_kib(pid) / MIB:.1f} MiB",
                        flush=True,
                    )
            await mix.pause()
            result.final_rss_kib = await _settle(pid)
            result.slots_in_use_at_end = await mix.slots_in_use()
        finally:
            mix.running = False
            mix.paused.set()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        result.requests = dict(mix.counts)
        result.unexpected = dict(mix.unexpected)
        result.examples = mix.examples


def run_soak(
    duration_s: float,
    *,
    warmup_s: float = 15.0,
    concurrency: int = 8,
    credits: bool = True,
    access_log: bool = True,
    workdir: Path | None = None,
    log: bool = True,
) -> SoakResult:
    """Start a fresh stack, warm it up, soak it, and return what was measured."""
    result = SoakResult(
        duration_s=duration_s, warmup_s=warmup_s, concurrency=concurrency, credits=credits
    )
    pinned = (os.cpu_count() or 1) >= 2
    with tempfile.TemporaryDirectory(prefix="storywriter-soak-") as tmp:
        options = StackOptions(
            workdir=workdir or Path(tmp),
            service_core="1" if pinned else "",
            upstream_core="0" if pinned else "",
            credits=credits,
            access_log=access_log,
        )
        with Stack(options) as stack:
            if pinned:
                os.sched_setaffinity(0, {0})
            try:
                import uvloop

                uvloop.run(_soak(stack, result, log))
            finally:
                if pinned:
                    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        if not (result.functional_ok and result.memory_ok):
            service_log = options.workdir / "service.log"
            lines = service_log.read_text(errors="replace").splitlines()
            result.service_log_tail = lines[-30:]
    return result


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description="Mixed soak; checks RSS growth and slots."
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds after warm-up")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of warm-up")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-credits", action="store_true", help="run without the ledger")
    parser.add_argument("--json", type=Path, help="also write the result here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; print the figures; return the exit status (0 = targets met)."""
    args = _parse_args(argv)
    result = run_soak(
        args.duration,
        warmup_s=args.warmup,
        concurrency=args.concurrency,
        credits=not args.no_credits,
    )
    total = sum(result.requests.values())
    print(
        f"soak: {total} requests in {result.duration_s:g} s after {result.warmup_s:g} s of "
        f"warm-up, concurrency {result.concurrency}, credits {'on' if result.credits else 'off'}"
    )
    print(f"  by kind: {json.dumps(result.requests, sort_keys=True)}")
    print(
        f"  idle RSS after warm-up {result.idle_rss_kib / MIB:.1f} MiB (target <= 120), "
        f"at the end {result.final_rss_kib / MIB:.1f} MiB, growth {result.growth * 100:+.2f} % "
        f"(target <= 5 %), peak under load {result.peak_rss_kib / MIB:.1f} MiB"
    )
    print(f"  slots in use at the end: {result.slots_in_use_at_end}")
    if result.unexpected:
        print(f"  UNEXPECTED outcomes: {json.dumps(result.unexpected, sort_keys=True)}")
        for example in result.examples:
            print(f"    {example}")
    if result.service_log_tail:
        print("  the service's log ends with:")
        for line in result.service_log_tail:
            print(f"    {line}")
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if not result.functional_ok:
        print("soak FAILED: unexpected outcomes or slots left in use")
        return 2
    if not result.memory_ok:
        print("soak FAILED: memory target missed")
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
