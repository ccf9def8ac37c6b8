"""The agent's guardian: a tiny watcher that heals what a dead or frozen agent holds.

Each agent starts one at start-up (`spawn_guardian`). It runs detached from the agent (its own
session, re-parented away from it by a double fork), so whatever kills the agent or its process
tree (SIGKILL, the OOM killer) leaves the guardian running. It imports the standard library
only (and chaos_tui.core.procinfo, itself stdlib only), so it is up in milliseconds and costs
almost no memory. Several times a second it looks
at its one agent, named by pid and kernel start ticks (a reused pid is never signalled), and:

- agent gone uncleanly (it did not stand the guardian down, and it left `agent.json` or a
  journalled lease behind): start a replacement agent at once, with the same command and
  environment; a new agent heals leftovers before it serves. Then exit: the replacement has
  a guardian of its own. While another agent holds the agent lock (one a stopper or a
  command started, healing the journal before it serves), wait for it instead and look
  again once it serves or lets go. A replacement that takes the lock and finds neither
  `agent.json` nor a journalled lease (another agent healed them and stopped) exits
  without serving (`run_agent`), so none serves with nobody to stop it.
- agent alive but stopped (state T) or hung (its heartbeat file stale) while a journalled
  lease is overdue: SIGCONT it; still frozen `KILL_GRACE_S` past that lease's TTL and past the
  SIGCONT: SIGKILL it and replace it as above.
- agent stopped cleanly: it sends the guardian SIGTERM on its way out; the guardian exits.

It never runs on its own: it ends with its agent, and replacing one is bounded (a few tries
per death, `MAX_REPLACEMENTS` per `REPLACEMENT_WINDOW_S` across generations, so an agent that
cannot start is not restarted forever).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from chaos_tui.core.procinfo import alive, proc_stat

POLL_S = 0.2
HEARTBEAT_FILE = "heartbeat"  # touched by the agent's event loop every HEARTBEAT_S
LOCK_FILE = "agent.lock"  # protocol.LOCK_FILE: flock'd by an agent for its whole life
HEARTBEAT_S = 0.5
HUNG_S = 3.0  # a heartbeat this old means the agent's loop does not run
KILL_GRACE_S = 0.5  # frozen this long past a lease's TTL and past our SIGCONT: killed
CONT_EVERY_S = 1.0
TRIES_PER_DEATH = 3
REPLACE_WAIT_S = 120.0  # a replacement heals leftovers before it serves: give it time
MAX_REPLACEMENTS = 5
REPLACEMENT_WINDOW_S = 600.0


# -- processes, by pid and kernel start ticks ---------------------------------------------------


def signal_exact(pid: int, ticks: int, sig: int) -> bool:
    """Signal the process only if it is still the one we mean."""
    if not alive(pid, ticks):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def lock_held(folder: Path) -> bool:
    """Whether a process holds the agent lock now: an agent starting (it heals leftovers
    before it writes agent.json), serving, or stopping. Asked with a non-blocking shared
    flock, released at once: askers never block each other; an agent that tries its own
    (exclusive) flock in those microseconds loses it as if another agent held it."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file: no agent ever ran here (or a link: none of ours)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases ours, if we got it
    return False


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} guardian {os.getpid()}: {message}", flush=True)


# -- what the agent left on disk ---------------------------------------------------------------


class AgentFolder:
    """`<state>/agent/`: the journal, agent.json, the heartbeat, guardian.json."""

    def __init__(self, folder: Path) -> None:
        self.path = folder

    def lease_files(self) -> list[Path]:
        try:
            return sorted((self.path / "leases").glob("*.json"))
        except OSError:
            return []

    def first_overdue(self, now: float) -> float | None:
        """The earliest expires_at among journalled leases already past it, else None. A file
        that cannot be read counts as overdue now: it may still be a live fault."""
        overdue = []
        for path in self.lease_files():
            lease = _read_json(path)
            expires = lease.get("expires_at") if isinstance(lease, dict) else None
            expires = expires if isinstance(expires, (int, float)) else now
            if expires <= now:
                overdue.append(expires)
        return min(overdue, default=None)

    def heartbeat_age(self, now: float, since: float) -> float:
        """Seconds since the agent's loop last touched its heartbeat (or since `since`, when
        that is later: the guardian started, or the agent was just continued)."""
        try:
            beat = (self.path / HEARTBEAT_FILE).stat().st_mtime
        except OSError:
            beat = since
        return now - max(beat, since)

    def serving(self) -> dict | None:
        """agent.json, if it names a live process."""
        info = _read_json(self.path / "agent.json")
        if isinstance(info, dict) and alive(info.get("pid", -1), info.get("start_ticks", -1)):
            return info
        return None

    def names(self, pid: int) -> bool:
        info = _read_json(self.path / "agent.json")
        return isinstance(info, dict) and info.get("pid") == pid

    def budget_left(self, now: float) -> bool:
        """Count this replacement against the shared budget; False when it is spent."""
        path = self.path / "guardian-replacements.json"
        times = [
            t
            for t in (_read_json(path) or [])
            if isinstance(t, (int, float)) and t > now - REPLACEMENT_WINDOW_S
        ]
        if len(times) >= MAX_REPLACEMENTS:
            return False
        try:
            _write_atomic(path, json.dumps(times + [now]) + "\n")
        except OSError:
            pass  # not counted; the tries per death still bound this guardian
        return True


