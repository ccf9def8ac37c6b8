"""The NATS mesh with real servers: nats_a (sea-a) and nats_b (sea-b) joined by a leafnode link
that runs through two in-process fault proxies. A full cut stops the mirror and heal catches it
up with every id exactly once; a one-path cut fails over and the mirror keeps flowing; an origin
too small for the outage loses ids the mirror never saw."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import nats

from chaos_tui.agent.proxy import ProxyManager
from chaos_tui.sandbox import mesh
from chaos_tui.sandbox.postgres import SandboxError
from chaos_tui.sandbox.processes import is_running, spawn, stop
from tests.conftest import make_state_dir

RATE_HZ = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mesh:
    """A, B and the two link proxies; `paths` are the proxies in B's remote URL order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records = []
        self.proxies = ProxyManager()
        self.paths = []
        self.clients = []
        self.publishers = []

    async def start(self, origin_max_msgs: int = 0, streams: bool = True) -> Mesh:
        for attempt in range(1, 4):
            try:
                await self._launch(self.root / f"try{attempt}")
                break
            except SandboxError:
                # A free port taken by someone else before the server bound it: try others.
                logs = "".join(Path(r.log).read_text() for r in self.records)
                await self.proxies.stop_all()
                self.paths.clear()
                for record in self.records:
                    stop(record, timeout_s=5)
                self.records.clear()
                if "address already in use" not in logs or attempt == 3:
                    raise
        ports = self.ports
        self.a_url = f"nats://127.0.0.1:{ports['a']}"
        self.b_url = f"nats://127.0.0.1:{ports['b']}"
        if streams:  # at once, as the sandbox does: the link may still be coming up
            for _ in range(2):  # and again: idempotent
                assert await mesh.ensure_mesh_streams(
                    self.a_url, self.b_url, mesh.DOMAIN_A, origin_max_msgs
                )
        self.na = await self._client(self.a_url)
        self.nb = await self._client(self.b_url)
        return self

    async def _launch(self, root: Path) -> None:
        ports = {k: _free_port() for k in ("a", "a_mon", "leaf", "b", "b_mon")}
        self.ports = ports
        for name in ("link1", "link2"):
            self.paths.append(
                await self.proxies.create(name, "127.0.0.1:0", f"127.0.0.1:{ports['leaf']}")
            )
        conf_a = mesh.write_config_a(
            root / "a.conf",
            root / "a",
            ports["a"],
            ports["a_mon"],
            ports["leaf"],
            mesh.DOMAIN_A,
            "nats_a",
        )
        conf_b = mesh.write_config_b(
            root / "b.conf",
            root / "b",
            ports["b"],
            ports["b_mon"],
            mesh.DOMAIN_B,
            [f"{p.listen[0]}:{p.listen[1]}" for p in self.paths],
            "nats_b",
        )
        for name, conf, monitor in (("nats_a", conf_a, "a_mon"), ("nats_b", conf_b, "b_mon")):
            record = spawn(name, mesh.server_command(conf), root / f"{name}.log")
            self.records.append(record)
            await asyncio.to_thread(
                mesh.wait_ready, ports[monitor], 15, lambda r=record: is_running(r)
            )

    async def _client(self, url: str):
        nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=3)
        self.clients.append(nc)
        return nc

    async def close(self) -> None:
        for pub in self.publishers:
            pub.stopping = True
            pub.task.cancel()
        for nc in self.clients:
            with contextlib.suppress(Exception):
                await nc.close()
        await self.proxies.stop_all()
        for record in self.records:
            stop(record, timeout_s=5)
        assert not any(is_running(r) for r in self.records)

    def carrier(self) -> list[int]:
        return [i for i, proxy in enumerate(self.paths) if proxy.connections]

    async def behind(self) -> int:
        return (await mesh.origin_last_seq(self.na)) - (await mesh.mirror_state(self.nb))[
            "last_seq"
        ]

    async def wait_caught_up(self, timeout_s: float) -> float:
        started = time.monotonic()
        while await self.behind() > 0:
            assert time.monotonic() - started < timeout_s, "mirror never caught up"
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def mirror_ids(self) -> list[str]:
        js = self.nb.jetstream(timeout=5)
        state = await mesh.mirror_state(self.nb)
        ids = []
        for seq in range(state["first_seq"], state["last_seq"] + 1):
            try:
                msg = await js.get_msg(mesh.MIRROR_STREAM, seq)
            except nats.js.errors.NotFoundError:
                continue  # a gap: the origin discarded it before the mirror saw it
            ids.append((msg.headers or {}).get("Nats-Msg-Id"))
        return ids


