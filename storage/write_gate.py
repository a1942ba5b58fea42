"""One writer at a time inside the process, in an order we choose (SQLite).

SQLite lets one connection write at a time. Left to itself, a connection that
finds the database locked sleeps in its busy handler (1, 2, 5 ... 100 ms) and
tries again, and a writer that commits and begins again at once wins nearly
every time. Under load that starves whoever is asleep: the webhooks' group
commit waited seconds behind the intake worker's ticket after ticket.

So the process's writers queue here first, on the event loop, and are let in
one by one, urgent ones (storing what a provider is waiting for) before the
rest. The busy handler still covers other processes (a CLI command beside
``serve``). PostgreSQL runs writers concurrently and needs no gate.
"""

from __future__ import annotations

import asyncio
from collections import deque


class WriteGate:
    """A lock whose waiters are served urgent first, then in arrival order."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Writers queued behind the one that holds the gate."""
        return len(self._urgent) + len(self._normal)

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for the gate; ``urgent`` goes ahead of every non-urgent waiter."""
        if not self._held and not self.waiting:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed the gate just as we were cancelled: pass it on.
                self.release()
            else:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        """Hand the gate to the next waiter, or open it."""
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # still held: now by the waiter
                    return
        self._held = False
