"""What the agent and its clients agree on: the routes, the request and response bodies, the
files of the agent's state folder, and how the lease journal and the token file read.

Both sides import this module: the server (`api.py`, `leases.py`, `server.py`) and the client
(`client.py`, hence the console and headless runs). So it imports neither FastAPI nor the
server nor the sandbox: a console that only talks to the agent must not pay for the stack
that serves it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chaos_tui.core.injector_spec import InjectorSpec

# -- the agent's folder in a state dir ---------------------------------------------------------

AGENT_DIR = "agent"  # under the state dir
INFO_FILE = "agent.json"  # {pid, start_ticks, url} of the agent serving now
TOKEN_FILE = "token"  # the bearer token, 0600
LEASES_DIR = "leases"  # the journal: one <lease id>.json per live lease
HISTORY_FILE = "history.jsonl"  # every lease that ended, one JSON object a line
HALT_FILE = "halted"  # the halt latch: present, no new lease lands
LOCK_FILE = "agent.lock"  # flock'd by the agent for its whole life
LOG_FILE = "agent.log"  # a spawned agent's output
SPAWNED_FILE = "spawned.json"  # the agent this tool spawned (stopped when it is done)


def agent_dir(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / AGENT_DIR


# -- routes ------------------------------------------------------------------------------------

HEALTH = "/health"  # the only route open without the token
STATUS = "/status"
KINDS = "/kinds"
LEASES = "/leases"
HISTORY = "/history"
HEAL_ALL = "/heal"
HALT = "/halt"  # POST halts, GET reads the latch, DELETE lifts it
PROXIES = "/proxies"
INJECTORS = "/injectors"  # the live worker injectors, what job workers poll


def lease_path(lease_id: str) -> str:
    return f"{LEASES}/{lease_id}"


def proxy_path(name: str) -> str:
    return f"{PROXIES}/{name}"


# -- the token ---------------------------------------------------------------------------------

TOKEN_BYTES = 32  # from `secrets`: 43 URL-safe characters
MIN_TOKEN_CHARS = 32
MAX_TOKEN_CHARS = 256
TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def token_problem(text: str) -> str | None:
    """Why a token must not be used (None if it may). An empty token once switched
    authentication off; a short one can be guessed."""
    if not text:
        return "is empty"
    if len(text) < MIN_TOKEN_CHARS:
        return f"is too short ({len(text)} characters, at least {MIN_TOKEN_CHARS} needed)"
    if len(text) > MAX_TOKEN_CHARS:
        return f"is too long (more than {MAX_TOKEN_CHARS} characters)"
    if not set(text) <= TOKEN_ALPHABET:
        return "holds characters a token never has"
    return None


def read_token_file(path: Path) -> tuple[str, os.stat_result]:
    """The token file's text and status, never through a symlink (ELOOP) and never blocking
    on a FIFO someone put there."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "", info
        data = os.read(fd, MAX_TOKEN_CHARS + 2)  # room for the newline, and for "too long"
    finally:
        os.close(fd)
    return data.decode("ascii", "replace").strip(), info  # not ASCII: token_problem says no


# -- leases ------------------------------------------------------------------------------------

LeaseState = Literal["applying", "applied", "healing", "failed"]


class LeaseRequest(BaseModel):
    """What a caller asks for. A TTL is required: nothing may stay broken open-endedly."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="caller-chosen id; a known id is refused with 409",
    )
    kind: str = Field(..., min_length=1, max_length=64, description="fault kind, see GET /kinds")
    target: str = Field("sandbox", min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    ttl_s: float = Field(..., gt=0, description="seconds until the agent heals it by itself")
    scope: str = Field("full", min_length=1, max_length=32)
    owner: str = Field("", max_length=128, description="who asked, in words")
    run_id: str = Field(
        "", pattern=r"^[A-Za-z0-9_-]{0,64}$", description="the run that asked, if any"
    )
    # The dead man's switch: the agent heals the lease within 2 s of this process's death.
    owner_pid: int | None = Field(
        None,
        ge=1,
        le=1 << 22,
        description="the process holding the fault; when it dies the agent heals the lease at once",
    )
    orphan_ok: bool = Field(
        False,
        description="true: no owner process; the lease lives until its TTL or a DELETE "
        "(say so explicitly)",
    )


class Lease(LeaseRequest):
    """A lease the agent holds (or held): what GET /leases lists and the journal stores."""

    id: str
    created_at: float
    expires_at: float
    state: LeaseState = "applying"
    data: dict[str, Any] = Field(default_factory=dict)  # what the injector recorded
    error: str | None = None
    owner_start_ticks: int | None = None  # with owner_pid: that exact process, not a reused pid


def read_lease_files(root: Path) -> tuple[list[Lease], list[Path]]:
    """The journalled leases in `root`, and the files that could not be read as one (a lease
    nobody can parse may still be a live fault: callers report those). A missing folder holds
    none. The one reader of the journal's format, for the agent and its clients alike."""
    leases: list[Lease] = []
    unreadable: list[Path] = []
    try:
        paths = sorted(root.glob("*.json"))
    except OSError:
        return leases, unreadable
    for path in paths:
        try:
            lease = Lease.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError, ValidationError):
            unreadable.append(path)
            continue
        if path.stem != lease.id:
            unreadable.append(path)  # not a file the journal wrote
            continue
        leases.append(lease)
    return leases, unreadable


