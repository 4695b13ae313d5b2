"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis).

A real hypercorn serves the app on loopback with the scripted upstream behind it; every
documented operation gets a bounded number of generated requests, each with a timeout
(no hang), and every answer must be no 5xx, a documented status and content type, and a
body that validates against the documented schema. BYOK headers are dropped from the
generated requests: any value would send the service to resolve or reach a host outside
loopback (BYOK validation has its own tests in ``tests/blueprints/test_byok.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance
from schemathesis.checks import not_a_server_error
from schemathesis.checks import response_schema_conformance
from schemathesis.checks import status_code_conformance

from blueprints.openapi import build_openapi
from quart_app import create_app
from quart_app.auth import mint_token
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.conftest import settings_for
from tests.serving import HOST
from tests.serving import ROOT
from tests.serving import free_port
from tests.serving import hypercorn_service

pytestmark = pytest.mark.slow  # the fuzzing: ~10 s

# The document is generated from the routes alone (no server is needed to build it).
schema = schemathesis.openapi.from_dict(build_openapi(create_app(settings_for(None))))
# Valid and invalid inputs: invalid ones must be refused with a documented 4xx, never a 5xx.
schema.config.generation.update(modes=list(GenerationMode))
#: Examples per operation: small in CI (well under a minute in all); raise it locally to dig.
EXAMPLES = int(os.environ.get("STORYWRITER_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(name="served", scope="module")
def _served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "testing.upstream", "--port", str(port), "--model", MODEL],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    service: dict[str, Any] = {
        "server": {"log_level": "WARNING", "access_log": False},
        "auth": {"jwt_secret": SECRET},
        "embedded": {"enabled": False},
        "credits": {
            "database_url": f"sqlite:///{tmp_path / 'credits.db'}",
            "welcome_credits": 10**9,
        },
        "limits": {"requests_per_minute": 0, "concurrent_requests": 0, "tokens_per_minute": 0},
        "providers": [
            {"name": "scripted", "base_url": f"http://{HOST}:{port}/v1", "models": [MODEL]}
        ],
    }
    try:
        with hypercorn_service(tmp_path, service) as served:
            yield served.base_url
    finally:
        upstream.send_signal(signal.SIGTERM)
        upstream.wait(timeout=10)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_every_generated_request_within_its_contract(case: Any, served: str) -> None:
    headers = {k: v for k, v in (case.headers or {}).items() if not k.lower().startswith("x-byok")}
    case.headers = headers
    token = mint_token(SECRET.encode(), "fuzzer")
    response = case.call(base_url=served, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    case.validate_response(response, checks=CHECKS)


def test_the_served_document_is_the_generated_one(served: str) -> None:
    served_schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    assert served_schema.raw_schema["paths"].keys() == schema.raw_schema["paths"].keys()
