"""End to end through the real embedded model: the zero-configuration service writes text.

Kept few and short (max_tokens <= 32) so the suite stays fast; the model is SmolLM2-135M
served by llama.cpp in its own process, shared by every app in the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from quart import Quart
from quart.typing import TestHTTPConnectionProtocol as HTTPConnection

from quart_app import create_app
from quart_app.config import Settings
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import SECRET
from tests.conftest import auth
from tests.conftest import content_of
from tests.conftest import frames
from tests.conftest import stream

pytestmark = [pytest.mark.embedded, pytest.mark.slow]

LOCAL = "local/smollm2-135m-instruct"
STATUS = "/api/proxy/llm/v1/status"


@pytest.fixture(name="runtime_dir", scope="session")
def _runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded-runtime")


@pytest.fixture(name="local_app")
async def _local_app(runtime_dir: Path) -> AsyncIterator[Quart]:
    # No providers at all: the zero-configuration default turns the embedded model on.
    settings = Settings.model_validate(
        {
            "auth": {"jwt_secret": SECRET},
            "embedded": {"runtime_dir": str(runtime_dir)},
            "credits": {"database_url": "sqlite:///:memory:"},
        }
    )
    assert settings.embedded_enabled
    app = create_app(settings, freeze_heap=False)
    async with app.test_app():
        yield app


def body(max_tokens: int = 24, **extra: object) -> dict[str, object]:
    return {
        "model": LOCAL,
        "messages": [{"role": "user", "content": "Write one sentence about a lighthouse."}],
        "max_tokens": max_tokens,
        "temperature": 0.2,
        **extra,
    }


async def test_models_lists_the_local_model(local_app: Quart, token: str) -> None:
    response = await local_app.test_client().get("/api/proxy/llm/v1/models", headers=auth(token))
    assert [m["id"] for m in (await response.get_json())["data"]] == [LOCAL]


async def test_streams_real_generated_text_with_usage(local_app: Quart, token: str) -> None:
    status, _, writes = await stream(local_app, FRONTEND_CHAT, body(), auth(token))
    assert status == 200
    payloads = frames(writes)
    assert payloads[-1] == b"[DONE]"
    text = content_of(payloads)
    assert len(text.split()) >= 3, text
    usage = orjson.loads(payloads[-2])["usage"]
    assert 1 <= usage["completion_tokens"] <= 24
    assert usage["prompt_tokens"] > 5
    assert len(writes) >= 3, "tokens arrive as the model writes them"


async def test_non_streamed_json(local_app: Quart, token: str) -> None:
    response = await local_app.test_client().post(
        CHAT, json=body(stream=False), headers=auth(token, Accept="application/json")
    )
    assert response.status_code == 200
    answer = await response.get_json()
    assert answer["choices"][0]["message"]["content"].strip()
    assert answer["usage"]["completion_tokens"] >= 1
    assert answer["cost"]["provider"] == "local"


async def test_cancel_mid_generation_frees_slot_and_full_slots_answer_409(
    local_app: Quart, token: str
) -> None:
    client = local_app.test_client()
    status = await (await client.get(STATUS)).get_json()
    capacity = status["providers"][0]["slots_total"]
    assert capacity >= 1
    async with contextlib.AsyncExitStack() as opened:
        connections = []
        for _ in range(capacity):
            request = client.request(FRONTEND_CHAT, method="POST", headers=auth(token))
            # Quart types __aexit__'s arguments as required: not a context manager to mypy.
            connection: HTTPConnection = await opened.enter_async_context(
                request  # type: ignore[arg-type]
            )
            await connection.send(orjson.dumps(body(max_tokens=32)))
            await connection.send_complete()
            connections.append(connection)
        for connection in connections:
            first = await asyncio.wait_for(connection.receive(), 30)
            assert first.startswith(b"data: ")
        busy = await (await client.get(STATUS)).get_json()
        assert busy["busy"] is True
        refused = await client.post(FRONTEND_CHAT, json=body(), headers=auth(token))
        assert refused.status_code == 409
        assert (await refused.get_json())["code"] == "AI_BUSY"

        for connection in connections:
            await connection.disconnect()
        deadline = time.monotonic() + 1.0
        while (await (await client.get(STATUS)).get_json())["providers"][0]["slots_in_use"]:
            assert time.monotonic() < deadline, "slots not freed within 1 s of the disconnect"
            await asyncio.sleep(0.02)
    status_code, _, writes = await stream(local_app, FRONTEND_CHAT, body(max_tokens=8), auth(token))
    assert status_code == 200 and frames(writes)[-1] == b"[DONE]"


async def test_broken_embedded_model_leaves_other_providers_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    from testing.upstream import ScriptedUpstream
    from tests.conftest import MODEL
    from tests.conftest import chat_body

    corrupt = tmp_path / "broken.gguf"
    corrupt.write_bytes(b"this is not a model" * 100)
    async with ScriptedUpstream(models=[MODEL]) as upstream:
        settings = Settings.model_validate(
            {
                "auth": {"jwt_secret": SECRET},
                "embedded": {
                    "enabled": True,
                    "model_path": str(corrupt),
                    "runtime_dir": str(tmp_path / "rt"),
                },
                "credits": {"database_url": "sqlite:///:memory:"},
                "providers": [
                    {"name": "scripted", "base_url": upstream.base_url, "models": [MODEL]}
                ],
            }
        )
        app = create_app(settings, freeze_heap=False)
        async with app.test_app():
            errors = [r for r in caplog.records if r.levelname == "ERROR"]
            assert len(errors) == 1
            assert "embedded model" in errors[0].getMessage()
            assert "broken.gguf" in errors[0].getMessage()
            assert "Traceback" not in caplog.text
            status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
            assert status == 200 and frames(writes)[-1] == b"[DONE]"
            providers = (await (await app.test_client().get(STATUS)).get_json())["providers"]
            assert [p["name"] for p in providers] == ["scripted"]


async def test_agent_turn_with_the_embedded_model(runtime_dir: Path, token: str) -> None:
    """A whole agent turn through the real model: the frame sequence of contract 8.3."""
    from tests.agent.samples import SAMPLE

    settings = Settings.model_validate(
        {
            "auth": {"jwt_secret": SECRET},
            "embedded": {"runtime_dir": str(runtime_dir)},
            "credits": {"database_url": "sqlite:///:memory:"},
            "agent": {"max_tokens": 96},
        }
    )
    app = create_app(settings, freeze_heap=False)
    async with app.test_app():
        status, _, writes = await stream(
            app,
            "/api/streaming_agent/scenario/stream",
            {"message": "What is this story about?", "scenario": SAMPLE},
            auth(token),
            limit_s=120,
        )
    assert status == 200
    frames: list[dict[str, Any]] = []
    for write in writes:
        assert write.endswith(b"\n\n")
        frames.extend(orjson.loads(e[6:]) for e in write[:-2].split(b"\n\n"))
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "status"
    assert set(kinds) <= {"status", "chat", "tool_call"}
    assert kinds.count("tool_call") <= 1
    assert frames[-1] == {
        "type": "status",
        "content": "completed",
        "metadata": {"status": "completed"},
    }
    follow = frames[-2]
    assert follow["type"] == "chat" and follow["metadata"]["final"] is True
    assert len(follow["metadata"]["follow_up_questions"]) == 3
    for chat in (f for f in frames if f["type"] == "chat"):
        assert chat["streaming"] == chat["metadata"]["streaming"]
