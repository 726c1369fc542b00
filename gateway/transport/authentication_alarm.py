"""Consecutive authentication failures per source, and the alarm they raise.

A failure (a refused client certificate, a certificate not pinned to a participant, a
signature that does not check out, a sender that is not the certificate's owner) adds one to
its source's count. The count is kept in the ledger's database, shared by every gateway
process, because the kernel spreads one source's connections over the processes: counted in
each process alone, three failures in a row could be seen as two and one, and raise nothing.
The count reaching ``http.authentication_alarm_after`` raises the alarm once, in the process
whose failure reached it: an ERROR log line and ``isogw_authentication_alarms_total``. A
request that proves who sent it (a pinned certificate, and for a submission a signature that
checks out) ends the source's run: the first such request on a new connection (another
process may have counted failures), and any from a source this process saw fail.

The refusal itself is answered at once; the counting follows in order, one event at a time,
through the clearing writer (so the processes take turns and each count is exact). At most
``http.authentication_records_pending`` events wait in one process; beyond that a failure is
still logged and counted in ``isogw_authentication_failures_total``, but not in the shared
count (a flood cannot hold up the writer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from gateway.store.authentication_failures import clear_failures, count_failure, failing

if TYPE_CHECKING:
    from gateway.configuration.settings import HttpSettings
    from gateway.service.clearing_service import Applied, ClearingService
    from gateway.store.write_batch import WriteBatch

LOG = logging.getLogger("isogw.http")


@dataclass
class AuthenticationCounts:
    failures: int = 0
    """Authentication failures this process saw."""
    alarms: int = 0
    """Alarms this process raised (its failure was the one that reached the threshold)."""
    not_shared: int = 0
    """Failures not added to the shared count (too many events waiting)."""


@dataclass(frozen=True)
class _Event:
    source: str
    reason: str | None
    """None: a success (ends the source's run of failures, if it has one)."""


class AuthenticationMonitor:
    def __init__(
        self,
        clearing: ClearingService,
        settings: HttpSettings,
        now: Callable[[], datetime],
    ) -> None:
        self._clearing = clearing
        self._settings = settings
        self._now = now
        self.counts = AuthenticationCounts()
        self._events: asyncio.Queue[_Event] = asyncio.Queue(settings.authentication_records_pending)
        self._failing: dict[str, None] = {}
        """Sources this process saw fail since their last success here (the most recent
        last; at most ``http.authentication_sources``): a request from one of them ends its
        run of failures in the shared count."""

    def failed(self, source: str, reason: str) -> None:
        self.counts.failures += 1
        self._failing.pop(source, None)
        if len(self._failing) >= self._settings.authentication_sources:
            del self._failing[next(iter(self._failing))]
        self._failing[source] = None
        try:
            self._events.put_nowait(_Event(source, reason))
        except asyncio.QueueFull:
            self.counts.not_shared += 1
            LOG.warning(
                "event=authentication-failure source=%s count=not-counted reason=%s "
                "(more than http.authentication_records_pending failures waiting)",
                source,
                reason,
            )

    def succeeded(self, source: str, new_connection: bool) -> None:
        """An authenticated request (``new_connection``: the first on its TLS connection).
        Costs nothing unless the source may have failures to end: this process saw it fail,
        or another process may have (a new connection)."""
        if source in self._failing or new_connection:
            self._failing.pop(source, None)
            with contextlib.suppress(asyncio.QueueFull):
                # Dropped only in a flood of failures, which the source's next success ends.
                self._events.put_nowait(_Event(source, None))

    async def run_forever(self) -> None:
        while True:
            event = await self._events.get()
            try:
                if event.reason is None:
                    await self._clear(event.source)
                else:
                    await self._count(event.source, event.reason)
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.exception("event=authentication-count-failed source=%s", event.source)
            finally:
                self._events.task_done()

    async def _count(self, source: str, reason: str) -> None:
        counted: list[int] = []
        at = self._now()

        async def after(writes: WriteBatch, applied: Applied) -> None:
            work = partial(
                count_failure,
                source=source,
                at=at,
                reason=reason,
                max_sources=self._settings.authentication_sources,
            )
            counted.append(await writes.in_transaction(work))

        await self._clearing.execute(_nothing_to_clear, after=after)
        count = counted[-1]  # the last try's (a batch that failed is tried again alone)
        process = os.getpid()
        LOG.warning(
            "event=authentication-failure source=%s count=%d process=%d reason=%s",
            source,
            count,
            process,
            reason,
        )
        if count == self._settings.authentication_alarm_after:
            self.counts.alarms += 1
            LOG.error(
                "event=authentication-alarm source=%s consecutive_failures=%d process=%d",
                source,
                count,
                process,
            )

    async def _clear(self, source: str) -> None:
        async with self._clearing.reader.connect() as connection:
            if not await failing(connection, source):
                return

        async def after(writes: WriteBatch, applied: Applied) -> None:
            await writes.in_transaction(partial(clear_failures, source=source))

        await self._clearing.execute(_nothing_to_clear, after=after)

    async def settled(self) -> None:
        """Until every event so far is counted (``run_forever`` must be running)."""
        await self._events.join()

    async def finish(self, seconds: float) -> None:
        """When the process stops, after its last request: count the failures still waiting
        (``run_forever`` must be running), for at most ``seconds``; what is left then is
        said in one line."""
        try:
            await asyncio.wait_for(self._events.join(), seconds)
        except TimeoutError:
            LOG.warning(
                "event=authentication-records-not-counted waiting=%d process=%d "
                "reason=still waiting %g s after the process began stopping",
                self._events.qsize(),
                os.getpid(),
                seconds,
            )


def _nothing_to_clear(core: Any) -> None:
    return None
