"""The sandbox as a whole: start, stop, report and fault its services.

State lives in one directory: `sandbox.json` (ports and the processes we started), logs/,
the PostgreSQL data and the JetStream store. Every method is blocking; async callers go
through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import signal
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from chaos_tui.core.journal import write_atomic
from chaos_tui.sandbox import nats as nats_server
from chaos_tui.sandbox import postgres
from chaos_tui.sandbox.postgres import SandboxError
from chaos_tui.sandbox.processes import (
    ProcessRecord,
    is_running,
    signal_tree,
    spawn,
    start_ticks,
    stop,
    wait_gone,
)
from chaos_tui.settings import Settings

SERVICES = ("postgres", "nats", "relay")  # start order; stop order is the reverse
PORTS = ("postgres", "nats", "nats_monitor")


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
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "sandbox.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

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

    def is_up(self) -> bool:
        return all(self.running(s) for s in SERVICES)

    def running(self, service: str) -> bool:
        rec = self.record(service)
        return rec is not None and is_running(rec)

    def up(self, started: list[str] | None = None) -> list[str]:
        """Start whatever is not running; return the services started.

        Pass `started` to see each service in it the moment it exists, even if a later one
        fails: the caller can then stop exactly what it started.
        """
        started = [] if started is None else started
        with self._locked():
            state = self._load()
            self._assign_ports(state)
            self._save(state)
        for service in SERVICES:
            self.start(service, started)
        return started

    def down(self, only: list[str] | None = None) -> list[str]:
        """Stop the processes we started (all, or `only` these); return those that ran."""
        with self._locked():
            state = self._load()
            stopped = []
            for service in reversed(SERVICES):
                if only is not None and service not in only:
                    continue
                data = state["processes"].get(service)
                if not data:
                    continue
                rec = ProcessRecord.from_json(data)
                was_running = is_running(rec)
                # postgres: SIGINT is its "fast" shutdown (abort sessions, checkpoint, exit).
                sig = signal.SIGINT if service == "postgres" else signal.SIGTERM
                if not stop(rec, timeout_s=15.0, sig=sig):
                    raise SandboxError(f"{service} (pid {rec.pid}) did not stop")
                if was_running:
                    stopped.append(service)
                del state["processes"][service]
                self._save(state)
            return stopped

    def status(self) -> dict:
        state = self._load()
        services = {}
        for service in SERVICES:
            data = state["processes"].get(service)
            rec = ProcessRecord.from_json(data) if data else None
            services[service] = {
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

    def start(self, service: str, started: list[str] | None = None) -> bool:
        """Start one service if it is down; True when it had to be started (and then it is
        appended to `started` at once, before waiting for it to be ready)."""
        with self._locked():
            state = self._load()
            rec = state["processes"].get(service)
            needed = not (rec and is_running(ProcessRecord.from_json(rec)))
            if needed:
                state["processes"][service] = self._start(service, state["ports"]).to_json()
                self._save(state)  # recorded the moment it exists, so `down` can always find it
                if started is not None:
                    started.append(service)
        # Even when another caller started it a moment ago: return only once it is ready.
        self._wait_ready(service, state["ports"])
        return needed

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

    def _assign_ports(self, state: dict) -> None:
        ports = state.setdefault("ports", {})
        for name in PORTS:
            if name not in ports or (not self._any_running(state) and not _port_free(ports[name])):
                ports[name] = _free_port()

    def _any_running(self, state: dict) -> bool:
        return any(is_running(ProcessRecord.from_json(d)) for d in state["processes"].values())

    def _urls(self, ports: dict) -> dict:
        if not ports:
            return {}
        return {
            "postgres": postgres.url(ports["postgres"]),
            "nats": nats_server.url(ports["nats"]),
            "nats_monitor": f"http://127.0.0.1:{ports['nats_monitor']}",
        }

    def _start(self, service: str, ports: dict) -> ProcessRecord:
        log = self.logs / f"{service}.log"
        if service == "postgres":
            user = self.settings.sandbox.pg_user if postgres.running_as_root() else None
            bin_dir, data = postgres.prepare_data_dir(self.root / "pg", user)
            postgres.clear_stale_lock(data)
            if user:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.touch()
            command = postgres.server_command(bin_dir, data, ports["postgres"])
            return spawn(service, command, log, user=user, cwd=Path("/"))
        if service == "nats":
            store = self.root / "nats"
            command = nats_server.server_command(
                store, ports["nats"], ports["nats_monitor"], "chaos-sandbox"
            )
            return spawn(service, command, log)
        if service == "relay":
            (self.root / "relay.ready").unlink(missing_ok=True)
            command = [
                sys.executable, "-m", "chaos_tui.sandbox.outbox_relay",
                "--postgres-url", postgres.url(ports["postgres"]),
                "--nats-url", nats_server.url(ports["nats"]),
                "--test-drop-every", str(self.settings.sandbox.relay_test_drop_every),
                "--ready-file", str(self.root / "relay.ready"),
            ]
            return spawn(service, command, log)
        raise SandboxError(f"unknown sandbox service {service!r}")

    def _wait_ready(self, service: str, ports: dict) -> None:
        deadline = time.monotonic() + self.settings.sandbox.start_timeout_s
        last_error = "not ready"
        while time.monotonic() < deadline:
            rec = self.record(service)
            if rec is None or not is_running(rec):
                raise SandboxError(f"{service} exited while starting; see {self.logs / service}.log")
            try:
                self._check_ready(service, ports)
                return
            except Exception as exc:
                last_error = str(exc) or type(exc).__name__
            time.sleep(0.1)
        raise SandboxError(f"{service} not ready after {self.settings.sandbox.start_timeout_s:g}s: {last_error}")

    def _check_ready(self, service: str, ports: dict) -> None:
        if service == "postgres":
            postgres.apply_migrations(postgres.url(ports["postgres"]))
        elif service == "nats":
            url = f"http://127.0.0.1:{ports['nats_monitor']}/healthz?js-enabled-only=true"
            httpx.get(url, timeout=1.0).raise_for_status()
            asyncio.run(nats_server.ensure_events_stream(nats_server.url(ports["nats"])))
        elif service == "relay":
            # The relay writes this file once it has reached both servers.
            if not (self.root / "relay.ready").is_file():
                raise SandboxError("relay has not connected yet")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
