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

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

# The platform's names and client calls, importable from here as before.
from chaos_tui.platform.streams import (  # noqa: F401
    DOMAIN_A,
    DOMAIN_B,
    MIRROR_STREAM,
    PROBE_SUBJECT,
    ensure_mesh_streams,
    leafz,
    mirror_state,
    origin_last_seq,
)
from chaos_tui.sandbox.nats import server_binary
from chaos_tui.sandbox.postgres import SandboxError

# How long B waits between leafnode connect attempts. nats-server 2.15 wants a duration
# string here (a bare integer is refused: "reconnect should be converted to a duration"), and
# accepts it only at the `leafnodes` level, not inside a remote block.
LEAF_RECONNECT = "250ms"


def _quote(text: object) -> str:
    return json.dumps(str(text))  # a JSON string is a valid NATS config string


def _server(
    server_name: str, client_port: int, monitor_port: int, store_dir: Path, domain: str
) -> str:
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


def write_config_a(
    path: Path,
    store_dir: Path,
    client_port: int,
    monitor_port: int,
    leaf_port: int,
    domain: str = DOMAIN_A,
    server_name: str = "nats_a",
) -> Path:
    """The hub: JetStream in `domain`, leafnode connections accepted on `leaf_port`, and its
    leafnode URLs never advertised (so a remote keeps going through the proxies it was given)."""
    text = (
        _server(server_name, client_port, monitor_port, store_dir, domain)
        + f"""\
leafnodes {{
  listen: "127.0.0.1:{leaf_port}"
  no_advertise: true
}}
"""
    )
    return _write(path, text)


def write_config_b(
    path: Path,
    store_dir: Path,
    client_port: int,
    monitor_port: int,
    domain: str = DOMAIN_B,
    remote_urls: Sequence[str] = (),
    server_name: str = "nats_b",
) -> Path:
    """The spoke: JetStream in `domain`, one leafnode remote to A listing every path (proxy)."""
    if not remote_urls:
        raise SandboxError("nats_b needs at least one leafnode remote URL")
    urls = ", ".join(_quote(leaf_url(u)) for u in remote_urls)
    text = (
        _server(server_name, client_port, monitor_port, store_dir, domain)
        + f"""\
leafnodes {{
  reconnect: {_quote(LEAF_RECONNECT)}
  remotes: [
    {{ urls: [{urls}] }}
  ]
}}
"""
    )
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


def wait_ready(
    monitor_port: int, timeout_s: float = 15.0, alive: Callable[[], bool] | None = None
) -> float:
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
    raise SandboxError(
        f"nats on monitor port {monitor_port} not ready after {timeout_s:g} s ({last})"
    )
