"""A closed-loop load generator on aiohttp's client that checks every answer it counts.

Why aiohttp and a closed loop: targets.md compares the service with the direct upstream in
the same run, so the load generator must never be the bottleneck; on one core aiohttp's
client did ~7,400 requests/s where httpx's did ~340. Each of N workers sends a request,
reads the whole answer, checks it and sends the next one, for a fixed time or a fixed number
of requests.

What is checked (a failed check is a failure, never a sample):

- non-streamed: status 200, a JSON ``chat.completion`` with non-empty content and
  ``usage.completion_tokens`` equal to the expected token count;
- streamed: status 200, ``text/event-stream``, exactly the expected number of content chunks
  (non-empty ``"content"`` strings, counted with ``bytes.count`` so the check costs almost
  nothing) and a final ``data: [DONE]``;
- agent (``--agent``): every frame parses, a streamed ``chat`` frame carries the upstream's
  stamped first token (``bench.catalog.STAMP``) and the last frame is ``completed``.

What is recorded per request: latency (send to the end of the body), TTFT (send to the first
read holding a content chunk), for the agent the gap between the upstream writing its first
prose token and this process reading it, plus the reads per stream and the reads that did
not end on a frame boundary (a hint, as TCP may split a write too).

Use it from the runner (``bench.run``) or alone::

    python -m bench.loadgen --url http://127.0.0.1:9100/v1/chat/completions --stream \\
        --concurrency 32 --duration 5 --tokens 64 --model bench-64
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import aiohttp
import orjson

from bench.catalog import STAMP

__all__ = ["LoadResult", "LoadSpec", "chat_body", "main", "run_load"]

_DONE = b"data: [DONE]\n\n"
_CONTENT = b'"content":"'
_EMPTY_CONTENT = b'"content":""'


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One load run.

    Attributes:
        url: Where to POST.
        body: The request body (JSON bytes), the same for every request.
        headers: Extra request headers (``Authorization``, ``Accept``).
        mode: ``json`` (one chat.completion), ``stream`` (SSE chunks) or ``agent``.
        tokens: Content chunks (or completion tokens) every answer must have.
        concurrency: Workers, each with one request in flight.
        duration_s: Run this long (after the ramp); ``requests`` may stop it earlier.
        requests: Stop after this many requests in total (None: only the duration).
        warmup_s: Requests started before this many seconds are not samples.
        ramp_s: Worker ``i`` starts ``i * ramp_s / concurrency`` seconds late.
    """

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "stream"
    tokens: int = 64
    concurrency: int = 1
    duration_s: float = 5.0
    requests: int | None = None
    warmup_s: float = 0.0
    ramp_s: float = 0.0


@dataclass(slots=True)
class LoadResult:
    """What a run measured; times in milliseconds, rates per second of the window.

    ``window_s`` runs from the end of the warm-up to the moment the last worker stopped
    starting requests; ``completed`` counts the good answers that ended inside it.
    """

    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latency_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    agent_gap_ms: list[float] = field(default_factory=list)
    window_s: float = 0.0
    completed: int = 0
    reads: int = 0
    split_reads: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    max_rss_kib: int = 0

    @property
    def rps(self) -> float:
        """Good answers per second of the measurement window."""
        return self.completed / self.window_s if self.window_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict, with the rate."""
        data = asdict(self)
        data["rps"] = self.rps
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadResult:
        """The inverse of :meth:`to_json`."""
        data = dict(data)
        data.pop("rps", None)
        return cls(**data)


def chat_body(model: str, tokens: int, *, stream: bool, include_usage: bool = False) -> bytes:
    """The chat request every scenario sends (``max_tokens`` = the expected tokens)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Write one sentence about a fox."}],
        "max_tokens": tokens,
        "stream": stream,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


class _Failure(Exception):
    """An answer that does not count: a status, a short stream, a missing [DONE]."""


