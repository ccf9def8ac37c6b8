"""A scenario file naming the user's own container, run as a user would run it:
`chaos-tui --headless --file FILE --scenario NAME --json` on target `local`. The container is
one the test creates (no compose labels, nothing of the platform's), serving HTTP on a
published loopback port; a second container of the test's stands beside it and must never be
touched. Every run's Docker events are read back, so "untouched" means no event at all, not
just "running at the end".

The containers run Debian's python3 from the offline test bed's base image: no image can be
pulled here, and the base image (unlike the full test bed) is not rebuilt whenever the
package's source changes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TESTBED, env_for, run_cli
from tests.test_own_containers import PROBLEM, docker
from tests.test_process_faults import free_port

pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"docker tests skipped: {PROBLEM}")


def base_image() -> str:
    """The test bed's Debian base image (python3 inside), built offline if it is missing."""
    spec = importlib.util.spec_from_file_location("build_testbed", TESTBED / "build_testbed.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    return builder.build_base()


class Containers:
    """The two containers of the module: `web` (named in the file) and `bystander` (not)."""

    def __init__(self) -> None:
        tag = f"chaos-t{os.getpid()}"
        self.port = free_port()
        self.web = f"{tag}-web"
        self.bystander = f"{tag}-bystander"
        self.ids: list[str] = []  # every container made, by id, for the cleanup
        self.bystander_started = ""

    def start(self, image: str) -> None:
        # A fixed host port: an ephemeral one ("127.0.0.1::8000") may change at a restart.
        # --init: the server is not pid 1, so SIGTERM stops it at once, as in most images.
        web = [
            "--name", self.web, "-p", f"127.0.0.1:{self.port}:8000",
            image, "python3", "-m", "http.server", "8000", "--directory", "/etc",
        ]  # fmt: skip
        for args in (web, ["--name", self.bystander, image, "sleep", "3600"]):
            # create, then start: the id is known (and removed) even if the start fails.
            self.ids.append(docker("create", "--init", *args))
            docker("start", self.ids[-1])
        self.bystander_started = started_at(self.bystander)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def remove(self) -> None:
        for cid in self.ids:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def containers():
    made = Containers()
    try:
        made.start(base_image())
        until_answers(made.url)
        yield made
    finally:
        made.remove()


def started_at(name: str) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", name)


def status(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Status}}", name)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def until_answers(url: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not answers(url):
        assert time.monotonic() < deadline, f"{url} never answered"
        time.sleep(0.1)


def events(name: str, since: float) -> list[str]:
    """Every Docker event of the container from `since` until now (pause, kill, die, start...)."""
    out = docker(
        "events",
        "--since", f"{since:.3f}",
        "--until", f"{time.time():.3f}",
        "--filter", f"container={name}",
        "--format", "{{.Action}}",
    )  # fmt: skip
    return [line.split(":")[0] for line in out.splitlines() if line]


def scenario_file(tmp_path: Path, c: Containers) -> Path:
    def scenario(name: str, action: str) -> str:
        return f"""\
  {name}:
    hypothesis: "the web container answers again within 10 s of {name}"
    warmup_seconds: 1
    recover_seconds: 2
    steady_state:
      - http_200_from: "{c.url}"
        name: web
    load:
      - http_requests: {{url: "{c.url}", rate_per_s: 10, timeout_ms: 1000}}
        name: traffic
    actions:
      - {action}
        target: {c.web}
        duration_seconds: 1.5
    validation:
      - http_recovery_time_max_seconds: 10
      - error_rate_max: {{load: traffic, max: 1.0}}
"""

    text = "version: 1\nscenarios:\n" + "".join(
        (
            scenario("web_restart", "type: restart_container"),
            scenario("web_hard_restart", "type: restart_container\n        graceful: false"),
            scenario("web_pause", "type: pause_container"),
        )
    )
    path = tmp_path / "containers.yaml"
    path.write_text(text)
    return path


def run_scenario(path: Path, state_dir: Path, name: str) -> subprocess.CompletedProcess:
    return run_cli(
        ["--headless", "--file", str(path), "--scenario", name, "--json"],
        env_for(state_dir, CHAOS_ENABLED="true"),
        timeout=120,
    )


def assert_bystander_untouched(c: Containers, since: float) -> None:
    assert events(c.bystander, since) == [], "the container the file does not name was touched"
    assert started_at(c.bystander) == c.bystander_started
    assert status(c.bystander) == "running"


