"""Jobs that share a response cache send each request once: reserve, send, or wait and read.

    with InFlight(cache, backend) as flight:
        mine, theirs = flight.claim(custom_ids)   # mine: send these; theirs: another job does
        ...send mine, each answer stored at once...
        flight.done(mine)
        flight.wait(theirs)                       # until the other jobs let go; then read the cache

A heartbeat thread keeps this job's reservations alive (a Batch API job may wait for hours);
a job that dies leaves reservations that the next job clears (cache.py), recording those it had
sent and that got no answer as possibly billed, under the job's `label` (the run it sends for).
`unanswered(reason)` records an attempt that may have been billed without an answer the same way.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Callable, Sequence

from llmal.llm.cache import HOST, ResponseCache

POLL_S = 0.25
MAX_POLL_S = 5.0


class InFlight:
    def __init__(self, cache: ResponseCache, backend: str, *, log: Callable[[str], None] = print,
                 heartbeat_s: float | None = None, label: str = "") -> None:
        self.cache, self.backend, self.log, self.label = cache, backend, log, label
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.heartbeat_s = heartbeat_s or max(1.0, min(15.0, cache.lease_s / 8))
        self.waited = 0               # requests this job waited for (another job sent them)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "InFlight":
        self.cache.register(self.owner, self.label)
        self._thread = threading.Thread(target=self._beat, daemon=True, name="llmal-inflight")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.cache.release(self.owner, forget=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.cache.heartbeat(self.owner)
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                pass

    def claim(self, custom_ids: Sequence[str]) -> tuple[set[str], set[str]]:
        return self.cache.reserve(custom_ids, self.backend, self.owner)

    def sent(self, custom_ids: Sequence[str]) -> None:
        """Mark requests as on their way (a job killed now may have been billed for them)."""
        if custom_ids:
            self.cache.mark_sent(custom_ids, self.backend, self.owner)

    def unanswered(self, reason: str, n: int = 1) -> None:
        """`n` attempts sent that may have been billed without an answer (cache.UNANSWERED_REASONS)."""
        self.cache.record_unanswered(self.label, self.backend, reason, n)

    def done(self, custom_ids: Sequence[str]) -> None:
        self.cache.release(self.owner, list(custom_ids))

    def wait(self, custom_ids: Sequence[str]) -> None:
        """Block until no other live job holds any of `custom_ids`."""
        ids = list(custom_ids)
        if not ids:
            return
        self.waited += len(ids)
        delay, last_log = POLL_S, time.monotonic()
        while True:
            held = self.cache.reserved_by_others(ids, self.backend, self.owner)
            if not held:
                return
            if time.monotonic() - last_log > 60:
                self.log(f"still waiting for another job sending {len(held)} of these requests")
                last_log = time.monotonic()
            ids = list(held)
            time.sleep(delay)
            delay = min(MAX_POLL_S, delay * 1.5)