class _Runner:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.result = LoadResult()
        self.failures: Counter[str] = Counter()
        self.started = 0
        self.t0 = 0.0
        self.warm_end = 0.0
        self.deadline = 0.0
        self.stopped_at = 0.0

    def _take(self) -> bool:
        limit = self.spec.requests
        if limit is not None and self.started >= limit:
            return False
        if time.perf_counter() >= self.deadline:
            return False
        self.started += 1
        return True

    async def worker(self, session: aiohttp.ClientSession, index: int) -> None:
        spec = self.spec
        if spec.ramp_s > 0:
            await asyncio.sleep(index * spec.ramp_s / spec.concurrency)
        one = {"json": self._json, "stream": self._stream, "agent": self._agent}[spec.mode]
        result = self.result
        while self._take():
            start = time.perf_counter()
            try:
                ttft, gap = await one(session, start)
            except _Failure as failure:
                self.failures[str(failure)] += 1
                continue
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                self.failures[type(error).__name__] += 1
                continue
            end = time.perf_counter()
            if self.warm_end <= end <= self.deadline:
                result.completed += 1
            result.ok += 1
            if start >= self.warm_end:
                result.latency_ms.append((end - start) * 1000.0)
                if ttft is not None:
                    result.ttft_ms.append((ttft - start) * 1000.0)
                if gap is not None:
                    result.agent_gap_ms.append(gap)
        self.stopped_at = max(self.stopped_at, min(time.perf_counter(), self.deadline))

    async def _json(
        self, session: aiohttp.ClientSession, start: float
    ) -> tuple[float | None, float | None]:
        spec = self.spec
        async with session.post(spec.url, data=spec.body, headers=spec.headers) as response:
            raw = await response.read()
            if response.status != 200:
                raise _Failure(f"status {response.status}")
        self.result.reads += 1
        try:
            answer = orjson.loads(raw)
            content = answer["choices"][0]["message"]["content"]
            completion = answer["usage"]["completion_tokens"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            raise _Failure("not a chat.completion") from None
        if not content or completion != spec.tokens:
            raise _Failure("wrong completion")
        return None, None

    async def _stream(
        self, session: aiohttp.ClientSession, start: float
    ) -> tuple[float | None, float | None]:
        spec = self.spec
        ttft: float | None = None
        parts: list[bytes] = []
        result = self.result
        async with session.post(spec.url, data=spec.body, headers=spec.headers) as response:
            if response.status != 200:
                await response.read()
                raise _Failure(f"status {response.status}")
            if response.content_type != "text/event-stream":
                raise _Failure("not an event stream")
            async for data in response.content.iter_any():
                if ttft is None and _CONTENT in data:
                    ttft = time.perf_counter()
                result.reads += 1
                if not data.endswith(b"\n\n"):
                    result.split_reads += 1
                parts.append(data)
        body = b"".join(parts)
        if not body.endswith(_DONE):
            raise _Failure("no [DONE]")
        chunks = body.count(_CONTENT) - body.count(_EMPTY_CONTENT)
        if chunks != spec.tokens:
            raise _Failure(f"{chunks} content chunks")
        return ttft, None

    async def _agent(
        self, session: aiohttp.ClientSession, start: float
    ) -> tuple[float | None, float | None]:
        spec = self.spec
        gap: float | None = None
        ttft: float | None = None
        buffer = b""
        last: dict[str, Any] = {}
        async with session.post(spec.url, data=spec.body, headers=spec.headers) as response:
            if response.status != 200:
                await response.read()
                raise _Failure(f"status {response.status}")
            async for data in response.content.iter_any():
                now_ns = time.monotonic_ns()
                self.result.reads += 1
                buffer += data
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    if not event.startswith(b"data: "):
                        continue
                    try:
                        frame = orjson.loads(event[6:])
                    except orjson.JSONDecodeError:
                        raise _Failure("malformed agent frame") from None
                    last = frame
                    content = frame.get("content")
                    if (
                        gap is None
                        and frame.get("type") == "chat"
                        and frame.get("streaming")
                        and isinstance(content, str)
                        and content
                    ):
                        match = STAMP.search(content)
                        if match is None:
                            raise _Failure("first prose token without the upstream's stamp")
                        gap = (now_ns - int(match.group(1))) / 1e6
                        ttft = time.perf_counter()
        metadata = last.get("metadata") if isinstance(last, dict) else None
        if not isinstance(metadata, dict) or metadata.get("status") != "completed":
            raise _Failure("agent turn did not complete")
        if gap is None:
            raise _Failure("no streamed prose")
        return ttft, gap

    async def run(self) -> LoadResult:
        spec = self.spec
        connector = aiohttp.TCPConnector(limit=spec.concurrency, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
        cpu0 = time.process_time()
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False
        ) as session:
            self.t0 = time.perf_counter()
            self.warm_end = self.t0 + spec.warmup_s
            self.deadline = self.t0 + spec.ramp_s + spec.duration_s
            await asyncio.gather(*(self.worker(session, i) for i in range(spec.concurrency)))
        wall = time.perf_counter() - self.t0
        result = self.result
        result.failures = dict(self.failures)
        result.window_s = max(self.stopped_at - self.warm_end, 0.0)
        result.cpu_s = time.process_time() - cpu0
        result.wall_s = wall
        result.max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return result


async def run_load(spec: LoadSpec) -> LoadResult:
    """Run one load in this process's event loop and return what it measured."""
    return await _Runner(spec).run()


def _raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen", description="Closed-loop load; prints a JSON result."
    )
    parser.add_argument("--url", required=True, help="chat completions URL (loopback)")
    parser.add_argument("--mode", choices=("json", "stream", "agent"), default="stream")
    parser.add_argument("--model", default="bench-64")
    parser.add_argument("--tokens", type=int, default=64, help="expected content chunks")
    parser.add_argument("--body", help="request body (JSON); default: a chat request")
    parser.add_argument("--token", help="bearer token to send")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--include-usage", action="store_true", help="stream_options usage")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds (after ramp)")
    parser.add_argument("--requests", type=int, help="stop after this many requests")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds not sampled")
    parser.add_argument("--ramp", type=float, default=0.0, help="seconds to start workers")
    parser.add_argument("--samples", action="store_true", help="print every sample too")
    return parser.parse_args(argv)