@contextlib.asynccontextmanager
async def running_mesh(
    tag: str, origin_max_msgs: int = 0, budget_s: float = 30, streams: bool = True
):
    """The mesh for one test, which gets `budget_s` in all; whatever happens, everything it
    started is stopped by recorded pid."""
    root = make_state_dir(f"mesh-{tag}")
    m = Mesh(root)
    try:
        async with asyncio.timeout(budget_s):
            yield await m.start(origin_max_msgs, streams)
    finally:
        await m.close()
        shutil.rmtree(root, ignore_errors=True)


class Publisher:
    """Probe messages at RATE_HZ to SEA_EVENTS through A, one Nats-Msg-Id each.

    Stopped by a flag, not by cancelling: on Python 3.11 asyncio.wait_for (inside nats-py's
    request) can swallow a cancel that lands as the ack arrives, and the task would run on.
    """

    def __init__(self, m: Mesh) -> None:
        self.js = m.na.jetstream(timeout=2)
        self.acked: list[str] = []
        self.stopping = False
        self.task = asyncio.create_task(self._run())
        m.publishers.append(self)

    async def _run(self) -> None:
        n = 0
        while not self.stopping:
            n += 1
            msg_id = f"probe-{n}"
            await self.js.publish(
                mesh.PROBE_SUBJECT, msg_id.encode(), headers={"Nats-Msg-Id": msg_id}
            )
            self.acked.append(msg_id)
            await asyncio.sleep(1 / RATE_HZ)

    async def stop(self) -> list[str]:
        """Every id acked; each was attempted once and the last one was acked (no doubt)."""
        self.stopping = True
        await asyncio.wait_for(asyncio.shield(self.task), 5)
        return self.acked


async def cut(paths, enabled: bool) -> None:
    for proxy in paths:
        await proxy.set_enabled(enabled)


def test_config_text_is_valid_and_keeps_the_link_on_the_proxies(tmp_path):
    conf_a = mesh.write_config_a(
        tmp_path / "a.conf", tmp_path / "a", 4422, 8222, 7522, "sea-a", "nats_a"
    )
    conf_b = mesh.write_config_b(
        tmp_path / "b.conf",
        tmp_path / "b",
        5422,
        8223,
        "sea-b",
        ["127.0.0.1:17522", "nats-leaf://127.0.0.1:17523"],
        "nats_b",
    )
    text_a, text_b = conf_a.read_text(), conf_b.read_text()
    assert "no_advertise: true" in text_a and '"127.0.0.1:7522"' in text_a
    assert 'domain: "sea-a"' in text_a and 'domain: "sea-b"' in text_b
    assert '"nats-leaf://127.0.0.1:17522", "nats-leaf://127.0.0.1:17523"' in text_b
    assert f'reconnect: "{mesh.LEAF_RECONNECT}"' in text_b
    for conf in (conf_a, conf_b):  # nats-server's own check (-t) accepts both
        check = subprocess.run(
            mesh.server_command(conf) + ["-t"], capture_output=True, text=True, timeout=10
        )
        assert check.returncode == 0, check.stdout + check.stderr


async def test_full_cut_stops_the_mirror_and_heal_catches_up_exactly_once():
    async with running_mesh("full") as m:
        pub = Publisher(m)
        await asyncio.sleep(1)
        await m.wait_caught_up(5)  # replication reaches the mirror
        assert (await mesh.mirror_state(m.nb))["last_seq"] >= 10

        await cut(m.paths, False)
        cut_at = time.monotonic()
        stuck_at = (await mesh.mirror_state(m.nb))["last_seq"]
        actives = []
        while time.monotonic() - cut_at < 2.5:
            actives.append((await mesh.mirror_state(m.nb))["active_ns"])
            await asyncio.sleep(0.25)
        during = await mesh.mirror_state(m.nb)
        assert during["last_seq"] == stuck_at  # nothing crosses a full cut
        assert await m.behind() >= 2 * RATE_HZ  # while the origin kept taking probes
        assert isinstance(actives[-1], int) and actives[-1] > 1e9, actives  # raw ns, growing
        assert actives == sorted(actives)
        assert await asyncio.to_thread(mesh.leafz, m.ports["b_mon"]) == []

        await cut(m.paths, True)
        catch_up_s = await m.wait_caught_up(10)
        assert catch_up_s < 5, catch_up_s
        assert (await mesh.mirror_state(m.nb))["active_s"] < 1

        sent = await pub.stop()
        await m.wait_caught_up(5)
        ids = await m.mirror_ids()
        assert len(ids) == len(set(ids)), "duplicates in the mirror"
        assert set(ids) == set(sent), f"lost: {sorted(set(sent) - set(ids))[:5]}"


