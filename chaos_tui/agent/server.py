"""Running the agent: one per state directory, loopback only unless told otherwise, a token
in a 0600 file, leftovers healed before the first request, every lease healed on a clean stop."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import ipaddress
import json
import os
import secrets
import signal
import socket
import stat
import sys
import tempfile
from pathlib import Path

import uvicorn

from chaos_tui.agent import protocol
from chaos_tui.agent.api import make_api
from chaos_tui.agent.guardian import heartbeat, spawn_guardian, stand_down
from chaos_tui.agent.history import LeaseHistory
from chaos_tui.agent.injectors import injectors_for
from chaos_tui.agent.leases import LeaseBook, LeaseJournal
from chaos_tui.agent.protocol import (
    HALT_FILE,
    HISTORY_FILE,
    INFO_FILE,
    LEASES_DIR,
    LOCK_FILE,
    TOKEN_BYTES,
    TOKEN_FILE,
    read_token_file,
    token_problem,
)
from chaos_tui.agent.proxy import ProxyManager
from chaos_tui.core.errors import AgentError
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.guard import check_not_production
from chaos_tui.core.journal import write_atomic
from chaos_tui.docker_engine import compose_gateways
from chaos_tui.sandbox.asgi import QuietServer, run_loop
from chaos_tui.sandbox.processes import start_ticks
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings
from chaos_tui.statedir import StateDirProblem, open_lock_file


def agent_dir(settings: Settings) -> Path:
    return protocol.agent_dir(settings.state_dir)


def load_or_make_token(folder: Path, announce=print) -> str:
    """The agent's token. A missing or weak one (empty, short, odd characters, a symlink,
    readable by others) is replaced with a fresh one, and the log says so; one the agent may
    not replace (someone else's, unreadable, not a file) stops it with one line."""
    path = folder / TOKEN_FILE
    try:
        text, info = read_token_file(path)
    except FileNotFoundError:
        return _make_token(path)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise AgentError(
                f"cannot read the agent token {path}: {exc.strerror}; "
                "fix its permissions or delete it"
            ) from None
        weakness: str | None = "is a symlink"
    else:
        if info.st_uid != os.geteuid():
            raise AgentError(
                f"the agent token {path} belongs to uid {info.st_uid}, not to you: "
                "delete it so a new token is made"
            )
        if not stat.S_ISREG(info.st_mode):
            raise AgentError(f"the agent token {path} is not a regular file: delete it")
        weakness = token_problem(text)
        if weakness is None and info.st_mode & 0o077:
            weakness = f"was readable by others (mode {info.st_mode & 0o777:o})"
        if weakness is None:
            return text
    if folder.stat().st_uid != os.geteuid():
        raise AgentError(
            f"the agent token {path} {weakness} and {folder} is not yours: "
            "delete the token so a new one is made"
        )
    token = _make_token(path)
    announce(f"the agent token {path} {weakness}: replaced with a new one")
    return token


def _make_token(path: Path) -> str:
    """A fresh token, written so that no reader ever sees an empty or half file: a 0600
    temporary file in the same folder, fsynced, renamed over the old name (a symlink there
    is replaced, never followed), then the folder fsynced so the rename survives a crash."""
    token, tmp = secrets.token_urlsafe(TOKEN_BYTES), None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".token.", dir=path.parent)  # mode 0600
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        folder_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)
    except OSError as exc:  # e.g. a full disk: one line, and never an empty token left
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise AgentError(f"cannot write the agent token {path}: {exc.strerror}") from None
    return token


def check_bind(host: str, allow_remote: bool) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        raise AgentError(
            f"refusing to listen on {host}: the agent binds loopback only unless "
            "--allow-remote is given",
            exit_code=ExitCode.USAGE,
        )


