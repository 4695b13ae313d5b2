"""Evaluate the scenario agent on the dev set, one turn per case, through its HTTP API.

Usage::

    python -m bench.agent_eval                      # the embedded model (zero configuration)
    python -m bench.agent_eval --model gpt-4o-mini --config storywriter.toml
    python -m bench.agent_eval --scripted           # a perfect scripted model: mechanics only
    python -m bench.agent_eval --cases 'rename-*,starter-*' --profile small

Each case is POSTed to ``/api/streaming_agent/scenario/stream`` exactly as the frontend
sends it (``{"message", "scenario"}`` with a bearer token), its SSE frames are read as they
arrive and its tool_call is applied as the frontend applies it (a shallow merge); then
``bench.agent_eval_score`` judges the turn. Only the HTTP API is used, so the evaluation
holds whatever the agent's internals become. The app is built in-process
(``create_app`` + Quart's test client) from the configuration the service itself would
load, with credits and rate limits off so that they cannot get in the way.

``--scripted`` runs the same cases against ``bench.upstream.ScriptedUpstream`` answering
as ``bench.agent_eval_oracle.Oracle``, a flawless model: anything wrong is the agent's
mechanics, and CI requires 100 % there (tests/agent/test_eval_scripted.py).

Prints the per-operation table and the failures, and writes
``bench/results/agent_eval-<label>.json`` (and ``.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from bench.agent_eval_cases import CASES
from bench.agent_eval_model import Case
from bench.agent_eval_model import Step
from bench.agent_eval_oracle import Oracle
from bench.agent_eval_report import CaseResult
from bench.agent_eval_report import describe
from bench.agent_eval_report import machine
from bench.agent_eval_report import now
from bench.agent_eval_report import render
from bench.agent_eval_report import write_json
from bench.agent_eval_scenarios import scenario
from bench.agent_eval_score import judge
from bench.agent_eval_score import prose
from bench.upstream import ScriptedUpstream
from quart_app import create_app
from quart_app.auth import mint_token
from quart_app.config import CONFIG_ENV
from quart_app.config import ENV_PREFIX
from quart_app.config import Settings

__all__ = ["Run", "evaluate", "main", "select"]

AGENT_PATH = "/api/streaming_agent/scenario/stream"
MODELS_PATH = "/api/proxy/llm/v1/models"
RESULTS = Path(__file__).resolve().parent / "results"
TURN_LIMIT_S = 300.0
SCRIPTED_MODEL = "scripted-model"


class Run:
    """What to evaluate: the configuration, and whether a scripted oracle is the model."""

    def __init__(
        self,
        *,
        scripted: bool = False,
        model: str | None = None,
        config: Path | None = None,
        profile: str | None = None,
    ) -> None:
        self.scripted = scripted
        self.model = model
        self.config = config
        self.profile = profile
        self.served: str | None = None
        """The model the agent used, as the service lists it (known once it has run)."""

    @property
    def label(self) -> str:
        """Names the result files: ``scripted-small``, ``embedded``, ``gpt-4o-mini``..."""
        if self.scripted:
            return f"scripted-{self.profile or 'auto'}"
        name = self.model or ("config" if self.config else "embedded")
        if self.profile:
            name += f"-{self.profile}"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)

    def settings(
        self, secret: str, runtime_dir: str, upstream: ScriptedUpstream | None
    ) -> Settings:
        """The service's own configuration loading, plus the evaluation's overrides."""
        environ = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        environ.pop(CONFIG_ENV, None)
        if self.config is not None:
            environ[CONFIG_ENV] = str(self.config)
        overrides: dict[str, Any] = {
            "AUTH__JWT_SECRET": secret,
            "CREDITS__ENABLED": False,
            "LIMITS__REQUESTS_PER_MINUTE": 0,
            "LIMITS__CONCURRENT_REQUESTS": 0,
            "LIMITS__TOKENS_PER_MINUTE": 0,
            "SERVER__LOG_LEVEL": "WARNING",
            "SERVER__ACCESS_LOG": False,
            "EMBEDDED__RUNTIME_DIR": runtime_dir,
        }
        if self.model:
            overrides["AGENT__MODEL"] = self.model
        if self.profile:
            overrides["AGENT__MODEL_PROFILE"] = self.profile
        if upstream is not None:
            overrides["EMBEDDED__ENABLED"] = False
        for key, value in overrides.items():
            environ[ENV_PREFIX + key] = orjson.dumps(value).decode()
        settings = Settings.load(environ)
        if upstream is not None:
            scripted = {
                "name": "scripted",
                "base_url": upstream.base_url,
                "models": [self.model or SCRIPTED_MODEL],
                "max_concurrency": 2,
            }
            data = settings.model_dump(mode="python")
            data["auth"]["jwt_secret"] = secret
            data["providers"] = [scripted]
            settings = Settings.model_validate(data)
        return settings


def select(patterns: str | None) -> list[Case]:
    """The cases whose ids match any of the comma-separated glob patterns (all if None)."""
    if not patterns:
        return list(CASES)
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen = [c for c in CASES if any(fnmatch.fnmatchcase(c.id, p) for p in wanted)]
    if not chosen:
        raise SystemExit(f"no case matches {patterns!r}")
    return chosen


def _frames(writes: Sequence[bytes]) -> tuple[list[dict[str, Any]], list[str]]:
    frames: list[dict[str, Any]] = []
    problems: list[str] = []
    for write in writes:
        if not write.endswith(b"\n\n"):
            problems.append("an SSE write that ends inside a frame")
        for event in write.strip(b"\n").split(b"\n\n"):
            if not event.startswith(b"data: "):
                problems.append(f"not an SSE data line: {event[:60]!r}")
                continue
            try:
                frame = orjson.loads(event[6:])
            except orjson.JSONDecodeError:
                problems.append(f"a frame that is not JSON: {event[:60]!r}")
                continue
            if isinstance(frame, dict):
                frames.append(frame)
            else:
                problems.append("a frame that is not a JSON object")
    return frames, problems


def _has_text(write: bytes) -> bool:
    frames, _ = _frames([write])
    return any(f.get("type") == "chat" and f.get("content") for f in frames)


async def _turn(client: Any, token: str, case: Case, before: Mapping[str, Any]) -> CaseResult:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    writes: list[bytes] = []
    ttft: float | None = None
    status: int | None = None
    problems: list[str] = []
    started = time.perf_counter()
    try:
        async with asyncio.timeout(TURN_LIMIT_S):
            async with client.request(AGENT_PATH, method="POST", headers=headers) as connection:
                await connection.send(orjson.dumps({"message": case.message, "scenario": before}))
                await connection.send_complete()
                while (data := await connection.receive()) != b"":
                    writes.append(data)
                    if ttft is None and _has_text(data):
                        ttft = time.perf_counter() - started
            status = connection.status_code
    except TimeoutError:
        problems.append(f"no end of the turn within {TURN_LIMIT_S:.0f} s")
    seconds = time.perf_counter() - started
    frames, frame_problems = _frames(writes)
    problems += frame_problems
    if status != 200:
        problems.append(f"HTTP status {status}")
    verdict = judge(case, before, frames)
    problems += verdict.problems
    return CaseResult(
        id=case.id,
        group="multi" if len(case.steps) > 1 else case.op,
        starter=case.starter,
        message=case.message,
        expected=describe(case),
        valid=verdict.valid and not frame_problems and status == 200,
        correct=verdict.correct and not problems,
        problems=problems,
        happened=verdict.happened,
        seconds=round(seconds, 3),
        ttft=None if ttft is None else round(ttft, 3),
        answer=prose(frames),
        diff=verdict.diff,
    )


async def _default_model(client: Any, token: str) -> str | None:
    """The model the agent uses when none is configured: the pool's default, listed first."""
    response = await client.get(MODELS_PATH, headers={"Authorization": f"Bearer {token}"})
    listed = (await response.get_json() or {}).get("data") or []
    return str(listed[0]["id"]) if listed else None