@pytest.mark.parametrize(
    ("scenario", "expected_events", "restarted"),
    [
        # docker restart: SIGTERM (tini passes it on), then start again at once.
        ("web_restart", ["kill", "die", "stop", "start", "restart"], True),
        # graceful: false is a kill; the heal starts it again after the hold.
        ("web_hard_restart", ["kill", "die", "start"], True),
        ("web_pause", ["pause", "unpause"], False),
    ],
)
def test_a_fault_on_the_named_container_passes_and_touches_nothing_else(
    containers, tmp_path, fresh_state_dir, scenario, expected_events, restarted
):
    c = containers
    until_answers(c.url)  # the previous case's container is serving again
    before = started_at(c.web)
    since = time.time()
    done = run_scenario(scenario_file(tmp_path, c), fresh_state_dir, scenario)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["outcome"] == "pass", result["reason"]
    assert result["target"] == "local"

    # The named container took exactly this fault, and runs again.
    seen = events(c.web, since)
    assert [e for e in seen if e in expected_events] == expected_events, seen
    assert (started_at(c.web) != before) == restarted
    assert status(c.web) == "running" and answers(c.url)
    assert_bystander_untouched(c, since)

    # The window: injected, in place, healed by the run, about as long as the file's hold.
    (window,) = result["injection_windows"]
    assert window["fault"].endswith(f":{c.web}")
    assert window["injected_at"] <= window["applied_at"] <= window["heal_started_at"]
    assert window["healed_at"] >= window["heal_started_at"]
    assert window["healed_by"] == "the run"
    assert 1.5 <= window["heal_started_at"] - window["injected_at"] < 10  # not a TTL heal

    # The recovery: the web probe saw the outage and saw it end.
    recovery = result["recovery"]
    assert recovery["probe"] == "web"
    assert recovery["time_to_detect_s"] is not None
    assert recovery["outage_s"] is not None and recovery["outage_s"] > 0
    assert recovery["time_to_recover_s"] is not None and recovery["time_to_recover_s"] < 10
    assert all(i["passed"] for i in result["invariants"]), result["invariants"]
    assert any(i["name"].startswith("recovery_time") for i in result["invariants"])
    assert result["measurements"]["load.traffic.during"]["errors"] >= 1
    # After the heal the load is served again. A container started at the heal may refuse
    # a few requests while its server starts: that is the recovery the probe measured.
    after = result["measurements"]["load.traffic.after"]
    assert after["ok"] >= 3 and after["errors"] <= 10 * recovery["time_to_recover_s"] + 2
    assert result["heal"]["ok"] and result["heal"]["verified"]
    print(
        f"{scenario}: window {window['heal_started_at'] - window['injected_at']:.2f}s, "
        f"detect {recovery['time_to_detect_s']}s, outage {recovery['outage_s']}s, "
        f"recover {recovery['time_to_recover_s']}s; load during "
        f"{result['measurements']['load.traffic.during']}, after {after}"
    )


def test_dry_run_names_only_the_container_of_the_file(containers, tmp_path, fresh_state_dir):
    c = containers
    since = time.time()
    short_id = docker("inspect", "-f", "{{.Id}}", c.web)[:12]
    done = run_cli(
        ["--dry-run", "--file", str(scenario_file(tmp_path, c)), "--scenario", "web_hard_restart"],
        env_for(fresh_state_dir),
    )
    assert done.returncode == 0, done.stderr
    radius = done.stdout.split("  blast radius:\n", 1)[1]
    assert [line.strip() for line in radius.splitlines()] == [f"container {c.web} ({short_id})"], (
        done.stdout
    )
    assert c.bystander not in done.stdout
    assert "nothing injected" in done.stdout
    assert events(c.web, since) == []
    assert_bystander_untouched(c, since)


def test_a_container_that_does_not_exist_is_one_line_exit_2_and_nothing_injected(
    containers, tmp_path, fresh_state_dir
):
    c = containers
    gone = f"{c.web}-gone"
    missing = tmp_path / "missing.yaml"
    missing.write_text(
        scenario_file(tmp_path, c).read_text().replace(f"target: {c.web}\n", f"target: {gone}\n")
    )
    since = time.time()
    done = run_scenario(missing, fresh_state_dir, "web_hard_restart")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"no container named {gone!r}" in lines[0], done.stderr
    assert done.stdout == ""
    assert events(c.web, since) == [] and answers(c.url)
    assert_bystander_untouched(c, since)
    assert not list(fresh_state_dir.glob("results/**/*.json")), "no run began, no result"
