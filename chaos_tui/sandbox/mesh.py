"""The NATS mesh: two JetStream domains joined by a leafnode link that a fault can cut.

`nats_a` (domain sea-a) accepts leafnode connections on its link port; `nats_b` (domain sea-b)
has one leafnode remote listing several URLs, each an agent proxy in front of A's link port.
Cutting one proxy makes B fail over to another URL (`scope: one-node`); cutting all of them
partitions the domains (`scope: full`). A must not gossip its leafnode URLs
(`no_advertise`), or B would learn A's real address and go round the proxies.

SEA_EVENTS lives in sea-a; SEA_EVENTS_MIRROR in sea-b mirrors it through the domain's API
prefix (`$JS.sea-a.API`). A mirror resumes from its last sequence after the link heals, so
catch-up is judged by the mirror's last_seq reaching the origin's; loss (an origin that dropped
messages before the mirror saw them) shows only as gaps (`num_deleted`), never in last_seq.

Measured with nats-server 2.15.1 (see tests/test_mesh.py):
- a cut shorter than about 9 s: the mirror catches up 0.1-0.5 s after heal (the leafnode
  reconnect makes B resync at once);
- a cut of 10 s or more outlives the mirror's 10 s stall check, which then retries its source
  consumer on its own timer; a reconnect while such a retry is pending does not cut it short.
  Catch-up after heal then took anything from 0.3 s to 48 s (cuts of 12-60 s: 38.6, 37.3,
  32.5, 26.7, 13.3 and 48.5 s; but 0.3 s after 15 s and 0.4 s after 90 s), so an invariant
  window must allow about a minute after heal;
- a mirror created while the link is down (even 0.0-0.3 s before it came up) waited about 40 s
  for its first contact, so ensure_mesh_streams waits for the link before making the mirror.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chaos_tui.sandbox.nats import DUPLICATE_WINDOW_S, EVENTS_STREAM, EVENTS_SUBJECTS, server_binary
from chaos_tui.sandbox.postgres import SandboxError

MIRROR_STREAM = "SEA_EVENTS_MIRROR"
PROBE_SUBJECT = "sea.event.chaos_probe.v1"
DOMAIN_A = "sea-a"
DOMAIN_B = "sea-b"
# How long B waits between leafnode connect attempts. nats-server 2.15 wants a duration
# string here (a bare integer is refused: "reconnect should be converted to a duration"), and
# accepts it only at the `leafnodes` level, not inside a remote block.
LEAF_RECONNECT = "250ms"


def _quote(text: object) -> str:
    return json.dumps(str(text))  # a JSON string is a valid NATS config string


def _server(server_name: str, client_port: int, monitor_port: int, store_dir: Path,
            domain: str) -> str:
    """What both servers share: name, loopback listeners, JetStream in their own domain."""
    return f"""\
server_name: {_quote(server_name)}
listen: "127.0.0.1:{client_port}"
http: "127.0.0.1:{monitor_port}"
jetstream {{
  store_dir: {_quote(store_dir)}
  domain: {_quote(domain)}
}}
"""


def write_config_a(path: Path, store_dir: Path, client_port: int, monitor_port: int,
                   leaf_port: int, domain: str = DOMAIN_A, server_name: str = "nats_a") -> Path:
    """The hub: JetStream in `domain`, leafnode connections accepted on `leaf_port`, and its
    leafnode URLs never advertised (so a remote keeps going through the proxies it was given)."""
    text = _server(server_name, client_port, monitor_port, store_dir, domain) + f"""\
leafnodes {{
  listen: "127.0.0.1:{leaf_port}"
  no_advertise: true
}}
"""
    return _write(path, text)


def write_config_b(path: Path, store_dir: Path, client_port: int, monitor_port: int,
                   domain: str = DOMAIN_B, remote_urls: Sequence[str] = (),
                   server_name: str = "nats_b") -> Path:
    """The spoke: JetStream in `domain`, one leafnode remote to A listing every path (proxy)."""
    if not remote_urls:
        raise SandboxError("nats_b needs at least one leafnode remote URL")
    urls = ", ".join(_quote(leaf_url(u)) for u in remote_urls)
    text = _server(server_name, client_port, monitor_port, store_dir, domain) + f"""\
leafnodes {{
  reconnect: {_quote(LEAF_RECONNECT)}
  remotes: [
    {{ urls: [{urls}] }}
  ]
}}
"""
    return _write(path, text)


def _write(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def leaf_url(address: str) -> str:
    """`127.0.0.1:7522` or a full URL -> `nats-leaf://127.0.0.1:7522`."""
    address = str(address)
    return address if "://" in address else f"nats-leaf://{address}"


def server_command(conf_path: Path) -> list[str]:
    return [str(server_binary()), "-c", str(conf_path)]


# -- monitoring --------------------------------------------------------------------------------

def _get_json(url: str, timeout: float) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_ready(monitor_port: int, timeout_s: float = 15.0,
               alive: Callable[[], bool] | None = None) -> float:
    """Wait until the server answers healthy with JetStream on; returns the seconds it took.
    `alive` (e.g. is_running of its record) ends the wait at once when the server has died."""
    url = f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true"
    started = time.monotonic()
    deadline = started + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise SandboxError(f"nats on monitor port {monitor_port} exited before it was ready")
        try:
            if _get_json(url, 1.0).get("status") == "ok":
                return time.monotonic() - started
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise SandboxError(f"nats on monitor port {monitor_port} not ready after {timeout_s:g} s "
                       f"({last})")


def leafz(monitor_port: int, timeout_s: float = 2.0) -> list[dict]:
    """The server's leafnode connections (/leafz): on B, `port` is the proxy it went through."""
    return _get_json(f"http://127.0.0.1:{monitor_port}/leafz", timeout_s).get("leafs") or []


