"""create_app: what a serving worker does with its startup heap."""

from __future__ import annotations

import gc

import pytest

from quart_app import create_app
from testing.upstream import ScriptedUpstream
from tests.conftest import settings_for


@pytest.mark.parametrize("freeze_heap", [True, False])
async def test_a_serving_worker_freezes_its_startup_heap(
    upstream: ScriptedUpstream, freeze_heap: bool
) -> None:
    gc.unfreeze()  # whatever froze before is not this app's
    app = create_app(settings_for(upstream), freeze_heap=freeze_heap)
    async with app.test_app():
        frozen = gc.get_freeze_count()
    assert (frozen > 0) is freeze_heap, frozen
    assert gc.get_freeze_count() == 0, "unfrozen at shutdown: a stopped app's objects can go"
