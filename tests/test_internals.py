"""Each private or undocumented library API that ``internals`` uses still exists and works.

One test per entry of ``internals``. A failure names the library and its installed version
and what changed: after an upgrade, these say where to look before anything else does.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import inspect
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypercorn.config import Config

import internals
from internals import LeakyBucket
from internals import append_headers
from internals import direct_body_request
from internals import drop_python_ranks
from internals import hypercorn_run
from internals import hypercorn_worker_argument
from internals import hypercorn_worker_function
from internals import hypercorn_worker_kwargs
from internals import one_task_http_connection
from internals import resolve_proxy
from internals import skip_log_record_caller_lookup
from internals import tiktoken_constructor_args
from internals import write_hypercorn_pid_file
from tests.quart_app.test_connection import SCOPE
from tests.quart_app.test_connection import AsgiClient
from tests.worker_arguments import MARKED_BIND
from tests.worker_arguments import report_worker_arguments


def changed(library: str, assumption: str) -> str:
    """The failure message: which library, which version, which assumption broke."""
    if library == "python":
        installed = f"Python {sys.version.split()[0]}"
    else:
        installed = f"{library} {importlib.metadata.version(library)}"
    return f"{installed} changed under internals/__init__.py: {assumption}"


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


async def test_one_task_http_connection_runs_quarts_pieces_in_the_servers_task() -> None:
    from quart import Quart
    from quart import request
    from quart.asgi import ASGIHTTPConnection

    for name, expected in {
        "_create_request_from_scope": ["self", "send"],
        "handle_messages": ["self", "request", "receive"],
        "handle_request": ["self", "request", "send"],
        "__call__": ["self", "receive", "send"],
    }.items():
        method = getattr(ASGIHTTPConnection, name, None)
        assert method is not None, changed("quart", f"ASGIHTTPConnection.{name} is gone")
        assert parameters(method) == expected, changed(
            "quart", f"ASGIHTTPConnection.{name}{inspect.signature(method)}, not {expected}"
        )
    app = Quart(__name__)
    app.asgi_http_class = one_task_http_connection()
    seen: dict[str, Any] = {}

    @app.post("/x")
    async def handler() -> str | bytes:
        seen["task"] = asyncio.current_task()
        return await request.get_data()

    client = AsgiClient(b"ping")
    async with app.test_app():
        task = asyncio.ensure_future(app(SCOPE, client.receive, client.send))
        await asyncio.wait_for(task, 5)
    sent = client.sent
    assert seen["task"] is task, changed("quart", "the handler no longer runs in our task")
    assert sent[0]["status"] == 200, changed("quart", f"the request was answered {sent[0]}")
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"ping"


async def test_direct_body_request_reads_quarts_body_without_a_task() -> None:
    from quart import Quart
    from quart.wrappers import Request
    from werkzeug.datastructures import Headers
    from werkzeug.exceptions import RequestTimeout

    expected = ["self", "cache", "as_text", "parse_form_data"]
    assert parameters(Request.get_data) == expected, changed(
        "quart", f"Request.get_data{inspect.signature(Request.get_data)}"
    )
    app = Quart(__name__)
    request_class = direct_body_request()

    def build(timeout: int) -> Request:
        return request_class(
            "POST",
            "http",
            "/x",
            b"",
            Headers(),
            "",
            "1.1",
            max_content_length=None,
            body_timeout=timeout,
            send_push_promise=lambda *_: asyncio.sleep(0),
            scope=SCOPE,
        )

    async with app.app_context():
        complete = build(5)
        assert complete.body_timeout == 5, changed("quart", "Request.body_timeout is gone")
        complete.body.append(b"{}")
        complete.body.set_complete()
        assert await complete.get_data(cache=True) == b"{}"
        assert await complete.get_data(as_text=True, cache=False) == "{}"
        assert await complete.get_data() == b"", changed("quart", "Body.clear() keeps the body")
        never_ends = build(0)  # the deadline is now
        with pytest.raises(RequestTimeout):
            await never_ends.get_data()


async def test_resolve_proxy_gives_the_object_behind_quarts_proxies() -> None:
    from quart import Quart
    from quart import g
    from quart import request
    from quart.ctx import _AppCtxGlobals
    from quart.wrappers import Request

    app = Quart(__name__)
    async with app.test_request_context("/x?a=1", method="POST"):
        resolved = resolve_proxy(request)
        assert type(resolved) is Request, changed("werkzeug", "LocalProxy._get_current_object")
        assert resolved.method == "POST" and resolved.path == "/x"
        context = resolve_proxy(g)
        assert type(context) is _AppCtxGlobals, changed("werkzeug", "g does not resolve")
        context.marker = 1
        assert g.marker == 1


def test_append_headers_serialise_like_added_ones() -> None:
    from quart.utils import encode_headers
    from werkzeug.datastructures import Headers

    headers = Headers([("Content-Type", "application/json")])
    assert isinstance(getattr(headers, "_list", None), list), changed(
        "werkzeug", "Headers._list is no longer the list of (name, value) pairs"
    )
    append_headers(headers, {"RateLimit-Limit": "60", "RateLimit-Remaining": "59"}.items())
    assert headers["ratelimit-limit"] == "60", changed("werkzeug", "appended lines are not read")
    assert encode_headers(headers) == [
        (b"content-type", b"application/json"),
        (b"ratelimit-limit", b"60"),
        (b"ratelimit-remaining", b"59"),
    ], changed("quart", "appended header lines are not sent in order")


def test_leaky_bucket_uses_aiolimiters_level_and_leak() -> None:
    from aiolimiter import AsyncLimiter

    for name in ("_level", "_last_check", "_rate_per_sec"):
        assert name in AsyncLimiter.__slots__, changed("aiolimiter", f"AsyncLimiter.{name} gone")
    assert callable(getattr(AsyncLimiter, "_leak", None)), changed("aiolimiter", "no _leak")
    now = [1000.0]
    bucket = LeakyBucket(60, 60, clock=lambda: now[0])  # one per second
    assert bucket.has_capacity(60) and bucket.charge_checked(60) == 60
    assert not bucket.has_capacity(1), changed("aiolimiter", "has_capacity ignores _level")
    now[0] += 30
    assert bucket.has_capacity(30), changed("aiolimiter", "has_capacity no longer calls _leak")
    assert not bucket.has_capacity(31)
    assert bucket.level() == 30 and bucket.wait_s(31) == pytest.approx(1.0)
    assert bucket.add(-40) == 0.0 and bucket.add(70) == 70  # a refund; past the brim


def test_drop_python_ranks_keeps_counting_working() -> None:
    from tiktoken import Encoding

    encoding = Encoding(
        "tiny",
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([i]): i for i in range(256)} | {b"ab": 256},
        special_tokens={},
    )
    assert isinstance(getattr(encoding, "_mergeable_ranks", None), dict), changed(
        "tiktoken", "Encoding._mergeable_ranks is gone (the memory saving is lost)"
    )
    drop_python_ranks(encoding)
    assert encoding._mergeable_ranks == {}
    assert encoding.encode("ab a") == [256, 32, 97], changed(
        "tiktoken", "encoding needs the Python copy of the ranks"
    )


def test_tiktoken_constructor_args_are_tiktokens_own_with_our_ranks() -> None:
    from tiktoken_ext import openai_public

    asked: list[tuple[str, str | None]] = []

    def ranks(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        asked.append((url, expected_hash))
        return {b"a": 0}

    for name in ("cl100k_base", "o200k_base"):
        constructor = openai_public.ENCODING_CONSTRUCTORS.get(name)
        assert constructor is not None, changed("tiktoken", f"no constructor for {name}")
        assert "load_tiktoken_bpe" in constructor.__code__.co_names, changed(
            "tiktoken", f"{name}'s constructor no longer loads its ranks by load_tiktoken_bpe"
        )
        args = tiktoken_constructor_args(name, ranks)
        assert set(args) == {"name", "pat_str", "mergeable_ranks", "special_tokens"}, changed(
            "tiktoken", f"{name}'s constructor returns {sorted(args)}"
        )
        assert args["mergeable_ranks"] == {b"a": 0} and args["name"] == name
        assert args["special_tokens"]["<|endoftext|>"] in (100257, 199999)
        url, expected = asked[-1]
        assert url.endswith(f"/{name}.tiktoken") and len(expected or "") == 64, changed(
            "tiktoken", f"load_tiktoken_bpe is called with {asked[-1]}"
        )


def test_hypercorn_worker_argument_reads_what_the_master_passed() -> None:
    import hypercorn.run

    assert hypercorn_worker_argument("config") is None, "outside a worker: nothing"
    tree = ast.parse(textwrap.dedent(inspect.getsource(hypercorn.run._populate)))
    passed = {
        key.value
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg == "kwargs"
        for key in getattr(node.value, "keys", [])
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }
    assert passed == {"config", "shutdown_event", "sockets"}, changed(
        "hypercorn", f"its master passes the workers {sorted(passed)}"
    )
    config = Config()
    config.bind = MARKED_BIND
    context = multiprocessing.get_context("spawn")
    event = context.Event()
    child = context.Process(
        target=report_worker_arguments, kwargs=hypercorn_worker_kwargs(config, None, event)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert event.is_set(), changed("python", "a spawn child's Process no longer keeps _kwargs")


def test_hypercorn_worker_function_takes_the_masters_arguments() -> None:
    for worker_class in ("asyncio", "uvloop"):
        worker = hypercorn_worker_function(worker_class)
        assert set(hypercorn_worker_kwargs(Config(), None, None)) <= set(parameters(worker)), (
            changed("hypercorn", f"{worker.__name__}{inspect.signature(worker)}")
        )
    with pytest.raises(ValueError, match="trio"):
        hypercorn_worker_function("trio")


def test_hypercorn_run_and_pid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import hypercorn.run

    assert parameters(hypercorn.run.run) == ["config"], changed("hypercorn", "run(config)")
    config = Config()
    monkeypatch.setattr(hypercorn.run, "run", lambda given: 7 if given is config else 0)
    assert hypercorn_run(config) == 7
    path = tmp_path / "pid"
    write_hypercorn_pid_file(str(path))
    assert path.read_text() == str(os.getpid()), changed("hypercorn", "write_pid_file format")


def test_importing_internals_loads_no_web_library() -> None:
    code = (
        "import sys, internals; "
        "print(sorted(m for m in ('quart', 'werkzeug', 'hypercorn', 'tiktoken') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(internals.__file__).parent.parent,
    ).stdout.strip()
    assert loaded == "[]", f"importing internals loads {loaded}: import them where used"


def test_skip_log_record_caller_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    assert hasattr(logging, "_srcfile"), "logging no longer has _srcfile (see the HOWTO)"
    # As logging sets it at import (an earlier test's configure_logging may have cleared it).
    srcfile = os.path.normcase(logging.addLevelName.__code__.co_filename)
    monkeypatch.setattr(logging, "_srcfile", srcfile)  # restored afterwards
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("storywriter.test.internals")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    logger.addHandler(handler)
    try:
        logger.warning("with the caller")
        skip_log_record_caller_lookup()
        logger.warning("without")
    finally:
        logger.removeHandler(handler)
    assert records[0].funcName == "test_skip_log_record_caller_lookup"
    assert records[1].funcName == "(unknown function)" and records[1].lineno == 0