# -- streams -----------------------------------------------------------------------------------

async def _connect(url: str):
    from chaos_tui import nats_client

    return await nats_client.connect(url, connect_timeout=3, max_reconnect_attempts=2,
                              reconnect_time_wait=0.5, allow_reconnect=True)


async def ensure_mesh_streams(a_url: str, b_url: str, domain_a: str = DOMAIN_A,
                              origin_max_msgs: int = 0, link_timeout_s: float = 10.0) -> bool:
    """SEA_EVENTS in A and SEA_EVENTS_MIRROR in B; calling again changes nothing.

    `origin_max_msgs` > 0 caps the origin (discard old): for tests only, to show that an
    origin too small for the outage loses messages the mirror never saw.

    A mirror made even a few milliseconds before the leafnode link is up waits about 40 s
    for its first contact, so a new mirror is made only once B reaches sea-a's API (waiting
    up to `link_timeout_s`; past that it is made anyway and catches up late). Returns whether
    B reached sea-a.
    """
    from nats.js.api import DiscardPolicy, ExternalStream, StreamConfig, StreamSource
    from nats.js.errors import NotFoundError

    origin = StreamConfig(
        name=EVENTS_STREAM,
        subjects=list(EVENTS_SUBJECTS),
        duplicate_window=DUPLICATE_WINDOW_S,
        max_msgs=origin_max_msgs if origin_max_msgs > 0 else -1,
        discard=DiscardPolicy.OLD,
    )
    mirror = StreamConfig(
        name=MIRROR_STREAM,
        mirror=StreamSource(name=EVENTS_STREAM,
                            external=ExternalStream(api=f"$JS.{domain_a}.API")),
    )
    nc = await _connect(a_url)
    try:
        await _ensure(nc.jetstream(timeout=5), origin, ("max_msgs",))
    finally:
        await nc.close()
    nc = await _connect(b_url)
    try:
        js = nc.jetstream(timeout=5)
        try:
            await js.stream_info(MIRROR_STREAM)
            return await _reaches(nc, domain_a, 0)
        except NotFoundError:
            pass
        linked = await _reaches(nc, domain_a, link_timeout_s)
        await _ensure(js, mirror, ())
        return linked
    finally:
        await nc.close()


async def _reaches(nc, domain: str, timeout_s: float) -> bool:
    """Whether SEA_EVENTS in `domain` answers through this server (i.e. the link is up)."""
    import nats.errors

    js = nc.jetstream(domain=domain, timeout=1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await js.stream_info(EVENTS_STREAM)
            return True
        except (TimeoutError, nats.errors.Error):  # no responders while the link is down
            if time.monotonic() >= deadline:
                return False
        await asyncio.sleep(0.05)


async def _ensure(js, config, updatable: tuple[str, ...]) -> None:
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        return
    if any(getattr(info.config, key) != getattr(config, key) for key in updatable):
        await js.update_stream(info.config.evolve(**{k: getattr(config, k) for k in updatable}))


async def _stream_info(url_or_nc: Any, stream: str):
    """Stream info through a URL (connect, ask, close) or a connected client (just ask)."""
    if not isinstance(url_or_nc, str):
        return await url_or_nc.jetstream(timeout=3).stream_info(stream)
    nc = await _connect(url_or_nc)
    try:
        return await nc.jetstream(timeout=3).stream_info(stream)
    finally:
        await nc.close()


async def mirror_state(b_url: Any) -> dict:
    """The mirror as B sees it. `active_ns` is nanoseconds since B last heard from the origin
    (nats-py gives the server's raw integer; -1 or None: never); it grows through a cut, while
    `lag` keeps its last value and is stale. Pass a URL or an already connected client."""
    info = await _stream_info(b_url, MIRROR_STREAM)
    source = info.mirror
    active = getattr(source, "active", None) if source is not None else None
    return {
        "last_seq": info.state.last_seq,
        "first_seq": info.state.first_seq,
        "messages": info.state.messages,
        "num_deleted": info.state.num_deleted or 0,  # gaps: what the origin dropped unseen
        "active_ns": active,
        "active_s": active / 1e9 if isinstance(active, int) and active >= 0 else None,
        "lag": getattr(source, "lag", None) if source is not None else None,
        "error": getattr(source, "error", None) if source is not None else None,
    }


async def origin_last_seq(a_url: Any) -> int:
    """SEA_EVENTS' last sequence in A (a URL or a connected client)."""
    return (await _stream_info(a_url, EVENTS_STREAM)).state.last_seq
