"""Schema fuzzing of the agent's API (schemathesis, generated from its own OpenAPI): whatever
it is sent, it answers without a 500 and keeps running. Schemathesis never sends NaN,
Infinity or numbers past a float's range, so a second fuzzer (hypothesis) writes the JSON text
itself: those literals anywhere, huge numbers, strings and bodies, deep nesting, addresses of
the agent itself, with field names taken from the live schema (so it needs no change when a
request model gains or loses a field).

The agent serves a state directory with no sandbox in it: a well-formed sandbox lease is
refused (nothing runs there to break), and proxies it makes listen on loopback and go away
with the agent.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        AUTH["url"] = client.info()["url"]
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
    response = case.call(headers={"Authorization": AUTH["Authorization"]}, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"


# -- what schemathesis will not send -----------------------------------------------------------

NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E+309", "-NaN", "1e-400"]


def _json_text(names: list[str], port: int) -> st.SearchStrategy[str]:
    """JSON text (or nearly: some of it is broken on purpose) with the dangerous literals."""
    addresses = [
        f"{host}:{p}"
        for host in ("127.0.0.1", "localhost", "0.0.0.0", "[::1]")
        for p in (port, 0, 65535)
    ]
    words = (
        names
        + addresses
        + [
            "proxy.down",
            "proxy.toxic",
            "sandbox.pause",
            "latency",
            "downstream",
            "sandbox",
            "p",
            "..",
            "\x00",
        ]
    )
    scalars = st.one_of(
        st.sampled_from(NOT_FINITE),
        st.floats().map(json.dumps),  # NaN and Infinity included
        st.integers().map(str),
        st.integers(300, 5000).map(lambda n: "9" * n),  # past any float; 4300+ digits: no int
        st.sampled_from(["true", "false", "null", "{}", "[]", '""']),
        st.text(max_size=40).map(json.dumps),
        st.sampled_from(words).map(json.dumps),
        st.sampled_from([10_000, 300_000, 1_100_000]).map(lambda n: json.dumps("x" * n)),
    )
    keys = st.one_of(st.sampled_from(words), st.text(max_size=12))
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
            st.dictionaries(keys, inner, max_size=4).map(_object),
        ),
        max_leaves=10,
    )
    return st.one_of(
        st.dictionaries(keys, values, max_size=8).map(_object),
        values,
        st.sampled_from(["[" * 100_000, '{"a":' * 50_000, "{", "", "\ufeff{}"]),
    )


def _object(items: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in items.items()) + "}"


def _routes(schema: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """Every (method, path) of the schema, and every field name its request bodies know."""
    routes = [(m.upper(), path) for path, ops in schema["paths"].items() for m in ops]
    names = sorted(
        {
            name
            for model in schema.get("components", {}).get("schemas", {}).values()
            for name in model.get("properties", {})
        }
    )
    return routes, names


@pytest.fixture(scope="module")
def raw_target(agent_schema):
    with httpx.Client(
        base_url=AUTH["url"], timeout=30, headers={"Authorization": AUTH["Authorization"]}
    ) as http:
        routes, names = _routes(http.get("/openapi.json").json())
        yield http, routes, names


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_nan_infinity_and_huge_inputs_make_no_5xx(raw_target, data):
    http, routes, names = raw_target
    method, path = data.draw(st.sampled_from(routes), label="route")
    for param in ("{lease_id}", "{name}"):
        if param in path:
            path = path.replace(
                param,
                quote(
                    data.draw(
                        st.one_of(
                            st.sampled_from(["NaN", "-Infinity", "1e400", "x" * 5000]),
                            st.text(max_size=20),
                        ),
                        label=param,
                    ),
                    safe="",
                ),
            )
    port = int(AUTH["url"].rsplit(":", 1)[1])
    body = data.draw(_json_text(names, port), label="body").encode("utf-8", "surrogatepass")
    response = http.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, f"{method} {path} {body[:200]!r}: {response.text[:300]}"
    if _not_finite(body):  # refused at the door, whichever route it was sent to
        assert response.status_code in (413, 422), response.text[:300]


def _not_finite(body: bytes) -> bool:
    """Python's lenient reader finds a NaN, an infinity or an overflowing number in it."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
