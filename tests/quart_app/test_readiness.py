"""``/livez`` and ``/readyz``: states of providers and the ledger, probe caching, draining."""

from __future__ import annotations

from quart import Quart

from quart_app.operations import OPERATIONS_KEY
from quart_app.operations import Operations
from testing.upstream import ScriptedUpstream
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import settings_for
from tests.serving import free_port


async def test_livez_needs_nothing(app: Quart) -> None:
    response = await app.test_client().get("/livez")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "alive"}


async def test_readyz_reports_each_dependency(app: Quart) -> None:
    response = await app.test_client().get("/readyz")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["providers"]["scripted"]["state"] == "up"
    assert body["checks"]["database"]["state"] == "up"
    assert body["checks"]["redis"] is None  # not configured


async def test_readyz_probes_upstreams_at_most_once_per_cache_period(
    app: Quart, upstream: ScriptedUpstream
) -> None:
    client = app.test_client()
    for _ in range(5):
        assert (await client.get("/readyz")).status_code == 200
    probes = [r for r in upstream.requests if r.path.endswith("/models")]
    assert len(probes) == 1


async def test_readyz_is_503_when_no_provider_can_serve(make_app: AppFactory) -> None:
    dead = [{"name": "dead", "base_url": f"http://127.0.0.1:{free_port()}/v1", "models": [MODEL]}]
    async with make_app(settings_for(None, providers=dead)) as app:
        response = await app.test_client().get("/readyz")
        assert response.status_code == 503
        body = await response.get_json()
        assert body["status"] == "not_ready"
        dead_check = body["checks"]["providers"]["dead"]
        assert dead_check["state"] == "down"
        assert dead_check["detail"] == "UPSTREAM_UNAVAILABLE"


async def test_an_upstream_without_a_model_list_is_still_up(
    make_app: AppFactory, upstream: ScriptedUpstream
) -> None:
    # /v1/nothing/models answers 404: reachable, so up (its chat endpoint may well work).
    providers = [{"name": "odd", "base_url": upstream.root_url + "/v1/nothing", "models": [MODEL]}]
    async with make_app(settings_for(None, providers=providers)) as app:
        body = await (await app.test_client().get("/readyz")).get_json()
        assert body["checks"]["providers"]["odd"]["state"] == "up"
        assert body["checks"]["providers"]["odd"]["detail"] == "answered 404"


async def test_draining_is_503_on_readyz_and_livez_stays_200(app: Quart) -> None:
    operations_of(app).lifecycle.begin_drain("test")
    client = app.test_client()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert (await ready.get_json())["status"] == "draining"
    assert (await client.get("/livez")).status_code == 200


def operations_of(app: Quart) -> Operations:
    """The app's operations outside a request."""
    operations: Operations = app.extensions[OPERATIONS_KEY]
    return operations
