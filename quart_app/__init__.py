"""The application factory: ``create_app(settings=None)`` wires config, services and routes.

Serve with ``quart --app quart_app run`` or
``hypercorn -c hypercorn.toml "quart_app:create_app()"``.
"""

from __future__ import annotations

import gc
import re
import uuid
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack

from quart import Quart
from quart import Response
from quart import g
from quart import request

from internals import direct_body_request
from internals import one_task_http_connection
from quart_app.config import Settings
from quart_app.cors import install_cors
from quart_app.errors import register_error_handlers
from quart_app.limit_hooks import install_rate_limits
from quart_app.operations import install_operations
from quart_app.operations import operating
from quart_app.routes import register_routes
from quart_app.services import EXTENSION_KEY
from quart_app.wiring import build_services

__all__ = ["create_app"]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(settings: Settings | None = None, *, freeze_heap: bool = True) -> Quart:
    """Build the app; ``settings`` defaults to ``Settings.load()`` (file + environment).

    Args:
        settings: The configuration.
        freeze_heap: Once serving, move what exists into the GC's permanent generation (see
            ``_lifespan``). Tests, which start hundreds of apps in one process, pass False:
            the full collection before the freeze costs them ~0.3 s per app.
    """
    settings = settings or Settings.load()
    app = Quart(__name__, static_folder=None)
    # One task per request and a body read without a task (measured in ``internals``).
    app.request_class = direct_body_request()
    app.asgi_http_class = one_task_http_connection()
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.config["BODY_TIMEOUT"] = 30
    # No deadline on sending a response: a stream lasts as long as the model writes (its own
    # timeouts are the upstream's), and Quart's 60 s default wraps every response in a task
    # (asyncio.wait_for) that a JSON answer, written at once, does not need.
    app.config["RESPONSE_TIMEOUT"] = None

    register_routes(app)
    register_error_handlers(app)
    install_cors(app, settings.auth.cors_origins)

    @app.before_request
    async def _request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    async def _echo_request_id(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-Id"] = request_id
        return response

    operations = install_operations(app, settings)  # logs, metrics, hooks; refuses when draining
    install_rate_limits(app)  # after the CORS preflight and the request id

    @app.while_serving
    async def _lifespan() -> AsyncGenerator[None, None]:
        async with AsyncExitStack() as stack:
            services = await build_services(settings, stack, operations.metrics)
            app.extensions[EXTENSION_KEY] = services
            await stack.enter_async_context(operating(app, services))  # exits first
            # What exists now lives as long as the worker (modules, settings, services):
            # keep it out of the cyclic GC's full collections, which otherwise rescan all
            # ~200k objects every few seconds under load (100+ ms pauses, measured).
            if freeze_heap:
                gc.collect()
                gc.freeze()
            yield
            if freeze_heap:
                gc.unfreeze()
            app.extensions.pop(EXTENSION_KEY, None)

    return app
