"""Running the agent: one per state directory, loopback only unless told otherwise, a token
in a 0600 file, leftovers healed before the first request, every lease healed on a clean stop."""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import json
import os
import secrets
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from chaos_tui.agent.api import make_api
from chaos_tui.agent.guardian import heartbeat, spawn_guardian, stand_down
from chaos_tui.agent.injectors import injectors_for
from chaos_tui.agent.leases import LeaseBook, LeaseJournal
from chaos_tui.agent.proxy import ProxyManager
from chaos_tui.core.journal import write_atomic
from chaos_tui.sandbox.asgi import QuietServer, run_loop
from chaos_tui.sandbox.processes import start_ticks
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings


class AgentError(Exception):
    """The agent cannot start: one line for the user."""


def agent_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / "agent"


def load_or_make_token(folder: Path) -> str:
    path = folder / "token"
    if path.exists():
        info = path.stat()
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise AgentError(f"{path} must belong to you and be readable by you alone "
                             "(chmod 600), or be deleted so a new token is made")
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def check_bind(host: str, allow_remote: bool) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        raise AgentError(f"refusing to listen on {host}: the agent binds loopback only unless "
                         "--allow-remote is given")


def run_agent(settings: Settings, host: str, port: int, allow_remote: bool,
              announce=print) -> None:
    check_bind(host, allow_remote)
    folder = agent_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / "agent.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held for the agent's whole life
    except BlockingIOError:
        raise AgentError(f"an agent already runs for {settings.state_dir} "
                         f"(see {folder / 'agent.json'})") from None
    token = load_or_make_token(folder)
    proxies = ProxyManager()
    book = LeaseBook(LeaseJournal(folder / "leases"), injectors_for(Sandbox(settings), proxies),
                     settings.agent.max_ttl_s, folder / "halted")
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise AgentError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    # Its guardian replaces this agent if it dies holding leases, and wakes or replaces it if
    # it freezes: same command, same environment, same state dir.
    command = [sys.executable, "-m", "chaos_tui", "agent", "--host", host, "--port", str(port),
               *(["--allow-remote"] if allow_remote else [])]
    problem = spawn_guardian(folder, command,
                             {**os.environ, "CHAOS_STATE_DIR": str(settings.state_dir)})
    if problem:
        announce(f"warning: no guardian for this agent ({problem}): if it dies, its leases "
                 "wait for the next chaos-tui command")
    run_loop(_serve(book, proxies, token, sock, folder, announce))



async def _serve(book: LeaseBook, proxies: ProxyManager, token: str, sock: socket.socket,
                 folder: Path, announce) -> None:
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
    server = QuietServer(uvicorn.Config(make_api(book, proxies, token, pid), log_level="warning",
                                    lifespan="off"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, setattr, server, "should_exit", True)
    write_atomic(folder / "agent.json", json.dumps(
        {"pid": pid, "start_ticks": start_ticks(pid), "url": url}) + "\n")
    announce(f"agent {pid} serving {url} (token in {folder / 'token'})")
    reaper = asyncio.create_task(book.reap_forever())
    try:
        await server.serve(sockets=[sock])
    finally:
        reaper.cancel()
        # A clean stop leaves nothing broken; a SIGKILL leaves the journal for the next agent.
        for result in await book.heal_all():
            announce(f"stopping: lease {result['id']} "
                     f"{'healed' if result['healed'] else 'heal FAILED: ' + str(result['error'])}")
        await proxies.stop_all()
        (folder / "agent.json").unlink(missing_ok=True)
        beat.cancel()
        stand_down(folder)  # a clean stop: nothing for the guardian to do