def journalled_ids(root: Path) -> list[str]:
    """The ids of every lease file in the journal, readable or not, sorted."""
    try:
        return sorted(path.stem for path in root.glob("*.json"))
    except OSError:
        return []


class EndedLease(BaseModel):
    """A lease that ended, as the history records it: who ended it (owner, ttl, owner-died,
    halt, heal-all, shutdown, leftover, guardian, apply-failed), when, and any error."""

    model_config = ConfigDict(extra="allow")

    id: str
    by: str = ""
    kind: str = ""
    target: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    run_id: str = ""
    owner: str = ""
    owner_pid: int | None = None
    created_at: float | None = None
    expires_at: float | None = None
    owner_died_seen_at: float | None = None
    heal_started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None


class HealResult(BaseModel):
    """One lease of a heal-all or a halt: healed or not, and why not."""

    id: str
    healed: bool
    error: str | None = None
    warning: str | None = None  # healed, but the disk said no to something


class RecoveredLease(HealResult):
    """A dead agent's leftover lease, healed (or not) before this agent served anyone."""

    kind: str = "?"
    params: dict[str, Any] = Field(default_factory=dict)
    run_id: str = ""


# -- bodies of the other routes ----------------------------------------------------------------


class Health(BaseModel):
    """All that anyone may learn without the token."""

    ok: bool
    version: str


class Status(Health):
    pid: int
    leases: int
    halted: bool
    started_at: float
    recovered: list[RecoveredLease]  # leftovers of a dead agent, healed at start-up
    reaper_error: str | None = None


class HealResults(BaseModel):
    results: list[HealResult]


class HaltState(BaseModel):
    halted: bool


class ProxyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    listen: str = Field(
        "127.0.0.1:0", max_length=80, description="HOST:PORT on loopback; port 0 picks one"
    )
    upstream: str = Field(..., max_length=300, description="HOST:PORT to relay to")


class ProxyView(BaseModel):
    name: str
    listen: str
    upstream: str
    enabled: bool
    listening: bool
    connections: int
    refused: int = 0  # connections turned away at the cap
    toxics: list[dict[str, Any]]


# -- worker injectors (lease kind worker.inject) -----------------------------------------------

WORKER_INJECT = "worker.inject"  # the lease kind: while it lives, workers act on its injectors
INJECTOR_POLL_S = 0.25  # how often a worker asks GET /injectors (the agent says so in each answer)
MAX_INJECTORS = 16  # per lease


class WorkerInjectParams(BaseModel):
    """The params of a worker.inject lease: the injectors the workers act on while it lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    injectors: tuple[InjectorSpec, ...] = Field(..., min_length=1, max_length=MAX_INJECTORS)


class LiveInjector(BaseModel):
    """One injector a worker should act on now, and for how long at most: the worker counts
    `ttl_left_s` from when it received the answer, on its own monotonic clock."""

    lease_id: str
    run_id: str = ""
    spec: InjectorSpec
    ttl_left_s: float = Field(..., ge=0)


class LiveInjectors(BaseModel):
    """GET /injectors: every injector of every live worker.inject lease (none while halted)."""

    poll_s: float = INJECTOR_POLL_S
    injectors: list[LiveInjector] = Field(default_factory=list)


# Where a worker that cannot reach the agent (a container: the agent listens on the host's
# loopback) reads its injectors instead: a Valkey/Redis key a run keeps refreshing with the
# agent's answer (the Docker target's job queue; chaos_tui.inject reads it).
INJECTOR_MIRROR_KEY = "chaos:injectors"


class MirroredInjectors(BaseModel):
    """The value of INJECTOR_MIRROR_KEY. The reader dates it without trusting any clock but
    the key store's: the key was written `expires_ms - PTTL` ms ago, and the agent was asked
    `polled_ago_s` before that, so every deadline it derives can only come early."""

    expires_ms: int = Field(gt=0, description="the PX the key was written with")
    polled_ago_s: float = Field(ge=0, description="from sending the agent poll to the write")
    live: LiveInjectors