async def test_one_path_cut_fails_over_and_the_mirror_keeps_flowing():
    async with running_mesh("one") as m:
        pub = Publisher(m)
        await asyncio.sleep(0.5)
        await m.wait_caught_up(5)
        (carrier,) = m.carrier()
        lz = await asyncio.to_thread(mesh.leafz, m.ports["b_mon"])
        assert [leaf["port"] for leaf in lz] == [m.paths[carrier].listen[1]]

        victim = m.paths[carrier]
        await victim.set_enabled(False)
        try:
            cut_at = time.monotonic()
            start_seq = (await mesh.mirror_state(m.nb))["last_seq"]
            max_active = 0.0
            while time.monotonic() - cut_at < 2.5:
                state = await mesh.mirror_state(m.nb)
                max_active = max(max_active, state["active_s"] or 0.0)
                await asyncio.sleep(0.05)
            assert m.carrier() == [1 - carrier]  # B took the other URL
            assert max_active < 1.5, max_active  # a stall of one reconnect, not a partition
            assert state["last_seq"] >= start_seq + RATE_HZ  # still flowing during the cut
            assert await m.behind() <= RATE_HZ // 2
        finally:
            await victim.set_enabled(True)

        sent = await pub.stop()
        await m.wait_caught_up(5)
        ids = await m.mirror_ids()
        assert len(ids) == len(set(ids)) and set(ids) == set(sent)


async def test_an_origin_too_small_for_the_cut_loses_ids():
    async with running_mesh("small", origin_max_msgs=20) as m:
        pub = Publisher(m)
        await asyncio.sleep(0.5)
        await m.wait_caught_up(5)
        await cut(m.paths, False)
        await asyncio.sleep(3)  # about 60 probes into an origin that keeps 20
        await cut(m.paths, True)
        await m.wait_caught_up(10)
        sent = await pub.stop()
        await m.wait_caught_up(5)

        state = await mesh.mirror_state(m.nb)
        assert state["last_seq"] == await mesh.origin_last_seq(m.na)  # last_seq alone looks fine
        ids = await m.mirror_ids()
        lost = set(sent) - set(ids)
        assert len(ids) == len(set(ids))
        assert len(lost) >= RATE_HZ, len(lost)  # roughly the cut's probes minus the 20 kept
        assert state["num_deleted"] == len(lost)


async def test_the_mirror_is_made_once_the_link_is_up():
    """A mirror made before the link is up waits about 40 s for its first contact; the
    streams are made as soon as B reaches sea-a, and the mirror syncs at once."""
    async with running_mesh("late", streams=False) as m:
        await cut(m.paths, False)
        making = asyncio.create_task(
            mesh.ensure_mesh_streams(m.a_url, m.b_url, mesh.DOMAIN_A, link_timeout_s=10)
        )
        await asyncio.sleep(0.3)  # the origin is made at once; the mirror waits for the link
        js = m.na.jetstream(timeout=2)
        for i in range(5):
            await js.publish(mesh.PROBE_SUBJECT, b"x", headers={"Nats-Msg-Id": f"early-{i}"})
        await asyncio.sleep(0.5)
        assert not making.done()
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await m.nb.jetstream(timeout=2).stream_info(mesh.MIRROR_STREAM)
            raise AssertionError("the mirror was made across a cut link")
        await cut(m.paths, True)
        assert await asyncio.wait_for(making, 5) is True
        assert await m.wait_caught_up(3) < 3
        assert (await mesh.mirror_state(m.nb))["last_seq"] == 5
