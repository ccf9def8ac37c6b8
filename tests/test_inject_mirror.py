"""Worker injectors read from a run's mirror in Valkey (the Docker job queue's worker cannot
reach the agent): a real agent, a real Valkey, the run-side InjectorMirror and the worker-side
InjectorClient. The same fail safe as polling the agent: a heal shows at the next copy; the
agent SIGKILLed, or the run's copies stopping, turn the worker off within stale_s; a worker
trusting stale copies still stops at the TTL; a key without expiry or with garbage is off."""

from __future__ import annotations

import time

import redis

from chaos_tui.agent.protocol import INJECTOR_MIRROR_KEY
from chaos_tui.inject import InjectorClient
from chaos_tui.targets import injector_mirror
from chaos_tui.targets.injector_mirror import InjectorMirror
from tests.inject_support import grant, kill_agent_and_watch, own_agent, until, valkey

__all__ = ["own_agent"]  # a fixture

FAIL_A = {"kind": "fail", "scope": {"actor": "a"}}


def mirror_worker(url: str, **kwargs) -> InjectorClient:
    return InjectorClient.from_env({"CHAOS_INJECTORS_MIRROR": url}, **kwargs)


def hit(worker: InjectorClient) -> bool:
    return worker.decide("q", "a", "m") is not None


async def test_a_mirrored_lease_reaches_the_worker_and_its_heal_turns_it_off(own_agent):
    with valkey() as port:
        url = f"redis://127.0.0.1:{port}/0"
        mirror = InjectorMirror(own_agent, url)
        worker = mirror_worker(url)
        try:
            await mirror.hold()
            lease = await grant(own_agent, FAIL_A, ttl_s=60)
            granted = time.time()
            seen = await until(lambda: hit(worker), 2, "the worker sees the mirrored lease")
            assert worker.decide("q", "b", "m") is None  # scoped as granted
            await own_agent.heal_lease(lease.id)
            healed = time.time()
            off = await until(lambda: not hit(worker), 2, "off after the heal")
            await mirror.release()
            print(f"on {seen - granted:.2f} s after the grant, off {off - healed:.2f} s after heal")
            # A copy every 0.25 s and a read every 0.25 s.
            assert seen - granted < 0.8 and off - healed < 0.8
        finally:
            worker.stop()
            await mirror.close()


async def test_the_agent_sigkilled_or_the_copies_stopping_turn_the_worker_off(
    own_agent, monkeypatch
):
    # The key outlives the TTL here, so the trusting worker's stop is its own clock's doing.
    monkeypatch.setattr(injector_mirror, "EXPIRES_MS", 10_000)
    with valkey() as port:
        url = f"redis://127.0.0.1:{port}/0"
        mirror = InjectorMirror(own_agent, url)
        default, trusting = mirror_worker(url), mirror_worker(url, stale_s=30)
        try:
            await mirror.hold()
            lease = await grant(own_agent, FAIL_A, ttl_s=3, orphan_ok=True)
            for w in (default, trusting):
                await until(lambda w=w: hit(w), 2, "the worker sees it")
            killed_at, (last_default, last_trusting) = await kill_agent_and_watch(
                own_agent, (default, trusting), lease.expires_at + 1.5
            )
            last = {id(default): last_default, id(trusting): last_trusting}
            print(
                f"default off {last[id(default)] - killed_at:.2f} s after the kill; trusting "
                f"off {last[id(trusting)] - lease.expires_at:+.2f} s from the TTL"
            )
            assert killed_at < last[id(default)] <= killed_at + default.stale_s + 0.1
            assert lease.expires_at - 0.6 < last[id(trusting)] <= lease.expires_at + 0.1
        finally:
            default.stop()
            trusting.stop()
            mirror.holders = 1
            await mirror.release()
        # The run's copies stopping (the run SIGKILLed): off within stale_s of the last copy.
        await until(lambda: own_agent.info() is None, 5, "the agent gone", every=0.1)
        await own_agent.ensure()
        await grant(own_agent, FAIL_A, ttl_s=60)
        mirror = InjectorMirror(own_agent, url)
        worker = mirror_worker(url)
        try:
            await mirror.hold()
            await until(lambda: hit(worker), 2, "the worker sees it")
            assert mirror._task is not None
            mirror._task.cancel()  # no last copy: as if the run died
            stopped = time.time()
            off = await until(lambda: not hit(worker), 2, "off once the copies stop")
            assert off - stopped <= worker.stale_s + 0.1, off - stopped
        finally:
            worker.stop()
            await mirror.close()
            await own_agent.heal_all()


async def test_a_key_without_expiry_or_with_garbage_is_off(own_agent):
    with valkey() as port:
        url = f"redis://127.0.0.1:{port}/0"
        store = redis.Redis(port=port)
        mirror = InjectorMirror(own_agent, url)
        worker = mirror_worker(url)
        try:
            await grant(own_agent, FAIL_A, ttl_s=60)
            await mirror.copy_once()
            await until(lambda: hit(worker), 2, "the worker sees it")
            store.persist(INJECTOR_MIRROR_KEY)  # a copy that would never expire: not trusted
            await until(lambda: not hit(worker), 2, "off: no expiry")
            await mirror.copy_once()
            await until(lambda: hit(worker), 2, "on again")
            store.set(INJECTOR_MIRROR_KEY, b"{not json", px=5000)
            await until(lambda: not hit(worker), 2, "off: garbage")
        finally:
            worker.stop()
            await mirror.close()
            store.close()
            await own_agent.heal_all()
