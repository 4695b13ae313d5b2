"""Load test of the shared coordination: hypercorn with 4 workers, Redis, a scripted upstream.

Shows, and exits non-zero unless it holds, that with ``[coordination] redis_url``:

1. a per-user limit holds across workers: requests per minute within one request of the
   quota (plus what leaks during the burst), concurrent requests never above the quota;
2. the pool's capacity is never exceeded: the upstream itself counts its concurrent streams;
3. a worker SIGKILLed mid-stream gives its slots back within the lease TTL, and no request
   elsewhere fails: a second instance (another "host") keeps answering throughout, and then
   serves the whole capacity again;
4. no request is lost or hangs: every one ends in a complete stream, 409, 429, or (only on
   the killed worker) a cut stream, within its timeout.

The upstream runs in this process (a ``ScriptedUpstream`` subclass that records its peak of
concurrent streams), so that (2) is measured where it matters, not from our own counters.
Loopback only, bounded in time (``--short`` < 60 s on 2 cores). Usage::

    python -m bench.loadtest_workers --short
    python -m bench.loadtest_workers --redis-url redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from redis.asyncio import Redis

from bench.loadtest_client import CHAT
from bench.loadtest_client import LONG
from bench.loadtest_client import MODEL
from bench.loadtest_client import MODELS
from bench.loadtest_client import Options
from bench.loadtest_client import Outcome
from bench.loadtest_client import Report
from bench.loadtest_client import chat
from bench.loadtest_client import cpu_ticks
from bench.loadtest_client import headers
from bench.loadtest_client import in_use
from bench.loadtest_client import until_in_use
from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from bench.workers_cluster import Instance
from bench.workers_cluster import connections_served
from bench.workers_cluster import write_config


class PeakUpstream(ScriptedUpstream):
    """The scripted upstream, remembering the most streams it ever served at once."""

    peak_streams = 0
    _active = 0

    @property
    def active_streams(self) -> int:
        return self._active

    @active_streams.setter
    def active_streams(self, value: int) -> None:
        self._active = value
        self.peak_streams = max(self.peak_streams, value)


async def phase_limits(
    session: aiohttp.ClientSession, a: Instance, opts: Options, report: Report
) -> None:
    print(f"1. per-user limits across {a.workers} workers", flush=True)
    before = {pid: cpu_ticks(pid) for pid in a.worker_pids()}
    burst = 3 * opts.rpm
    started = time.monotonic()
    user = f"rpm-{uuid.uuid4().hex[:6]}"

    statuses: Counter[int | str] = Counter()

    request = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": False}
    answer_json = {**headers(user), "Accept": "application/json"}

    async def lane(count: int) -> None:
        # Lanes well under the concurrency quota: only the per-minute quota may refuse (a
        # request's in-flight entry leaves Redis in the background just after its answer,
        # which on a loaded machine can lag behind the lane's next request).
        # Completions: /models is a cheap read that the request quota does not count.
        for _ in range(count):
            async with session.post(a.base + CHAT, json=request, headers=answer_json) as response:
                body = await response.read()
                statuses[response.status] += 1
                if response.status == 429:
                    statuses[orjson.loads(body)["detail"]["limit"]] += 1

    lanes = max(1, opts.concurrent - 2)
    await asyncio.gather(*(lane(burst // lanes) for _ in range(lanes)))
    burst = burst // lanes * lanes
    elapsed = time.monotonic() - started
    busy_workers = sum(1 for pid, t in before.items() if cpu_ticks(pid) > t)
    leak = opts.rpm * elapsed / 60
    allowed = statuses[200]
    report.check(
        "requests per minute hold across workers",
        opts.rpm - 1 <= allowed <= opts.rpm + 1 + leak
        and statuses[200] + statuses["requests"] == burst,
        f"{burst} requests in {elapsed:.2f} s over {busy_workers} busy workers: {allowed} x 200, "
        f"{statuses[429]} x 429 (quota {opts.rpm}, +{leak:.2f} leaked; per-worker limits "
        f"would let up to {opts.rpm * a.workers} through)",
    )
    user = f"conc-{uuid.uuid4().hex[:6]}"
    asked = 3 * opts.concurrent
    outcomes = await asyncio.gather(
        *(chat(session, a.base, user, 40, opts, LONG) for _ in range(asked))
    )
    kinds = Counter(o.kind for o in outcomes)
    report.check(
        "concurrent requests hold across workers",
        1 <= kinds["ok"] <= opts.concurrent and kinds["ok"] + kinds["limited"] == asked,
        f"{asked} simultaneous streams of one user: {dict(kinds)} (quota {opts.concurrent})",
    )


async def phase_capacity(
    session: aiohttp.ClientSession,
    a: Instance,
    b: Instance,
    upstream: PeakUpstream,
    opts: Options,
    report: Report,
) -> None:
    print(f"2. pool capacity {opts.capacity} under {4 * opts.capacity} clients", flush=True)
    upstream.peak_streams = upstream.active_streams
    deadline = time.monotonic() + opts.capacity_s
    outcomes: list[Outcome] = []
    seen: list[int] = []

    async def client() -> None:
        while time.monotonic() < deadline:
            outcomes.append(
                await chat(session, a.base, f"cap-{uuid.uuid4().hex}", opts.tokens, opts)
            )

    async def sampler() -> None:
        while time.monotonic() < deadline:
            seen.append(await in_use(session, b.base))
            await asyncio.sleep(0.05)

    await asyncio.gather(sampler(), *(client() for _ in range(4 * opts.capacity)))
    kinds = Counter(o.kind for o in outcomes)
    bad = [o.detail for o in outcomes if o.kind not in ("ok", "busy")]
    report.check(
        "the upstream never serves more than the capacity",
        upstream.peak_streams <= opts.capacity,
        f"peak {upstream.peak_streams} concurrent streams at the upstream; "
        f"/status peak {max(seen, default=0)} of {opts.capacity} over {len(seen)} samples",
    )
    report.check(
        "every request completes or is refused cleanly",
        not bad and kinds["ok"] > 0 and kinds["busy"] > 0,
        f"{len(outcomes)} requests: {dict(kinds)}" + (f"; first problems {bad[:3]}" if bad else ""),
    )


async def phase_kill(
    session: aiohttp.ClientSession, a: Instance, b: Instance, opts: Options, report: Report
) -> None:
    print("3. SIGKILL a worker mid-stream", flush=True)
    streams = [
        asyncio.create_task(
            chat(session, a.base, f"kill-{i}-{uuid.uuid4().hex[:6]}", 40, opts, LONG)
        )
        for i in range(opts.capacity)
    ]
    await until_in_use(session, b.base, opts.capacity, within_s=5.0)
    served = {pid: connections_served(pid, a.port) for pid in a.worker_pids()}
    victim = max(served, key=lambda pid: served[pid])
    a.kill_worker(victim)
    killed_at = time.monotonic()
    print(
        f"   killed worker {victim}, which served {served[victim]} of the {opts.capacity} "
        f"streams in flight (per worker: {sorted(served.values(), reverse=True)})",
        flush=True,
    )

    stop_bystanders = asyncio.Event()
    bystanders: list[int] = []

    async def bystander() -> None:  # another host's users, during all of it
        while not stop_bystanders.is_set():
            async with session.get(b.base + MODELS, headers=headers(f"by-{uuid.uuid4().hex}")) as r:
                bystanders.append(r.status)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(bystander())
    outcomes = await asyncio.gather(*streams)
    await asyncio.sleep(0.3)  # the survivors' releases run just after their last frame
    kinds = Counter(o.kind for o in outcomes)
    cut = kinds["cut"]
    samples: list[tuple[float, int]] = []
    recovered_at: float | None = None
    while time.monotonic() < killed_at + opts.lease_ttl_s + 3:
        value = await in_use(session, b.base)
        samples.append((time.monotonic() - killed_at, value))
        if value == 0:
            recovered_at = time.monotonic() - killed_at
            break
        await asyncio.sleep(0.05)
    leaked = max((v for t, v in samples), default=0)
    report.check(
        "only the killed worker's streams were cut",
        kinds["ok"] + cut == opts.capacity and cut == served[victim] >= 1 and leaked <= cut,
        f"{dict(kinds)}; slots still held by the dead worker after the others ended: "
        f"{leaked} (= its cut streams)",
    )
    report.check(
        "the dead worker's slots come back within the lease TTL",
        recovered_at is not None and recovered_at <= opts.lease_ttl_s + 1.0,
        f"slots_in_use reached 0 {recovered_at if recovered_at is None else round(recovered_at, 2)}"
        f" s after the kill (lease TTL {opts.lease_ttl_s} s)",
    )
    fresh = await asyncio.gather(
        *(
            chat(session, b.base, f"after-{i}-{uuid.uuid4().hex[:6]}", 40, opts, LONG)
            for i in range(opts.capacity)
        )
    )
    stop_bystanders.set()
    await watcher
    report.check(
        "the whole capacity serves again, and nothing else failed",
        all(o.kind == "ok" for o in fresh) and set(bystanders) == {200},
        f"{opts.capacity} new streams on the other instance: "
        f"{dict(Counter(o.kind for o in fresh))}; "
        f"{len(bystanders)} requests during the kill: {dict(Counter(bystanders))}; "
        f"hypercorn stopped the killed worker's siblings gracefully: {a.exited()}",
    )


def responder(opts: Options) -> Any:
    long = Script(tokens=40, delay_s=0.05)

    def choose(body: dict[str, Any]) -> Script | None:
        messages = body.get("messages") or [{}]
        return long if messages[0].get("content") == LONG else None

    return choose


async def run(opts: Options) -> int:
    prefix = f"loadtest-{uuid.uuid4().hex[:10]}"
    report = Report()
    script = Script(tokens=opts.tokens, delay_s=opts.delay_s)
    started = time.monotonic()
    upstream = PeakUpstream(
        models=[MODEL], script=script, responder=responder(opts), record_requests=False
    )
    redis = Redis.from_url(opts.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        await redis.ping()
    except Exception as error:  # any failure means: no Redis to test against
        print(f"Redis at {opts.redis_url} is unreachable: {error!r}", file=sys.stderr)
        await redis.aclose()
        return 2
    with tempfile.TemporaryDirectory(prefix="sw-loadtest-") as tmp:
        async with upstream:
            config = write_config(
                Path(tmp) / "service.toml",
                upstream_base=upstream.base_url,
                model=MODEL,
                capacity=opts.capacity,
                redis_url=opts.redis_url,
                prefix=prefix,
                lease_ttl_s=opts.lease_ttl_s,
                limits={
                    "requests_per_minute": opts.rpm,
                    "concurrent_requests": opts.concurrent,
                    "tokens_per_minute": 0,
                },
            )
            a = Instance("A", 4, config, Path(tmp) / "a.log")
            b = Instance("B", 1, config, Path(tmp) / "b.log")
            try:
                a.start()
                b.start()
                await asyncio.gather(
                    asyncio.to_thread(a.wait_ready), asyncio.to_thread(b.wait_ready)
                )
                print(
                    f"instance A: hypercorn --workers 4 (pids {a.worker_pids()}), instance B: 1 "
                    f"worker; Redis {opts.redis_url}; ready in {time.monotonic() - started:.1f} s",
                    flush=True,
                )
                connector = aiohttp.TCPConnector(force_close=True, limit=0)
                async with (
                    aiohttp.ClientSession(connector=connector) as session,
                    asyncio.timeout(opts.budget_s),
                ):
                    await phase_limits(session, a, opts, report)
                    await phase_capacity(session, a, b, upstream, opts, report)
                    await phase_kill(session, a, b, opts, report)
            except TimeoutError:
                report.check("bounded in time", False, f"not done within {opts.budget_s} s")
            finally:
                await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
                if not report.passed:
                    print(f"--- instance A log ---\n{a.log_tail()}")
                    print(f"--- instance B log ---\n{b.log_tail()}")
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    verdict = "PASSED" if report.passed else "FAILED"
    passed = sum(p for _, p, _ in report.checks)
    took = time.monotonic() - started
    print(f"{verdict}: {passed}/{len(report.checks)} checks in {took:.1f} s", flush=True)
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a CI timeout) unwinds normally, so the hypercorn instances are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return asyncio.run(run(Options.parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
