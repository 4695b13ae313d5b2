"""One OpenAI-compatible upstream reached over a pooled aiohttp session.

aiohttp rather than httpx on the proxy's hot path: on one core at concurrency 32 its client
did ~7,400 requests/s where httpx did ~340 (targets.md). Every failure is converted into a
``providers.errors`` type here, at the boundary, and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from providers.errors import UpstreamHTTPError
from providers.errors import UpstreamProtocolError
from providers.errors import UpstreamTimeout
from providers.errors import UpstreamUnavailable
from providers.settings import UpstreamSettings

__all__ = ["Upstream", "UpstreamStream"]


class _Silence(Exception):
    """Set on a stream's body by its watchdog: the upstream sent nothing in time."""


class UpstreamStream:
    """An open streamed response: raw SSE bytes as they arrive, with a between-chunk timeout."""

    def __init__(self, response: aiohttp.ClientResponse, upstream: Upstream) -> None:
        self._response = response
        self.upstream = upstream
        self._chunks = self._read()
        # One watchdog timer per stream rather than an ``asyncio.timeout`` per read (~5 us
        # each, a good share of relaying one token): every read moves ``_deadline``, and a
        # timer that fires before it re-arms itself for it.
        self._deadline = 0.0
        self._waiting = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_at = 0.0

    def chunks(self) -> AsyncIterator[bytes]:
        """The one iterator over the body, yielding whatever bytes are available.

        Frames that arrived together leave together.
        """
        return self._chunks

    async def _read(self) -> AsyncIterator[bytes]:
        content = self._response.content
        settings = self.upstream.settings
        loop = asyncio.get_running_loop()
        # The first read may wait for prompt processing; later ones only for the next token.
        wait = settings.first_byte_timeout_s
        try:
            while True:
                # The generator may be resumed by another task (the handler reads the first
                # chunk, the response task the rest), so the watchdog never cancels a task:
                # it fails the read itself, and only while one is waiting.
                self._arm(loop, wait)
                self._waiting = True
                try:
                    data = await content.readany()
                finally:
                    self._waiting = False
                if not data:
                    return
                wait = settings.chunk_timeout_s
                yield data
        except _Silence:
            raise UpstreamTimeout(
                f"upstream {self.upstream.name} sent nothing for {wait:g} s"
            ) from None
        except (aiohttp.ClientError, ConnectionError) as error:
            raise UpstreamUnavailable(
                f"upstream {self.upstream.name} broke the stream ({type(error).__name__})"
            ) from None
        finally:
            self._disarm()

    def _arm(self, loop: asyncio.AbstractEventLoop, wait: float) -> None:
        deadline = loop.time() + wait
        self._deadline = deadline
        if self._watchdog is None or deadline < self._watchdog_at:
            self._disarm()
            self._watchdog_at = deadline
            self._watchdog = loop.call_at(deadline, self._bark, loop)

    def _bark(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watchdog = None
        if not self._waiting:
            return  # the next read arms it again
        if loop.time() < self._deadline:
            self._watchdog_at = self._deadline
            self._watchdog = loop.call_at(self._deadline, self._bark, loop)
            return
        self._response.content.set_exception(_Silence())

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def close(self) -> None:
        """Close the connection now: the upstream sees the request end and stops generating."""
        self._disarm()
        self._response.close()


class Upstream:
    """Requests to one upstream; the session is shared and created inside the running loop."""

    def __init__(
        self,
        settings: UpstreamSettings,
        session: aiohttp.ClientSession,
        *,
        api_key: str | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self._session = session
        key = api_key
        if key is None and settings.api_key is not None:
            key = settings.api_key.get_secret_value()
        self._key = key
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._chat_url = f"{settings.base_url}/chat/completions"
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout_s, sock_read=None
        )
        self._models_cache: tuple[float, list[str]] | None = None

    @property
    def secret(self) -> str | None:
        """The key, only so that error text echoing it can be scrubbed."""
        return self._key

    async def _post(self, body: bytes, request_id: str | None) -> aiohttp.ClientResponse:
        headers = self._headers
        if request_id:
            headers = {**headers, "X-Request-Id": request_id}
        try:
            async with asyncio.timeout(self.settings.first_byte_timeout_s):
                response = await self._session.post(
                    self._chat_url,
                    data=body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
        except TimeoutError:
            raise UpstreamTimeout(
                f"upstream {self.name} did not answer within "
                f"{self.settings.first_byte_timeout_s:g} s"
            ) from None
        except aiohttp.ServerTimeoutError:
            raise UpstreamTimeout(f"upstream {self.name} did not accept the connection") from None
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamUnavailable(
                f"upstream {self.name} is unreachable ({type(error).__name__})"
            ) from None
        if response.status >= 400:
            try:
                text = await response.text(errors="replace")
            except (aiohttp.ClientError, OSError, TimeoutError):
                text = ""
            finally:
                response.close()
            raise UpstreamHTTPError(
                response.status,
                self.name,
                _error_text(text),
                secret=self._key,
                retry_after=response.headers.get("Retry-After"),
            )
        return response

    async def open_stream(self, body: bytes, request_id: str | None = None) -> UpstreamStream:
        """POST a streamed chat completion and return once the upstream answered 2xx SSE."""
        response = await self._post(body, request_id)
        if response.content_type != "text/event-stream":
            response.close()
            raise UpstreamProtocolError(
                f"upstream {self.name} answered {response.content_type or 'no content type'}"
                " instead of an event stream"
            )
        return UpstreamStream(response, self)

    async def complete(self, body: bytes, request_id: str | None = None) -> dict[str, Any]:
        """POST a non-streamed chat completion and return its parsed JSON object."""
        response = await self._post(body, request_id)
        try:
            async with asyncio.timeout(self.settings.first_byte_timeout_s):
                raw = await response.read()
        except TimeoutError:
            raise UpstreamTimeout(f"upstream {self.name} did not finish its answer") from None
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamUnavailable(
                f"upstream {self.name} broke the answer ({type(error).__name__})"
            ) from None
        finally:
            response.close()
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"upstream {self.name} answered invalid JSON") from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
            raise UpstreamProtocolError(f"upstream {self.name} answered no chat completion")
        return parsed

    async def list_models(self) -> list[str]:
        """Model ids: configured, else listed from the upstream and cached for a short while."""
        if self.settings.models is not None:
            return list(self.settings.models)
        now = time.monotonic()
        cached = self._models_cache
        if cached is not None and now - cached[0] < self.settings.models_cache_ttl_s:
            return cached[1]
        models = await self._fetch_models()
        self._models_cache = (now, models)
        return models

    async def probe(self) -> list[str]:
        """Ask the upstream for its models now, ignoring configuration and cache (health)."""
        return await self._fetch_models()

    async def _fetch_models(self) -> list[str]:
        if self.settings.kind == "ollama":
            url = self.settings.base_url.removesuffix("/v1") + "/api/tags"
        else:
            url = f"{self.settings.base_url}/models"
        headers = {k: v for k, v in self._headers.items() if k == "Authorization"}
        timeout = aiohttp.ClientTimeout(total=self.settings.connect_timeout_s + 10)
        try:
            async with self._session.get(
                url, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if response.status >= 400:
                    text = await response.text(errors="replace")
                    raise UpstreamHTTPError(
                        response.status, self.name, _error_text(text), secret=self._key
                    )
                payload = orjson.loads(await response.read())
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"upstream {self.name} did not list its models") from None
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamUnavailable(
                f"upstream {self.name} is unreachable ({type(error).__name__})"
            ) from None
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"upstream {self.name} listed models as invalid JSON"
            ) from None
        return _model_ids(payload)


def _model_ids(payload: Any) -> list[str]:
    """Ids from OpenAI's ``{"data":[{"id"}]}`` or Ollama's ``{"models":[{"name"}]}``."""
    if isinstance(payload, dict):
        if isinstance(payload.get("data"), list):
            return [str(m["id"]) for m in payload["data"] if isinstance(m, dict) and "id" in m]
        if isinstance(payload.get("models"), list):
            return [
                str(m.get("name") or m.get("model"))
                for m in payload["models"]
                if isinstance(m, dict) and (m.get("name") or m.get("model"))
            ]
    raise UpstreamProtocolError("the upstream's model list has an unknown shape")


def _error_text(text: str) -> str:
    """The human part of an upstream error body (OpenAI's ``error.message`` when present)."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(parsed.get("message"), str):
            return str(parsed["message"])
    return text
