"""The platform's NATS names and client calls: the event stream, the mesh's mirror, the
probe subject, and the calls that make and read them. Both the sandbox and the Docker stack
serve these; scenarios and targets import them from here.

Measured behaviour of the mirror across a cut is written down in sandbox/mesh.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

EVENTS_STREAM = "SEA_EVENTS"
EVENTS_SUBJECTS = ["sea.event.>"]
DUPLICATE_WINDOW_S = 120.0  # Nats-Msg-Id dedupe: longer than any outage a scenario makes
MIRROR_STREAM = "SEA_EVENTS_MIRROR"
PROBE_SUBJECT = "sea.event.chaos_probe.v1"
DOMAIN_A = "sea-a"
DOMAIN_B = "sea-b"


async def ensure_events_stream(nats_url: str) -> None:
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError

    from chaos_tui import nats_client

    nc = await nats_client.connect(nats_url, connect_timeout=3, max_reconnect_attempts=0)
    try:
        js = nc.jetstream(timeout=5)
        try:
            await js.stream_info(EVENTS_STREAM)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=EVENTS_STREAM,
                    subjects=EVENTS_SUBJECTS,
                    duplicate_window=DUPLICATE_WINDOW_S,
                )
            )
    finally:
        await nc.close()


# -- monitoring --------------------------------------------------------------------------------


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        found: dict[str, Any] = json.loads(resp.read())
        return found


def leafz(monitor_port: int, timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """The server's leafnode connections (/leafz): on B, `port` is the proxy it went through."""
    return _get_json(f"http://127.0.0.1:{monitor_port}/leafz", timeout_s).get("leafs") or []


# -- the mesh's streams ------------------------------------------------------------------------


async def _connect(url: str) -> Any:
    from chaos_tui import nats_client

    return await nats_client.connect(
        url,
        connect_timeout=3,
        max_reconnect_attempts=2,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
    )


async def ensure_mesh_streams(
    a_url: str,
    b_url: str,
    domain_a: str = DOMAIN_A,
    origin_max_msgs: int = 0,
    link_timeout_s: float = 10.0,
) -> bool:
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
        mirror=StreamSource(name=EVENTS_STREAM, external=ExternalStream(api=f"$JS.{domain_a}.API")),
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


async def _reaches(nc: Any, domain: str, timeout_s: float) -> bool:
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


async def _ensure(js: Any, config: Any, updatable: tuple[str, ...]) -> None:
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        return
    if any(getattr(info.config, key) != getattr(config, key) for key in updatable):
        await js.update_stream(info.config.evolve(**{k: getattr(config, k) for k in updatable}))


async def _stream_info(url_or_nc: Any, stream: str) -> Any:
    """Stream info through a URL (connect, ask, close) or a connected client (just ask)."""
    if not isinstance(url_or_nc, str):
        return await url_or_nc.jetstream(timeout=3).stream_info(stream)
    nc = await _connect(url_or_nc)
    try:
        return await nc.jetstream(timeout=3).stream_info(stream)
    finally:
        await nc.close()


async def mirror_state(b_url: Any) -> dict[str, Any]:
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
    return int((await _stream_info(a_url, EVENTS_STREAM)).state.last_seq)
