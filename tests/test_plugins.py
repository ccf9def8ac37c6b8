"""Plugins (issue 14, "extend without forking"): a tiny third-party package, installed with pip
into a directory of its own, adds a probe kind, an action type, a scenario and a target through
entry points; the real `chaos-tui` then validates, lists and runs them. A plugin that cannot be
imported is one warning line; one that takes a built-in's name is one error line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chaos_tui.core.exit_codes import ExitCode
from tests.conftest import CHAOS_TUI, env_for, run_cli

# The plugin under test: a probe kind that reads a number from a file, a fault that writes
# another number into it (keeping the original in a marker file until the heal), a scenario
# using both, and a target: a directory of such files. It imports only chaos_tui.core.
DEMO_PLUGIN = """
from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from chaos_tui.core.contracts import Fault, Probe, Scenario, Target


class FileNumberProbe(Probe):
    def __init__(self, name, path):
        super().__init__(name, f"the number in {path}")
        self.path = Path(path)

    async def measure(self):
        return float(self.path.read_text())


class FileNumber:
    class Spec(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        path: str

    @staticmethod
    def build(name, spec):
        return FileNumberProbe(name, spec.path)


class BumpFault(Fault):
    def __init__(self, path, value):
        super().__init__(f"bump:{Path(path).name}", f"write {value} into {path}")
        self.path = Path(path)
        self.marker = Path(f"{path}.chaos-marker")
        self.value = value

    async def inject(self, lease):
        if not self.marker.exists():
            self.marker.write_text(self.path.read_text())
        self.path.write_text(str(self.value))

    async def heal(self, lease):
        if self.marker.exists():
            self.path.write_text(self.marker.read_text())
            self.marker.unlink()

    async def verify_healed(self, lease):
        return not self.marker.exists()


class BumpFile:
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        path: str
        value: int = 99

    @staticmethod
    def build(params, target, hold_s):
        return BumpFault(params.path, params.value)


class FilesTarget(Target):
    def __init__(self, settings):
        self.root = Path(os.environ.get("DEMO_FILES", "/nonexistent"))

    async def ensure_up(self, profile=None):
        if not self.root.is_dir():
            raise RuntimeError(f"{self.root} is not a directory")

    def blast_radius(self, profile=None):
        return [f"the files under {self.root}"]


class BumpScenario(Scenario):
    name = "demo_bump"
    hypothesis = "a reader of level.txt sees the bump and the old number again after the heal"
    profile = "local"

    def probes(self, target):
        return [FileNumberProbe("level", target.root / "level.txt")]

    def steady_state(self):
        return {"level": 5.0}

    def faults(self, target):
        return [BumpFault(str(target.root / "level.txt"), 99)]

    async def check_invariants(self, ctx):
        return []
"""

DEMO_ENTRY_POINTS = {
    "chaos_tui.probes": {"file_number": "chaos_demo_plugin:FileNumber"},
    "chaos_tui.faults": {"bump_file": "chaos_demo_plugin:BumpFile"},
    "chaos_tui.scenarios": {"demo_bump": "chaos_demo_plugin:BumpScenario"},
    "chaos_tui.targets": {"files": "chaos_demo_plugin:FilesTarget"},
}
# Entry points into a module that is not there.
BROKEN_ENTRY_POINTS = {
    "chaos_tui.scenarios": {"gone": "chaos_gone_module:Gone"},
    "chaos_tui.probes": {"gone_kind": "chaos_gone_module:Gone"},
}
# A working plugin whose probe kind is a built-in's.
CLASH_PLUGIN = """
from pydantic import BaseModel


class Http:
    class Spec(BaseModel):
        url: str

    @staticmethod
    def build(name, spec):
        raise NotImplementedError
"""
CLASH_ENTRY_POINTS = {"chaos_tui.probes": {"http": "chaos_clash_plugin:Http"}}

# The venv's setuptools cannot build a wheel without the `wheel` package, and the tests stay
# offline: each plugin builds itself with this in-tree PEP 517 backend (a pure-Python wheel:
# the module, METADATA, entry_points.txt, RECORD), and pip installs that wheel.
BACKEND = """
import base64, hashlib, tomllib, zipfile
from pathlib import Path


def _project():
    return tomllib.loads(Path("pyproject.toml").read_text())["project"]


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    dist = project["name"].replace("-", "_")
    info = f"{dist}-{project['version']}.dist-info"
    entry_points = "".join(
        f"[{group}]\\n" + "".join(f"{name} = {value}\\n" for name, value in names.items())
        for group, names in project.get("entry-points", {}).items()
    )
    files = {p.name: p.read_bytes() for p in Path(".").glob("chaos_*.py")}
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\\nName: {project['name']}\\nVersion: {project['version']}\\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    )
    files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\\n"
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\\n").encode()
    wheel = f"{dist}-{project['version']}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
    return wheel
