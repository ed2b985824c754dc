"""Fuzzing the API from its own /openapi.json (schemathesis strategies driven by hypothesis), bounded:
no generated input may cause a 500, and every error keeps the one JSON shape."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import make_app

pytestmark = pytest.mark.slow


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_no_generated_input_makes_a_500(hash_index, hash_embedder):
    app = make_app(hash_index, hash_embedder)
    operations = _operations(app)
    assert len(operations) >= 12
    seen = []
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def run(case):
            response = case.call()
            seen.append(response.status_code)
            assert response.status_code < 500 or response.status_code == 503, (case.method, case.path, response.text[:300])
            if response.status_code >= 400 and "application/json" in response.headers.get("Content-Type", ""):
                body = response.json()
                assert set(body) == {"error"} and body["error"]["status"] == response.status_code

        run()
    assert len(seen) >= 100
