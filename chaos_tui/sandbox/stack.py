"""The sandbox as a whole: start, stop, report and fault its services.

State lives in one directory: `sandbox.json` (ports and the processes we started), logs/,
the PostgreSQL data and the JetStream store. Every method is blocking; async callers go
through `asyncio.to_thread`.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from chaos_tui.core.journal import write_atomic
from chaos_tui.sandbox import nats as nats_server
from chaos_tui.sandbox import postgres
from chaos_tui.sandbox.postgres import SandboxError
from chaos_tui.sandbox.processes import (
    ProcessRecord,
    is_running,
    signal_only,
    signal_tree,
    spawn,
    start_ticks,
    wait_gone,
)
from chaos_tui.sandbox.services import (
    BY_NAME,
    PROFILES,
    QUEUE_NODES,
    SENTINELS,
    SERVICES,
    Service,
    Where,
    services_of,
)
from chaos_tui.settings import Settings
from chaos_tui.statedir import open_lock_file, prepare_state_dir

QUEUE_PORTS = {*QUEUE_NODES, *SENTINELS, "ledger"}  # Valkey speaks redis://
READY_POLL_MIN_S = 0.01  # readiness is asked again after this, doubling up to the max
READY_POLL_MAX_S = 0.1


class Sandbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.state_dir)
        self.state_file = self.root / "sandbox.json"
        self.logs = self.root / "logs"

    # -- state ----------------------------------------------------------------------------

    def _load(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"ports": {}, "processes": {}}
        except (OSError, ValueError) as exc:
            raise SandboxError(f"cannot read sandbox state {self.state_file}: {exc}") from exc

    def _save(self, state: dict) -> None:
        write_atomic(self.state_file, json.dumps(state, indent=2) + "\n")

    @contextmanager
    def _locked(self):
        """One sandbox operation at a time, across processes."""
        if not self.root.is_dir():  # the CLI made and checked it; a library caller may not have
            prepare_state_dir(self.root)
        fd = open_lock_file(self.root / "sandbox.lock")  # a link there is refused, not truncated
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def record(self, service: str) -> ProcessRecord | None:
        data = self._load()["processes"].get(service)
        return ProcessRecord.from_json(data) if data else None

    @property
    def ports(self) -> dict[str, int]:
        return self._load()["ports"]

    # Ports are picked when the sandbox first starts. Before that the URLs carry port 0, which
    # nothing listens on: the console can describe a scenario's probes before anything runs.
    @property
    def postgres_url(self) -> str:
        return postgres.url(self.ports.get("postgres", 0))

    @property
    def nats_url(self) -> str:
        return nats_server.url(self.ports.get("nats", 0))

    # -- lifecycle ------------------------------------------------------------------------

    def is_up(self, profiles: list[str] | None = None) -> bool:
        return all(self.running(s.name) for s in services_of(profiles))

    def running(self, service: str) -> bool:
        rec = self.record(service)
        return rec is not None and is_running(rec)

    def up(self, started: list[str] | None = None, profiles: list[str] | None = None) -> list[str]:
        """Start whatever of these profiles (all when None) is not running; return the
        services started.

        Pass `started` to see each service in it the moment it exists, even if a later one
        fails: the caller can then stop exactly what it started.
        """
        started = [] if started is None else started
        wanted = self.reserve_ports(profiles)
        # In two waves (see _waves): what a wave needs is spawned at once, then each is waited
        # for, so their start-up times overlap instead of adding up.
        for wave in _waves(wanted, last=True):
            ports = {}
            for service in wave:
                ports = self._spawn_if_down(service.name, started)
            for service in wave:
                self._wait_ready(service.name, ports)
        return started

    def reserve_ports(self, profiles: list[str] | None = None, new_dials: bool = False) -> list:
        """Pick (once) the ports of these profiles' services, before any of them starts: a
        link proxy must be listening where sea-b will dial. `new_dials` picks the dialled
        ports again (one was taken while the mesh was down). Returns those services."""
        wanted = services_of(profiles)
        with self._locked():
            state = self._load()
            if new_dials:
                for name in (p for s in wanted for p in s.dials):
                    state.setdefault("ports", {}).pop(name, None)
            self._assign_ports(state, wanted)
            self._save(state)
        return wanted

    def down(self, only: list[str] | None = None) -> list[str]:
        """Stop the processes we started (all, or `only` these); return those that ran."""
        with self._locked():
            state = self._load()
            ours = [
                s
                for s in SERVICES
                if (only is None or s.name in only) and state["processes"].get(s.name)
            ]
            stopped = []
            # In two waves (see _waves), each asked to stop at once and then waited for: the
            # stops overlap, and no service loses what it uses while it is still stopping.
            for wave in _waves(ours, last=False):
                records = {
                    s.name: ProcessRecord.from_json(state["processes"][s.name]) for s in wave
                }
                running = {name: is_running(rec) for name, rec in records.items()}
                for service in wave:
                    signal_tree(records[service.name], signal.SIGCONT)  # paused: cannot act
                    signal_only(records[service.name], service.stop_signal)
                for service in reversed(wave):
                    rec = records[service.name]
                    if not _stopped(rec, 15.0):
                        self._save(state)  # what did stop is forgotten; this one is kept
                        raise SandboxError(f"{service.name} (pid {rec.pid}) did not stop")
                    if running[service.name]:
                        stopped.append(service.name)
                    del state["processes"][service.name]
                self._save(state)
            return stopped

    def mark_down(self) -> None:
        """`sandbox down` has begun: a run using the sandbox sees the count change and ends
        (SandboxTarget.wait_gone) instead of waiting out every timeout against it."""
        if not self.state_file.exists():
            return  # never started here: no run can be using it
        with self._locked():
            state = self._load()
            state["downs"] = state.get("downs", 0) + 1
            self._save(state)

    def downs(self) -> int:
        """How many times `sandbox down` has begun on this state dir."""
        return self._load().get("downs", 0)

    def status(self) -> dict:
        state = self._load()
        services = {}
        for service in SERVICES:
            data = state["processes"].get(service.name)
            rec = ProcessRecord.from_json(data) if data else None
            services[service.name] = {
                "profile": service.profile,
                "running": bool(rec and is_running(rec)),
                "pid": rec.pid if rec else None,
                "log": rec.log if rec else None,
            }
        return {
            "state_dir": str(self.root),
            "ports": state["ports"],
            "urls": self._urls(state["ports"]),
            "services": services,
        }

    # -- faults ---------------------------------------------------------------------------

    def kill(self, service: str) -> bool:
        """SIGKILL the service and its whole process group: no shutdown, like a power cut."""
        with self._locked():
            rec = self.record(service)
            if rec is None:
                raise SandboxError(f"{service} was never started by this sandbox")
            below = signal_tree(rec, signal.SIGKILL)
            if not wait_gone(rec, 5.0):
                raise SandboxError(f"{service} (pid {rec.pid}) survived SIGKILL")
            # Backends still holding shared memory would stop a restart: wait for them too.
            deadline = time.monotonic() + 5.0
            while below and time.monotonic() < deadline:
                below = [(pid, t) for pid, t in below if start_ticks(pid) == t]
                time.sleep(0.02)
            return below is not None

    def pause(self, service: str) -> None:
        """SIGSTOP the service and its children: alive, holding its sockets, answering
        nothing, like a hung process."""
        with self._locked():
            rec = self.record(service)
            if rec is None or signal_tree(rec, signal.SIGSTOP) is None:
                raise SandboxError(f"sandbox {service} is not running: there is nothing to pause")

    def resume(self, service: str) -> bool:
        """SIGCONT what `pause` stopped; False when the service is not running at all."""
        with self._locked():
            rec = self.record(service)
            return rec is not None and signal_tree(rec, signal.SIGCONT) is not None

    def start(self, service: str, started: list[str] | None = None) -> bool:
        """Start one service if it is down; True when it had to be started (and then it is
        appended to `started` at once, before waiting for it to be ready)."""
        mine: list[str] = []
        ports = self._spawn_if_down(service, mine)
        if started is not None:
            started.extend(mine)
        # Even when another caller started it a moment ago: return only once it is ready.
        self._wait_ready(service, ports)
        return bool(mine)

    def _spawn_if_down(self, service: str, started: list[str]) -> dict[str, int]:
        """Spawn the service unless it runs; appended to `started` the moment it exists.
        Returns the ports (to wait for it to be ready on)."""
        with self._locked():
            state = self._load()
            rec = state["processes"].get(service)
            if not (rec and is_running(ProcessRecord.from_json(rec))):
                state["processes"][service] = self._start(service, state["ports"]).to_json()
                self._save(state)  # recorded the moment it exists, so `down` can always find it
                started.append(service)
        return state["ports"]

    def healthy(self, service: str) -> bool:
        """Running and answering as it should (not merely a live PID)."""
        if not self.running(service):
            return False
        try:
            self._check_ready(service, self.ports)
            return True
        except Exception:
            return False

    # -- internals ------------------------------------------------------------------------

    def _assign_ports(self, state: dict, wanted) -> None:
        """Pick free ports once and keep them, so addresses stay put across restarts. A
        profile none of whose services runs gets fresh ports for any that was taken since."""
        ports = state.setdefault("ports", {})
        for profile in {s.profile for s in wanted}:
            members = [BY_NAME[name] for name in PROFILES[profile]]
            idle = not any(self._running_in(state, s.name) for s in members)
            for name in (p for s in members for p in s.ports):
                if name not in ports or (idle and not _port_free(ports[name])):
                    ports[name] = _free_port(set(ports.values()))
            for name in (p for s in members for p in s.dials):
                if name not in ports:
                    ports[name] = _free_port(set(ports.values()))

    def _running_in(self, state: dict, service: str) -> bool:
        data = state["processes"].get(service)
        return bool(data) and is_running(ProcessRecord.from_json(data))

    def _urls(self, ports: dict) -> dict:
        urls = {}
        for name, port in ports.items():
            if name == "postgres":
                urls[name] = postgres.url(port)
            elif name in ("nats", "nats_a", "nats_b"):
                urls[name] = nats_server.url(port)
            elif name == "nats_a_leaf" or name.startswith("mesh_link"):
                urls[name] = f"nats-leaf://127.0.0.1:{port}"
            elif name in QUEUE_PORTS or name.startswith("queue_proxy"):
                urls[name] = f"redis://127.0.0.1:{port}"
            elif name != "otlp_grpc":
                urls[name] = f"http://127.0.0.1:{port}"
        return urls

    def where(self, ports: dict | None = None) -> Where:
        return Where(self.root, self.ports if ports is None else ports, self.settings)

    def _start(self, service: str, ports: dict) -> ProcessRecord:
        if service not in BY_NAME:
            raise SandboxError(f"unknown sandbox service {service!r}")
        where = self.where(ports)
        where.ready_file(service).unlink(missing_ok=True)
        launch = BY_NAME[service].launch(where)
        return spawn(
            service, launch.command, self.logs / f"{service}.log", user=launch.user, cwd=launch.cwd
        )

    def _wait_ready(self, service: str, ports: dict) -> None:
        deadline = time.monotonic() + self.settings.sandbox.start_timeout_s
        last_error = "not ready"
        pause = READY_POLL_MIN_S
        while time.monotonic() < deadline:
            rec = self.record(service)
            if rec is None or not is_running(rec):
                raise SandboxError(
                    f"{service} exited while starting; see {self.logs / service}.log"
                )
            try:
                self._check_ready(service, ports)
                return
            except Exception as exc:
                last_error = str(exc) or type(exc).__name__
            # Short at first (most services answer within a few tens of ms), then 0.1 s.
            time.sleep(pause)
            pause = min(pause * 2, READY_POLL_MAX_S)
        raise SandboxError(
            f"{service} not ready after {self.settings.sandbox.start_timeout_s:g}s: {last_error}"
        )

    def _check_ready(self, service: str, ports: dict) -> None:
        BY_NAME[service].ready(self.where(ports))


def _waves(services: list[Service], last: bool) -> list[list[Service]]:
    """Split services into two waves for starting (`last`: the wave of each profile's last
    service comes second) or stopping (it comes first). A profile's last service uses the
    others (the relay uses Postgres and NATS, the gateway OPA, the collector the sink, sea-b
    sea-a), while the others use nothing of each other and no profile uses another's: so a
    wave can start, or stop, all at once."""
    tops = {PROFILES[p][-1] for p in PROFILES}
    first = [s for s in services if s.name not in tops]
    second = [s for s in services if s.name in tops]
    waves = [first, second] if last else [second, first]
    return [wave for wave in waves if wave]


def _stopped(rec: ProcessRecord, timeout_s: float) -> bool:
    """Wait for a process already asked to stop; then kill its whole tree."""
    if wait_gone(rec, timeout_s):
        return True
    signal_tree(rec, signal.SIGKILL)
    return wait_gone(rec, 5.0)


def _free_port(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A free loopback port that is not one of `taken` (ports kept for services not running
    now, which the kernel would happily hand out again)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port
    raise SandboxError("no free loopback port found")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