# -- the watch -----------------------------------------------------------------------------------


class Guardian:
    def __init__(self, folder: Path, agent_pid: int, agent_ticks: int, command: list[str]) -> None:
        self.folder = AgentFolder(folder)
        self.pid, self.ticks = agent_pid, agent_ticks
        self.command = command
        self.since = time.time()  # heartbeats before this are not held against the agent
        self.last_cont = 0.0
        self.woken_at: float | None = None  # first SIGCONT while it is frozen

    def watch(self) -> int:
        while True:
            now = time.time()
            stat = proc_stat(self.pid)
            if stat is None or stat[1] != self.ticks:
                return self.after_death()
            stopped = stat[0] in "Tt"
            frozen = stopped or self.folder.heartbeat_age(now, self.since) > HUNG_S
            overdue = self.folder.first_overdue(now) if frozen else None
            if overdue is None:
                self.woken_at = None  # running, or nothing it should be healing now
            elif self.woken_at is not None and now >= max(overdue, self.woken_at) + KILL_GRACE_S:
                _log(
                    f"agent {self.pid} still {'stopped' if stopped else 'hung'} "
                    f"{now - overdue:.1f}s past a lease's TTL, though woken: SIGKILL; a "
                    "replacement heals its leases"
                )
                signal_exact(self.pid, self.ticks, signal.SIGKILL)
                self.wait_gone(5.0)
                return self.after_death()
            elif now - self.last_cont >= CONT_EVERY_S:
                _log(
                    f"agent {self.pid} is {'stopped' if stopped else 'hung'} with a lease "
                    "past its TTL: SIGCONT"
                )
                signal_exact(self.pid, self.ticks, signal.SIGCONT)
                self.last_cont = now
                self.woken_at = self.woken_at or now
                if stopped:  # it was not beating because it was stopped: let it resume
                    self.since = now
            time.sleep(POLL_S)

    def wait_gone(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while alive(self.pid, self.ticks) and time.monotonic() < deadline:
            time.sleep(0.02)

    def after_death(self) -> int:
        tries = 0
        held_since: float | None = None
        while True:
            # Asked again before each try: someone else (a stopper, a user's command) may have
            # started an agent meanwhile, which heals the leftovers before it serves; a
            # replacement started after that one stopped would serve for ever, owned by nobody.
            left = self.folder.lease_files()
            if not left and not self.folder.names(self.pid):
                return 0  # gone cleanly, or healed since: nothing to do
            if self.folder.serving() is not None:
                return 0  # another agent serves this state dir: it healed them first
            if lock_held(self.folder.path):
                # Another agent holds the lock and has not written agent.json: it is healing
                # the journal before it serves (and has a guardian of its own), or stopping.
                # Wait for it rather than start one that loses the lock, and look again.
                now = time.monotonic()
                if held_since is None:
                    held_since = now
                    _log(f"agent {self.pid} is dead; another agent holds the lock: waiting")
                elif now - held_since > REPLACE_WAIT_S:
                    _log(
                        f"another agent held the lock for {REPLACE_WAIT_S:.0f}s without "
                        "serving; it has a guardian of its own"
                    )
                    return 0
                time.sleep(POLL_S)
                continue
            held_since = None
            if tries == TRIES_PER_DEATH:
                _log(f"gave up after {TRIES_PER_DEATH} tries; run `chaos-tui heal`")
                return 1
            tries += 1
            if tries == 1:
                _log(f"agent {self.pid} died holding {len(left)} lease(s): starting a replacement")
            if not self.folder.budget_left(time.time()):
                _log(
                    f"gave up: {MAX_REPLACEMENTS} replacements within "
                    f"{REPLACEMENT_WINDOW_S:.0f}s already; run `chaos-tui heal`"
                )
                return 1
            outcome = self.replace()
            if outcome is not None:
                return outcome
            if not lock_held(self.folder.path):
                time.sleep(tries)  # it failed by itself (not for the lock): back off

    def replace(self) -> int | None:
        """Start one replacement and wait until an agent serves (0), or it died (None)."""
        with open(self.folder.path / "agent.log", "ab") as log:
            child = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.hand_over(child.pid, (proc_stat(child.pid) or ("", -1))[1])
        deadline = time.monotonic() + REPLACE_WAIT_S
        while time.monotonic() < deadline:
            info = self.folder.serving()
            if info is not None:
                _log(f"agent {info['pid']} serves again")
                return 0
            if child.poll() is not None:
                _log(f"replacement {child.pid} exited with {child.returncode}")
                return None
            time.sleep(POLL_S)
        _log(
            f"replacement {child.pid} did not serve within {REPLACE_WAIT_S:.0f}s; it has "
            "a guardian of its own"
        )
        return 1

    def hand_over(self, pid: int, ticks: int) -> None:
        """If a tool spawned the dead agent (and will stop it when done), it now owns the
        replacement instead: spawned.json names the new one. Done at once, before the
        replacement serves, so a tool that stops its agent as soon as one serves finds it."""
        path = self.folder.path / "spawned.json"
        spawned = _read_json(path)
        if isinstance(spawned, dict) and spawned.get("pid") == self.pid:
            try:
                _write_atomic(path, json.dumps({**spawned, "pid": pid, "start_ticks": ticks}))
            except OSError:
                pass  # then the tool finds its agent gone, and the replacement stays up


def _stand_down(*_) -> None:
    """SIGTERM: the agent stopped cleanly (or a test cleans up): exit now, wherever we are (a
    replacement already started keeps running; it has a guardian of its own)."""
    raise SystemExit(0)


# -- the agent's side: start its guardian, beat, stand it down ---------------------------------


def spawn_guardian(folder: Path, agent_command: list[str], env: dict[str, str]) -> str | None:
    """Start this agent's guardian (detached; it forks once more and writes guardian.json).
    Returns why it could not be started, if it could not: the agent still serves."""
    pid = os.getpid()
    command = [
        sys.executable,
        "-P",
        "-m",
        "chaos_tui.agent.guardian",
        str(folder),
        str(pid),
        str((proc_stat(pid) or ("", -1))[1]),
        "--",
        *agent_command,
    ]
    try:
        with open(folder / "agent.log", "ab") as log:
            first = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        first.wait(10)  # it only forks and exits
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None


async def heartbeat(folder: Path) -> None:
    """Touch the heartbeat file while the event loop runs: a stale one means a hung agent."""
    path = folder / HEARTBEAT_FILE
    while True:
        path.touch()
        await asyncio.sleep(HEARTBEAT_S)


def stand_down(folder: Path, agent_pid: int | None = None) -> None:
    """End the guardian that watches this agent (this process by default), if any: a clean
    stop, or a stopper about to SIGKILL the agent, which heals what it leaves itself."""
    record = _read_json(folder / "guardian.json")
    agent_pid = os.getpid() if agent_pid is None else agent_pid
    if isinstance(record, dict) and record.get("agent_pid") == agent_pid:
        signal_exact(record.get("pid", -1), record.get("start_ticks", -1), signal.SIGTERM)


def main(argv: list[str]) -> int:
    """guardian AGENT_DIR AGENT_PID AGENT_TICKS -- COMMAND..."""
    folder, pid, ticks = Path(argv[0]), int(argv[1]), int(argv[2])
    command = argv[argv.index("--") + 1 :]
    if os.fork():  # leave the agent's process tree: a kill of its tree must not reach us
        os._exit(0)
    guardian = Guardian(folder, pid, ticks, command)
    own = {
        "pid": os.getpid(),
        "start_ticks": (proc_stat(os.getpid()) or ("", -1))[1],
        "agent_pid": pid,
        "agent_start_ticks": ticks,
    }
    record = folder / "guardian.json"
    signal.signal(signal.SIGTERM, _stand_down)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        _write_atomic(record, json.dumps(own) + "\n")
        _log(f"watching agent {pid}")
        return guardian.watch()
    finally:
        if (_read_json(record) or {}).get("pid") == own["pid"]:
            record.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
