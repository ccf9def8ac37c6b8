"""The injector core every queue binding shares: learn the live injectors from the fault
agent, decide per message, act.

A daemon thread polls the agent's GET /injectors every `poll_s`. Each injector gets a local
deadline: the monotonic time the poll was SENT plus the `ttl_left_s` the agent answered (sent,
not received: the deadline can only come early, never late). Fail safe: an injector acts only
while its deadline is ahead AND the last good poll is younger than `stale_s`. An agent that is
unreachable, killed, answers 401 or anything odd, or a TTL that passed: every injector is off.
A worker that cannot reach the agent (in a container; the agent listens on its host's loopback)
reads a mirror a run keeps of the agent's answer in a Valkey key instead (`mirror.py`), dated by
the key's own age: the same deadlines and the same fail safe.
Nothing here raises into the worker except the InjectedFailure it was asked to raise.

`decide()` runs on every message, so its path with nothing live is one attribute read.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import random
import socket
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from pydantic import ValidationError

from chaos_tui.agent.protocol import (
    INFO_FILE,
    INJECTOR_POLL_S,
    INJECTORS,
    TOKEN_FILE,
    LiveInjectors,
    agent_dir,
    read_token_file,
    token_problem,
)
from chaos_tui.core.injector_spec import InjectorSpec
from chaos_tui.inject.mirror import MirrorReader

log = logging.getLogger("chaos_tui.inject")

CRASH_EXIT_CODE = 86  # a worker killed by a crash injector exits with this (os._exit)
STALE_S = 1.0  # no good poll for this long: every injector is off
POLL_TIMEOUT_S = 0.5  # one poll's HTTP timeout
MIN_POLL_S, MAX_POLL_S = 0.05, 5.0  # whatever the agent says, poll within these

R = TypeVar("R")


class InjectedFailure(Exception):
    """Raised into a message's processing by a `fail` or `partial` injector."""


@dataclass(frozen=True)
class Endpoint:
    """Where the agent answers, and its token; or (a redis:// URL, no token) the key store
    holding a run's mirror of the agent's injectors."""

    url: str
    token: str


Locate = Callable[[], Endpoint | None]


@dataclass(frozen=True)
class _Live:
    lease_id: str
    spec: InjectorSpec
    deadline: float  # monotonic


@dataclass(frozen=True)
class Action:
    """What to do to one delivery: sleep `delay_s` first, then `then` (fail, crash,
    partial) if any. Several injectors matching one message compose this way."""

    delay_s: float
    then: _Live | None
    delay_lease: str | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        return (("delay",) if self.delay_s > 0 or self.delay_lease else ()) + (
            (self.then.spec.kind,) if self.then is not None else ()
        )