@asynccontextmanager
async def _upstream(run: Run, oracle: Oracle) -> AsyncIterator[ScriptedUpstream | None]:
    if not run.scripted:
        yield None
        return
    models = [run.model or SCRIPTED_MODEL]
    async with ScriptedUpstream(models=models, responder=oracle, record_requests=False) as upstream:
        yield upstream


async def evaluate(
    run: Run, cases: Sequence[Case], progress: Callable[[CaseResult], None] | None = None
) -> list[CaseResult]:
    """Run every case as one turn through the service and judge it."""
    secret = secrets.token_urlsafe(32)
    token = mint_token(secret.encode(), "agent-eval")
    oracle = Oracle()
    runtime_dir = tempfile.mkdtemp(prefix="agent-eval-")
    results = []
    try:
        async with _upstream(run, oracle) as upstream:
            settings = run.settings(secret, runtime_dir, upstream)
            app = create_app(settings)
            async with app.test_app():
                client = app.test_client()
                run.served = settings.agent.model or await _default_model(client, token)
                # One untimed turn first: it loads the agent stack (as the frontend's
                # /stream/health probe does before a writer's first message) and the
                # model's weights into the page cache.
                warm_up = Case("warm-up", "empty", "Hello!", (Step("chat", "general"),))
                oracle.start(warm_up, scenario("empty"))
                await _turn(client, token, warm_up, scenario("empty"))
                for case in cases:
                    before = scenario(case.scenario)
                    oracle.start(case, before)
                    result = await _turn(client, token, case, before)
                    results.append(result)
                    if progress is not None:
                        progress(result)
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)
    return results


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_eval", description=__doc__)
    parser.add_argument("--scripted", action="store_true", help="a perfect scripted model")
    parser.add_argument("--model", help="the agent's model ([agent] model)")
    parser.add_argument("--config", type=Path, help="a TOML file like STORYWRITER_CONFIG")
    parser.add_argument(
        "--profile", choices=("auto", "small", "large"), help="[agent] model_profile"
    )
    parser.add_argument("--cases", help="comma-separated case ids or glob patterns")
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/...)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; exit 0 (the numbers are the result, not a pass/fail)."""
    args = _parse(argv)
    run = Run(scripted=args.scripted, model=args.model, config=args.config, profile=args.profile)
    cases = select(args.cases)

    def progress(result: CaseResult) -> None:
        mark = "ok " if result.correct else ("bad" if result.valid else "ERR")
        print(f"{mark} {result.seconds:6.1f} s  {result.id}", file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    results = asyncio.run(evaluate(run, cases, progress))
    header = {
        "label": run.label,
        "model": run.served or run.model or "unknown",
        "profile": run.profile or "auto",
        "date": now(),
        "machine": machine(),
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    out = args.out or RESULTS / f"agent_eval-{run.label}.json"
    write_json(out, header, results)
    report = render(header, results)
    out.with_suffix(".md").write_text(report + "\n", encoding="utf-8")
    print(report)
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