def run_agent(
    settings: Settings,
    host: str,
    port: int,
    allow_remote: bool,
    announce=print,
    started_by: str = "user",
) -> None:
    check_not_production(settings)  # before anything else: no lock, no token, no socket
    check_bind(host, allow_remote)
    folder = agent_dir(settings)
    try:  # the CLI checked the state dir; a link that appeared since is refused here too
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = open_lock_file(folder / LOCK_FILE)  # never truncates a link's target
    except StateDirProblem as exc:
        raise AgentError(str(exc)) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held for the agent's whole life
    except BlockingIOError:
        raise AgentError(
            f"an agent already runs for {settings.state_dir} (see {folder / INFO_FILE})"
        ) from None
    if (
        started_by == "guardian"
        and not (folder / INFO_FILE).exists()
        and not protocol.journalled_ids(folder / LEASES_DIR)
    ):
        # A guardian replaces an agent that died leaving agent.json or journalled leases. Both
        # gone by the time this one holds the lock: another agent (a stopper's, a user's)
        # healed the journal and stopped cleanly meanwhile. Serving now would leave an agent
        # nobody stops. Exit 0: the guardian sees nothing left to do.
        announce("started by the guardian, but another agent healed the journal: not serving")
        return
    token = load_or_make_token(folder, announce)
    projects = (settings.docker.project, settings.docker.mesh_project)
    proxies = ProxyManager(gateways=lambda: compose_gateways(projects))
    book = LeaseBook(
        LeaseJournal(folder / LEASES_DIR),
        injectors_for(Sandbox(settings), proxies),
        settings.agent.max_ttl_s,
        folder / HALT_FILE,
        LeaseHistory(folder / HISTORY_FILE),
        leftover_by="guardian" if started_by == "guardian" else "leftover",
        log=announce,
    )
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise AgentError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    proxies.agent_ports.add(sock.getsockname()[1])  # no proxy may relay to the agent itself
    # Its guardian replaces this agent if it dies holding leases, and wakes or replaces it if
    # it freezes: same command, same environment, same state dir; the replacement records
    # its leftover heals as the guardian's.
    command = [
        sys.executable,
        "-P",
        "-m",
        "chaos_tui",
        "agent",
        "--host",
        host,
        "--port",
        str(port),
        *(["--allow-remote"] if allow_remote else []),
        "--started-by",
        "guardian",
    ]
    problem = spawn_guardian(
        folder, command, {**os.environ, "CHAOS_STATE_DIR": str(settings.state_dir)}
    )
    if problem:
        announce(
            f"warning: no guardian for this agent ({problem}): if it dies, its leases "
            "wait for the next chaos-tui command"
        )
    run_loop(_serve(book, proxies, token, sock, folder, announce))


async def _serve(
    book: LeaseBook, proxies: ProxyManager, token: str, sock: socket.socket, folder: Path, announce
) -> None:
    beat = asyncio.create_task(heartbeat(folder))  # the guardian's sign that the loop runs
    for item in await book.heal_leftovers():
        state = "healed" if item["healed"] else f"heal FAILED ({item['error']})"
        announce(f"leftover lease {item['id']} ({item['kind']} {item['params']}): {state}")
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    pid = os.getpid()
    # QuietServer: uvicorn would re-raise the stopping signal and kill the agent before it
    # heals its leases; our own handlers only ask it to stop. Installed before agent.json
    # names us: whoever reads it may send SIGTERM at once, and must get a clean stop.
    server = QuietServer(
        uvicorn.Config(make_api(book, proxies, token, pid), log_level="warning", lifespan="off")
    )
    # What start-up made (FastAPI, pydantic, uvicorn: ~75,000 objects) lives as long as the
    # agent: frozen, a full collection no longer walks it, which took 20-30 ms on a 2-core
    # machine, and stalled every connection the proxies relay meanwhile.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, setattr, server, "should_exit", True)
    write_atomic(
        folder / INFO_FILE,
        json.dumps({"pid": pid, "start_ticks": start_ticks(pid), "url": url}) + "\n",
    )
    announce(f"agent {pid} serving {url} (token in {folder / TOKEN_FILE})")
    reaper = asyncio.create_task(book.reap_forever())
    try:
        await server.serve(sockets=[sock])
    finally:
        reaper.cancel()
        # A clean stop leaves nothing broken; a SIGKILL leaves the journal for the next agent.
        for result in await book.heal_all("shutdown"):
            announce(
                f"stopping: lease {result['id']} "
                f"{'healed' if result['healed'] else 'heal FAILED: ' + str(result['error'])}"
                + (f" ({result['warning']})" if result.get("warning") else "")
            )
        await proxies.stop_all()
        (folder / INFO_FILE).unlink(missing_ok=True)
        beat.cancel()
        stand_down(folder)  # a clean stop: nothing for the guardian to do