def percent_pick(lease_id: str, message_id: str) -> float:
    """Where a message falls in [0, 100) for one lease: stable across retries, processes and
    runs, so `percent` picks the same messages on every delivery."""
    digest = hashlib.blake2b(f"{lease_id}\0{message_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def delay_seconds(spec: InjectorSpec, rng: random.Random) -> float:
    """One delay drawn as the spec says; never negative. `exponential`: delay_ms plus an
    exponential tail of mean jitter_ms (a floor and a long tail, like real latency), or an
    exponential of mean delay_ms without jitter."""
    mean, spread = spec.delay_ms, spec.jitter_ms
    if spec.distribution == "uniform":
        ms = rng.uniform(mean - spread, mean + spread)
    elif spec.distribution == "normal":
        ms = rng.gauss(mean, spread)
    elif spec.distribution == "exponential":
        ms = mean + rng.expovariate(1 / spread) if spread else rng.expovariate(1 / mean)
    else:
        ms = mean
    return max(0.0, ms) / 1000


class _Partial(threading.local):
    spec: InjectorSpec | None = None
    client: InjectorClient | None = None
    lease_id: str = ""


_partial = _Partial()


def checkpoint() -> None:
    """Called by an actor half-way through its work. Under a `partial` injector this is
    where the delivery stops: it raises InjectedFailure (then=fail) or hangs hang_ms and then
    raises (then=hang); the message is retried either way. Otherwise it does nothing."""
    spec, client, lease_id = _partial.spec, _partial.client, _partial.lease_id
    if spec is None or client is None or (spec.kind == "crash" and spec.at == "after"):
        return
    disarm()
    client.stop_half_way(spec, lease_id, "at its checkpoint")


def disarm() -> None:
    _partial.spec = _partial.client = None


def armed() -> bool:
    """A partial injector waits for this thread's actor."""
    return _partial.spec is not None


def finish_partial() -> None:
    """After an actor returned: a partial injector whose checkpoint was never reached cuts
    the delivery here, before it counts as done, so the message is retried (and a crash
    `at: after` ends the process here, after the work and before the ack)."""
    spec, client, lease_id = _partial.spec, _partial.client, _partial.lease_id
    if spec is None or client is None:
        return
    disarm()
    client.stop_half_way(spec, lease_id, "after the work")


def cuts_the_actor(spec: InjectorSpec) -> bool:
    """Whether an injector acts inside the actor's run (at its checkpoint or once it
    returned), so the actor must run wrapped in `call_guarded`."""
    return spec.kind == "partial" or (spec.kind == "crash" and spec.at != "start")


def call_guarded(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run an actor with the partial cut: what every binding wraps its actors' bodies in."""
    try:
        result = fn(*args, **kwargs)
    except BaseException:
        disarm()
        raise
    finish_partial()
    return result


class InjectorClient:
    """One worker process's view of its injectors. Start it once (`start()`, or use it as a
    context manager); it follows a fork (the child polls on its own)."""

    def __init__(
        self,
        locate: Locate | None,
        worker_id: str | None = None,
        stale_s: float = STALE_S,
        seed: int | None = None,
    ) -> None:
        self.locate = locate
        self.worker_id = worker_id or default_worker_id()
        self.stale_s = stale_s
        self.rng = random.Random(seed)
        self.poll_s = INJECTOR_POLL_S
        self._live: tuple[_Live, ...] = ()  # replaced whole by the poller: reads need no lock
        self._last_ok = -1e18  # monotonic time of the last good poll (when it was sent)
        self._counts: Counter[str] = Counter()
        self._last_at: dict[str, float] = {}  # kind -> wall time of its last injection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reachable: bool | None = None  # for one log line per change, not per poll
        self._http: http.client.HTTPConnection | None = None
        self._mirror: MirrorReader | None = None
        self._endpoint: Endpoint | None = None
        if locate is not None:
            me = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _restart_in_child(me))

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **kwargs: Any) -> InjectorClient:
        """CHAOS_AGENT_URL with CHAOS_AGENT_TOKEN (or CHAOS_AGENT_TOKEN_FILE); else
        CHAOS_INJECTORS_MIRROR, a redis:// URL of the key store a run mirrors the agent's
        injectors into; else the agent of CHAOS_STATE_DIR (found again after each failed
        poll: a replacement agent may listen elsewhere); else off, said in one log line.
        CHAOS_WORKER_ID names the worker (default host-pid). Started already."""
        env = os.environ if environ is None else environ
        kwargs.setdefault("worker_id", env.get("CHAOS_WORKER_ID") or None)
        locate: Locate | None = None
        if env.get("CHAOS_AGENT_URL"):
            locate = _fixed_agent(
                env["CHAOS_AGENT_URL"],
                env.get("CHAOS_AGENT_TOKEN"),
                env.get("CHAOS_AGENT_TOKEN_FILE"),
            )
        elif env.get("CHAOS_INJECTORS_MIRROR"):
            mirror = Endpoint(env["CHAOS_INJECTORS_MIRROR"], "")
            locate = lambda: mirror  # noqa: E731
        elif env.get("CHAOS_STATE_DIR"):
            locate = _state_dir_agent(Path(env["CHAOS_STATE_DIR"]))
        else:
            log.warning(
                "chaos injectors off: no agent configured "
                "(CHAOS_AGENT_URL and CHAOS_AGENT_TOKEN, CHAOS_INJECTORS_MIRROR or "
                "CHAOS_STATE_DIR)"
            )
        return cls(locate, **kwargs).start()

    def start(self) -> InjectorClient:
        if self.locate is not None and (self._thread is None or not self._thread.is_alive()):
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll_forever, name="chaos-injectors", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2 * POLL_TIMEOUT_S + 1)
        self._live = ()

    def __enter__(self) -> InjectorClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- per message ---------------------------------------------------------------------------

    def decide(self, queue: str, actor: str, message_id: str) -> Action | None:
        """What to do to this delivery, or None (also whenever the fail safe says off)."""
        live = self._live
        if not live:
            return None
        now = time.monotonic()
        if now - self._last_ok >= self.stale_s:
            return None
        delay_s, delay_lease, then = 0.0, None, None
        for entry in live:
            if now >= entry.deadline or not self._in_scope(entry, queue, actor, message_id):
                continue
            spec = entry.spec
            if spec.rate < 1 and self.rng.random() >= spec.rate:
                continue  # rolled per delivery: a retry rolls again
            if spec.kind == "delay":
                delay_s += delay_seconds(spec, self.rng)
                delay_lease = delay_lease or entry.lease_id
            elif then is None:
                then = entry
        if delay_lease is None and then is None:
            return None
        return Action(delay_s, then, delay_lease)

    def _in_scope(self, entry: _Live, queue: str, actor: str, message_id: str) -> bool:
        scope = entry.spec.scope
        return (
            (scope.queue is None or scope.queue == queue)
            and (scope.actor is None or scope.actor == actor)
            and (scope.worker is None or scope.worker == self.worker_id)
            and (scope.percent >= 100 or percent_pick(entry.lease_id, message_id) < scope.percent)
        )

    def perform(self, action: Action) -> None:
        """Do it: sleep, then crash the process, raise InjectedFailure, or arm the partial
        cut (`checkpoint()`, `finish_partial()`) for this thread."""
        if action.delay_lease is not None:
            self._count("delay")
            self._sleep_while_live(action.delay_s, action.delay_lease)
        entry = action.then
        if entry is None:
            return
        spec = entry.spec
        if not self._still_live(entry.lease_id):
            return  # it ended while we slept
        self._count(spec.kind)
        if spec.kind == "crash" and spec.at == "start":
            crash(f"crash injector of lease {entry.lease_id}")
        if spec.kind == "fail":
            raise InjectedFailure(spec.message)
        if spec.kind in ("partial", "crash"):  # (a crash here is at a checkpoint or after)
            _partial.spec, _partial.client, _partial.lease_id = spec, self, entry.lease_id

    def stop_half_way(self, spec: InjectorSpec, lease_id: str, where: str) -> None:
        if spec.kind == "crash":
            crash(f"crash injector of lease {lease_id} ({where})")
        if spec.then == "hang":
            self._sleep_while_live(spec.hang_ms / 1000, lease_id)
            raise InjectedFailure(f"{spec.message} (partial: hung {where})")
        raise InjectedFailure(f"{spec.message} (partial: stopped {where})")

    # -- what was injected ---------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Injections so far, by kind (delay, fail, crash, partial)."""
        with self._lock:
            return dict(self._counts)

    def last_injected_at(self, kind: str) -> float | None:
        """Wall time of the last injection of this kind, if any."""
        with self._lock:
            return self._last_at.get(kind)

    def live_count(self) -> int:
        """Injectors acting now (after the fail safe)."""
        now = time.monotonic()
        if now - self._last_ok >= self.stale_s:
            return 0
        return sum(1 for entry in self._live if now < entry.deadline)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1
            self._last_at[kind] = time.time()

    def _still_live(self, lease_id: str) -> bool:
        now = time.monotonic()
        return now - self._last_ok < self.stale_s and any(
            e.lease_id == lease_id and now < e.deadline for e in self._live
        )

    def _sleep_while_live(self, seconds: float, lease_id: str) -> None:
        """Sleep, but end early once the lease is no longer live (healed, expired, or the
        agent lost): a heal ends a long delay or hang within a poll."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and self._still_live(lease_id):
            time.sleep(min(left, self.poll_s))

    # -- polling -------------------------------------------------------------------------------

    def _poll_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception as exc:  # never into the worker; the fail safe turns it all off
                self._drop_connection()
                self._say_reachable(False, f"{type(exc).__name__}: {exc}")
                if time.monotonic() - self._last_ok >= self.stale_s:
                    self._live = ()  # off anyway: back to the one-read path of decide()
            self._stop.wait(self.poll_s)

    def _poll_once(self) -> None:
        endpoint = self._endpoint or (self.locate() if self.locate else None)
        if endpoint is None:
            raise ConnectionError("no agent found")
        self._endpoint = endpoint
        sent = time.monotonic()
        if endpoint.url.startswith("redis://"):
            answer, age_s = self._read_mirror(endpoint)
            sent -= age_s  # when the agent was asked, at the latest
        else:
            answer = self._get(endpoint)
        self.poll_s = min(MAX_POLL_S, max(MIN_POLL_S, answer.poll_s))
        self._live = tuple(
            _Live(item.lease_id, item.spec, sent + item.ttl_left_s) for item in answer.injectors
        )
        self._last_ok = sent
        self._say_reachable(True, endpoint.url)

    def _get(self, endpoint: Endpoint) -> LiveInjectors:
        if self._http is None:
            parts = urlsplit(endpoint.url)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"agent URL {endpoint.url!r} is not http://HOST:PORT")
            self._http = http.client.HTTPConnection(
                parts.hostname, parts.port or 80, timeout=POLL_TIMEOUT_S
            )
        try:
            self._http.request(
                "GET", INJECTORS, headers={"Authorization": f"Bearer {endpoint.token}"}
            )
            response = self._http.getresponse()
            body = response.read(1 << 20)
        except (OSError, http.client.HTTPException):
            self._drop_connection()
            raise
        if response.status != 200:
            self._drop_connection()
            raise ConnectionError(f"the agent answered {response.status}")
        try:
            return LiveInjectors.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            raise ConnectionError(
                f"the agent's answer is not a list of injectors ({exc})"
            ) from None

    def _read_mirror(self, endpoint: Endpoint) -> tuple[LiveInjectors, float]:
        if self._mirror is None:
            self._mirror = MirrorReader(endpoint.url, POLL_TIMEOUT_S)
        return self._mirror.read()

    def _drop_connection(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None
        if self._mirror is not None:
            self._mirror.close()
        self._mirror = None
        self._endpoint = None  # found again next time: a replacement agent may move

    def _say_reachable(self, ok: bool, detail: str) -> None:
        if ok != self._reachable:
            self._reachable = ok
            if ok:
                log.info("chaos injectors: polling the agent at %s", detail)
            else:
                log.warning("chaos injectors off: the agent does not answer (%s)", detail)

    def _after_fork(self) -> None:
        self._http = None  # the parent's socket is not ours
        self._mirror = None
        self._live = ()
        self._thread = None
        self._lock = threading.Lock()
        self.start()


def _restart_in_child(ref: weakref.ref[InjectorClient]) -> None:
    client = ref()
    if client is not None and client._thread is not None:
        client._after_fork()


def crash(why: str) -> NoReturn:
    """The worker process dies at once, after one line on stderr: no cleanup, no ack."""
    line = f"chaos-tui: {why}: worker pid {os.getpid()} exits {CRASH_EXIT_CODE} now\n"
    try:
        os.write(sys.stderr.fileno(), line.encode())
    except (OSError, ValueError):
        pass
    os._exit(CRASH_EXIT_CODE)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _fixed_agent(url: str, token: str | None, token_file: str | None) -> Locate:
    def locate() -> Endpoint | None:
        text = token
        if not text and token_file:
            text, _ = read_token_file(Path(token_file))
        if not text or token_problem(text):
            raise ConnectionError("no usable agent token (CHAOS_AGENT_TOKEN[_FILE])")
        return Endpoint(url.rstrip("/"), text)

    return locate


def _state_dir_agent(state_dir: Path) -> Locate:
    folder = agent_dir(state_dir)

    def locate() -> Endpoint | None:
        info = json.loads((folder / INFO_FILE).read_text())
        text, _ = read_token_file(folder / TOKEN_FILE)
        if token_problem(text):
            raise ConnectionError(f"the agent token in {folder} is not usable")
        return Endpoint(str(info["url"]).rstrip("/"), text)

    return locate
