"""Steady load for scenarios: one action per tick at a fixed rate, through any outage.

A slow action delays the next tick instead of letting ticks bunch up afterwards, so the load
a fault meets is the load that was asked for.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod


class SteadyLoad(ABC):
    def __init__(self, rate_per_s: float, name: str) -> None:
        self.interval = 1.0 / rate_per_s
        self.name = name
        self.ticks = 0
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()

    @abstractmethod
    async def tick(self, n: int) -> None:
        """One action; n counts from 0. Failures are the load's own data, never raised."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    @property
    def running(self) -> bool:
        return self._task is not None

    async def stop(self) -> None:
        """Stop ticking and wait for the tick in flight; safe when never started."""
        if self._task is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._stop.is_set():
            await self.tick(self.ticks)
            self.ticks += 1
            due += self.interval
            delay = due - loop.time()
            if delay < 0:
                due, delay = loop.time(), 0.0
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except TimeoutError:
                pass
