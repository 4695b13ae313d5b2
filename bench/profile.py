"""Where a configuration's CPU goes: py-spy samples of the worker under load, by part.

Why: the figures of ``bench.run`` say how much a configuration costs, not where; this
starts one configuration (``bench.configs``) as ``bench.run`` does, drives it with the same
load generator (non-streamed or streamed, concurrency 32), samples the worker with py-spy
(in the bench extra) and prints the share of the samples each part of the service and each
library is on the stack of - inclusive, so the parts overlap (the ledger's statements are
inside the gateway's call). Idle samples (the thread waiting in the SQLite checkpointer's
pool) are left out.

    python -m bench.profile --config shipped            # B's load, 10 s
    python -m bench.profile --config lean --mode stream --seconds 20
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from bench.catalog import FAST
from bench.configs import configurations
from bench.measure import measure
from bench.run import POSTGRES_URL
from bench.run import REDIS_URL
from bench.run import _prime
from bench.scenarios import API
from bench.scenarios import _args
from bench.stack import Stack
from bench.stack import StackOptions

__all__ = ["main", "shares"]

#: The service's own packages: reported per module and function; libraries per package.
_OURS: Final = frozenset(
    {"agent", "blueprints", "coordination", "credits", "gateway", "internals", "providers"}
    | {"quart_app"}
)
_FRAME: Final = re.compile(r"(.*) \(([^:()]*)(?::\d+)?\)$")
_IDLE: Final = ("concurrent/futures/thread.py",)
#: Named groups of our code, for the summary (first match wins, by module prefix).
PARTS: Final = (
    (
        "credits: holds, pricing, settlements",
        ("credits/", "gateway/settlement.py", "gateway/holds.py"),
    ),
    ("access log", ("quart_app/logs.py", "quart_app/access.py:_Exchange.done", "logging/")),
)


def shares(lines: Iterable[str]) -> tuple[int, collections.Counter[str]]:
    """Samples in all, and per frame key the samples it is on the stack of (py-spy raw)."""
    total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or any(idle in stack for idle in _IDLE):
            continue
        n = int(count)
        total += n
        seen: set[str] = set()
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            if match is None:
                continue
            function, module = match.groups()
            top = module.split("/")[0]
            key = f"{module}:{function}" if top in _OURS else top.removesuffix(".py")
            if key not in seen:
                seen.add(key)
                inclusive[key] += n
        for part, prefixes in PARTS:
            if any(p in stack for p in prefixes):
                inclusive[f"[{part}]"] += n
    return total, inclusive


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--config", default="shipped", help="a configuration of bench.configs")
    parser.add_argument("--mode", choices=("json", "stream"), default="json")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=30)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Profile one configuration under load and print where its samples are."""
    args = _parse(argv)
    [config] = configurations(
        args.config, postgres_url=POSTGRES_URL, redis_url=REDIS_URL, before=None
    )
    spy = Path(sys.executable).parent / "py-spy"
    with tempfile.TemporaryDirectory(prefix="storywriter-profile-") as tmp:
        options = StackOptions(workdir=Path(tmp), **config.options)
        with Stack(options) as stack:
            _prime(stack)
            raw = Path(tmp) / "samples.txt"
            record = ["record", "--pid", str(stack.service_pid), "--rate", "500", "--format"]
            record += ["raw", "--output", str(raw), "--duration", str(int(args.seconds))]
            sampler = subprocess.Popen(
                [str(spy), *record],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            path = "/frontend/chat/completions" if args.mode == "stream" else "/chat/completions"
            load = _args(
                stack.service_root + API + path,
                args.mode,
                FAST,
                64,
                token=stack.token,
                concurrency=32,
                duration=max(1.0, args.seconds - 1.0),
                warmup=0,
            )
            measured = measure(stack, config.name, load, args.seconds + 120)
            sampler.wait()
            print(f"{config.name}, {args.mode}, c=32: {measured.brief()}")
            total, inclusive = shares(raw.read_text().splitlines())
    print(f"{total} samples of the worker (idle threads left out); inclusive shares:")
    for key, n in inclusive.most_common(args.top):
        print(f"  {n / total:6.1%}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