"""


def make_plugin(root: Path, name: str, module: str | None, entry_points: dict) -> Path:
    """A plugin project: pyproject.toml with its entry points, its module, the backend."""
    root.mkdir(parents=True)
    groups = "".join(
        f'\n[project.entry-points."{group}"]\n'
        + "".join(f'{key} = "{value}"\n' for key, value in names.items())
        for group, names in entry_points.items()
    )
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "build_here"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "{name}"\nversion = "0.1"\n{groups}'
    )
    (root / "build_here.py").write_text(BACKEND)
    if module is not None:
        (root / f"{name.replace('-', '_')}.py").write_text(textwrap.dedent(module))
    return root


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, Path]:
    """Each plugin installed by pip into a directory of its own (the shared venv untouched)."""
    base = tmp_path_factory.mktemp("plugins")
    projects = {
        "demo": make_plugin(base / "demo", "chaos-demo-plugin", DEMO_PLUGIN, DEMO_ENTRY_POINTS),
        "broken": make_plugin(base / "broken", "chaos-broken-plugin", None, BROKEN_ENTRY_POINTS),
        "clash": make_plugin(
            base / "clash", "chaos-clash-plugin", CLASH_PLUGIN, CLASH_ENTRY_POINTS
        ),
    }
    installs = {
        key: subprocess.Popen(
            [
                sys.executable,
                *("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"),
                *("--disable-pip-version-check", "--quiet"),
                *("--target", str(base / f"site-{key}"), str(project)),
            ],
            cwd=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for key, project in projects.items()
    }
    for key, proc in installs.items():
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"pip install of {key}: {out}"
    return {key: base / f"site-{key}" for key in projects}


def plugin_env(state_dir: Path, *sites: Path, **extra: str) -> dict[str, str]:
    env = env_for(state_dir, **extra)
    path = [str(site) for site in sites] + [p for p in [env.get("PYTHONPATH")] if p]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def stderr_lines(done: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stderr.splitlines() if line.strip()]


def scenario_text(level: Path, *, probe: str | None = None, action: str | None = None) -> str:
    probe = probe or f"file_number: {{path: {level}}}"
    action = action or f"path: {level}"
    return f"""\
version: 1
scenarios:
  bump_level:
    hypothesis: "the level reads above its bound while bumped and is back after the heal"
    warmup_seconds: 0.5
    recover_seconds: 1
    steady_state:
      - {probe}
        name: level
        max: 5
    actions:
      - type: bump_file
        {action}
        value: 99
        duration_seconds: 1.5
    validation:
      - detect_time_max_seconds: {{probe: level, max: 1}}
      - recovery_time_max_seconds: {{probe: level, max: 2}}
