"""The example file's `slow_network` scenario, run as a user would run it against their own
service: a real HTTP server the test starts, `chaos-tui --headless --file
examples/own-service.yaml --scenario slow_network --set port=... --set proxy_port=...`. The run
opens a proxy of the agent's in front of the service, its load goes through it, a latency
toxic slows the way back for the hold, and the proxy is gone when the run ends."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from chaos_tui.core.procinfo import listeners
from chaos_tui.targets.local import port_is_free
from tests.conftest import env_for, run_cli
from tests.test_process_faults import free_port, server  # noqa: F401 - the fixture, by name

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own-service.yaml"


def test_slow_network_slows_the_load_only_while_the_toxic_is_on(
    server,  # noqa: F811 - the imported fixture, by name
    fresh_state_dir,
):
    port, proc = server
    proxy_port = free_port()
    toxic_ms = float(yaml.safe_load(EXAMPLE.read_text())["variables"]["toxic_latency_ms"])
    args = [
        "--file", str(EXAMPLE), "--scenario", "slow_network",
        "--set", f"port={port}", "--set", f"proxy_port={proxy_port}",
    ]  # fmt: skip
    done = run_cli(
        ["--headless", *args, "--json"],
        env_for(fresh_state_dir, CHAOS_ENABLED="true"),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["outcome"] == "pass", result["reason"]
    assert all(i["passed"] for i in result["invariants"]), result["invariants"]

    load = {
        phase: result["measurements"][f"load.through_proxy.{phase}"]
        for phase in ("before", "during", "after")
    }
    print(f"slow_network: {json.dumps(load)}")
    for phase, stats in load.items():
        assert stats["requests"] >= 10 and stats["errors"] == 0, (phase, stats)
    # Through the proxy, and slowed by it only while the toxic was on.
    assert load["during"]["latency_ms_p95"] > toxic_ms
    assert load["during"]["latency_ms_p50"] > toxic_ms * 0.9  # most requests, not a few
    # ... and by the toxic's latency once: http.server writes its headers and its body
    # apart, and each piece once waited the whole latency after the one before (p95 ~620 ms).
    assert load["during"]["latency_ms_p95"] < toxic_ms + load["before"]["latency_ms_p95"] + 150
    assert load["after"]["latency_ms_p95"] < load["before"]["latency_ms_p95"] + 100
    assert load["after"]["latency_ms_max"] < toxic_ms  # none of them waited on the toxic

    (window,) = result["injection_windows"]
    assert window["fault"] == f"latency:127.0.0.1:{proxy_port}"
    assert window["healed_by"] == "the run"
    # The service itself was never touched: the direct probe passed throughout.
    # The bounded probe through the proxy saw the slowed path, and its recovery is the result's.
    assert result["recovery"]["probe"] == "via_proxy"
    assert result["probes"]["via_proxy"]["during"]["error_rate"] > 0.5
    assert result["recovery"]["time_to_detect_s"] is not None
    service = result["probes"]["service"]
    assert service["during"]["samples"] > 0 and service["during"]["error_rate"] == 0
    assert proc.poll() is None

    # The proxy the run opened is closed: nothing listens on its port, and the next run may
    # open it again at once (the connections it relayed linger in TIME_WAIT there for a
    # minute; they once made the port look taken and the next run was refused).
    assert listeners(proxy_port) == []
    assert port_is_free(f"127.0.0.1:{proxy_port}")
    again = run_cli(["--dry-run", *args], env_for(fresh_state_dir))
    assert again.returncode == 0, again.stderr
    assert f"proxy 127.0.0.1:{proxy_port} -> 127.0.0.1:{port} (opened for the run)" in again.stdout
