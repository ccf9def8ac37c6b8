"""Waiting for a condition that comes true by itself (a server redialling, a container coming
up): ask again at an interval, give up at a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float, interval_s: float = 0.1
) -> bool:
    """True once `check` says so; False if it has not by `timeout_s`. A check that raises
    counts as a no (the thing is not there yet)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            if await check():
                return True
        except Exception:
            pass
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(interval_s)
