"""Schema fuzzing of the agent's API (schemathesis, generated from its own OpenAPI): whatever
it is sent, it answers without a 500 and keeps running.

The agent serves a state directory with no sandbox in it: a well-formed sandbox lease is
refused (nothing runs there to break), and proxies it makes listen on loopback and go away
with the agent.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from chaos_tui.agent.client import AgentClient
from chaos_tui.settings import Settings
from tests.conftest import leftovers, make_state_dir


AUTH: dict[str, str] = {}  # the token, set once the agent runs


@pytest.fixture(scope="module")
def agent_schema():
    state_dir = make_state_dir("fuzz")
    client = AgentClient(Settings(state_dir=state_dir))
    asyncio.run(client.ensure())
    try:
        token = client.token()
        schema = schemathesis.openapi.from_url(
            client.info()["url"] + "/openapi.json", headers={"Authorization": f"Bearer {token}"}
        )
        AUTH["Authorization"] = f"Bearer {token}"
        yield schema
        assert client.info() is not None, "the fuzzing killed the agent"
    finally:
        left = leftovers(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
        assert all(item.startswith("agent") for item in left), left


schema = schemathesis.pytest.from_fixture("agent_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_agent_fail(case):
    response = case.call(headers=AUTH, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