"""


@pytest.fixture
def level(tmp_path) -> Path:
    path = tmp_path / "files" / "level.txt"
    path.parent.mkdir()
    path.write_text("3")
    return path


def test_validate_takes_the_plugins_kinds_and_places_errors_in_their_values(
    sites, fresh_state_dir, level, tmp_path
):
    env = plugin_env(fresh_state_dir, sites["demo"])
    good = tmp_path / "good.yaml"
    good.write_text(scenario_text(level))
    done = run_cli(["validate", str(good)], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "bump_level: 1 probe, 1 action, hold 1.5 s\n"
    assert done.stderr == ""

    # Without the plugin the same file is an unknown kind: the plugin is what made it valid.
    plain = run_cli(["validate", str(good)], env_for(fresh_state_dir))
    assert plain.returncode == ExitCode.USAGE
    assert "unknown steady_state probe 'file_number'" in plain.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        scenario_text(
            level,
            probe="file_number: {path: 5}",
            action=f"duration_second: 2\n        pth: {level}",
        )
        .replace("value: 99", "value: 99\n      - type: bump_fil")
        .split("    validation:")[0]
    )
    done = run_cli(["validate", str(bad)], env)
    assert done.returncode == ExitCode.USAGE, done.stderr
    scenario = "scenarios.bump_level"
    assert stderr_lines(done) == [
        f"chaos-tui: {bad}:8:29: {scenario}.steady_state[0].file_number.path: "
        "Input should be a valid string",
        f"chaos-tui: {bad}:12:9: {scenario}.actions[0].path: path is required",
        # The action's own keys and the plugin's are suggested alike.
        f"chaos-tui: {bad}:13:9: {scenario}.actions[0].duration_second: unknown key "
        "'duration_second' (did you mean 'duration_seconds'?)",
        f"chaos-tui: {bad}:14:9: {scenario}.actions[0].pth: unknown key 'pth' "
        "(did you mean 'path'?)",
        f"chaos-tui: {bad}:16:15: {scenario}.actions[1].type: unknown action type 'bump_fil' "
        "(did you mean 'bump_file'?); valid types: kill_process, terminate_process, "
        "pause_process, kill_container, stop_container, pause_container, restart_container, "
        "network_partition, latency, bandwidth, timeout, reset_peer, slicer, limit_data, "
        "down, worker_injector, bump_file",
    ]


def test_list_shows_the_plugins_scenario_and_its_target_plans_it(sites, fresh_state_dir, level):
    env = plugin_env(fresh_state_dir, sites["demo"], DEMO_FILES=str(level.parent))
    done = run_cli(["list"], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "demo_bump  (profile local, plugin chaos-demo-plugin, about " in done.stdout
    assert done.stdout.index("postgres_restart_outbox") < done.stdout.index("demo_bump")

    plan = run_cli(["--dry-run", "--scenario", "demo_bump", "--target", "files"], env)
    assert plan.returncode == 0, plan.stderr
    assert f"the files under {level.parent}" in plan.stdout
    assert level.read_text() == "3", "a dry run injects nothing"


def test_a_file_scenario_runs_the_plugins_probe_and_fault_on_its_target(
    sites, fresh_state_dir, level, tmp_path
):
    path = tmp_path / "bump.yaml"
    path.write_text(scenario_text(level))
    marker = Path(f"{level}.chaos-marker")
    args = ["--headless", "--file", str(path), "--scenario", "bump_level", "--target", "files"]
    env = plugin_env(fresh_state_dir, sites["demo"], DEMO_FILES=str(level.parent))

    refused = run_cli([*args, "--json"], env)  # a plugin's target is never the sandbox
    assert refused.returncode == ExitCode.CHAOS_NOT_ENABLED, refused.stderr
    assert not marker.exists() and level.read_text() == "3"

    env["CHAOS_ENABLED"] = "true"
    run = subprocess.Popen(
        [*CHAOS_TUI, *args, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    seen: set[str] = set()  # what the fault did to the files, watched from outside
    deadline = time.monotonic() + 50
    while run.poll() is None and time.monotonic() < deadline:
        if marker.exists():
            seen.add("marker")
            if level.read_text() == "99":
                seen.add("bumped")
        time.sleep(0.02)
    out, err = run.communicate(timeout=10)
    assert run.returncode == 0, err
    assert seen == {"marker", "bumped"}, "the fault was never seen applied"
    assert not marker.exists(), "the heal removes the marker"
    assert level.read_text() == "3", "the heal puts the number back"

    result = json.loads(out)
    assert result["outcome"] == "pass", result
    assert result["target"] == "files"
    assert result["heal"]["ok"]
    assert len(result["injection_windows"]) == 1
    during = result["probes"]["level"]["during"]
    assert during["error_rate"] > 0.5, during  # the plugin's probe saw the plugin's fault
    assert "value 99 above max 5" in during["last_error"]
    assert result["probes"]["level"]["after"]["value_last"] == 3
    assert {i["name"]: i["passed"] for i in result["invariants"]} == {
        "detect_time(level)": True,
        "recovery_time(level)": True,
    }


def test_a_plugin_that_cannot_be_imported_is_one_warning_and_the_rest_works(
    sites, fresh_state_dir, level, tmp_path
):
    env = plugin_env(fresh_state_dir, sites["broken"], sites["demo"])
    done = run_cli(["list"], env)
    assert done.returncode == 0, done.stderr
    assert "demo_bump" in done.stdout and "postgres_restart_outbox" in done.stdout
    assert stderr_lines(done) == [
        "chaos-tui: warning: entry point chaos_tui.scenarios:gone = chaos_gone_module:Gone of "
        "chaos-broken-plugin 0.1: cannot load it (ModuleNotFoundError: No module named "
        "'chaos_gone_module'); left out"
    ]

    good = tmp_path / "good.yaml"
    good.write_text(scenario_text(level))
    checked = run_cli(["validate", str(good)], env)
    assert checked.returncode == 0, checked.stderr
    [warning] = stderr_lines(checked)
    assert warning.startswith("chaos-tui: warning: entry point chaos_tui.probes:gone_kind = ")

    uses_it = tmp_path / "uses.yaml"
    uses_it.write_text(
        scenario_text(level, probe="gone_kind: {path: /x}").split("    validation:")[0]
    )
    refused = run_cli(["validate", str(uses_it)], env)
    assert refused.returncode == ExitCode.USAGE
    warning, error = stderr_lines(refused)
    assert error.startswith(
        f"chaos-tui: {uses_it}:8:9: scenarios.bump_level.steady_state[0]: probe kind "
        "'gone_kind' is a plugin's, left out: entry point chaos_tui.probes:gone_kind"
    ), error


def test_a_plugin_taking_a_built_in_name_is_one_error_line_naming_both(
    sites, fresh_state_dir, level, tmp_path
):
    good = tmp_path / "good.yaml"
    good.write_text(scenario_text(level))
    done = run_cli(["validate", str(good)], plugin_env(fresh_state_dir, sites["clash"]))
    assert done.returncode == ExitCode.USAGE
    assert stderr_lines(done) == [
        "chaos-tui: the probe kind 'http' of entry point chaos_tui.probes:http = "
        "chaos_clash_plugin:Http of chaos-clash-plugin 0.1 clashes with the built-in probe "
        "kind 'http'; uninstall chaos-clash-plugin or rename its entry point"
    ]


def test_a_plugin_target_claiming_to_be_the_sandbox_is_left_out():
    """Only chaos-tui's own sandbox runs without an explicit enable; a plugin cannot opt out."""
    from chaos_tui import plugins
    from chaos_tui.core.contracts import Target

    class Sneaky(Target):
        is_sandbox = True

        async def ensure_up(self, profile=None):
            pass

    class Honest(Sneaky):
        is_sandbox = False

    assert "always needs --enable-chaos" in (plugins._check_target("sneaky", Sneaky) or "")
    assert plugins._check_target("honest", Honest) is None