def spec_from_args(args: argparse.Namespace) -> LoadSpec:
    """The spec the command line describes."""
    headers = {"Content-Type": "application/json"}
    if args.mode == "json":
        headers["Accept"] = "application/json"
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    for header in args.header:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    body = (
        args.body.encode()
        if args.body
        else chat_body(
            args.model, args.tokens, stream=args.mode != "json", include_usage=args.include_usage
        )
    )
    return LoadSpec(
        url=args.url,
        body=body,
        headers=headers,
        mode=args.mode,
        tokens=args.tokens,
        concurrency=args.concurrency,
        duration_s=args.duration,
        requests=args.requests,
        warmup_s=args.warmup,
        ramp_s=args.ramp,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run one load from the command line and print its result as one JSON line."""
    args = _parse_args(argv)
    spec = spec_from_args(args)
    _raise_nofile(spec.concurrency * 2 + 256)
    # Never the bottleneck, not even for a moment: with 1,000 streams open, the default
    # thresholds made the cyclic GC pause this process for 100+ ms every few seconds.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        import uvloop

        result = uvloop.run(run_load(spec))
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        result = asyncio.run(run_load(spec))
    data = result.to_json()
    if not args.samples:
        for key in ("latency_ms", "ttft_ms", "agent_gap_ms"):
            values = sorted(data.pop(key))
            data[key + "_p50"] = values[len(values) // 2] if values else None
            data[key + "_p99"] = values[int(len(values) * 0.99)] if values else None
    json.dump(data, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
