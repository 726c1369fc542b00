"""Pushing a participant's outbox to its ``push_url``, in order, with bounded retries.

Each message is POSTed (``application/xml``, header ``X-Isogw-Sequence``) and acknowledged when
the bank answers 2xx. A failure is retried after an exponentially growing pause
(``push.first_backoff_seconds`` doubling up to ``push.max_backoff_seconds``), at most
``push.max_attempts`` times; then the pusher rests ``push.max_backoff_seconds`` (new messages do
not wake it: a bank that is down is not hammered) and starts again from the oldest message.
Nothing is lost: an unpushed message stays in the outbox, where the bank can also pull it. One
gateway process pushes (two would send a bank the same message twice, out of order); a bank
should still treat a sequence it has seen as a repeat (a push whose 2xx was lost is sent again).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime

import aiohttp

from gateway.configuration.settings import PushSettings
from gateway.service.clearing_service import ClearingService
from gateway.store import messages

LOG = logging.getLogger("isogw.push")
Sleep = Callable[[float], Awaitable[None]]


class Pusher:
    def __init__(
        self,
        participant: str,
        url: str,
        clearing: ClearingService,
        settings: PushSettings,
        now: Callable[[], datetime],
        tls: Callable[[], ssl.SSLContext] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """``tls`` gives the gateway's client context for each push (a reload of the
        certificates replaces it)."""
        self.participant = participant
        self.url = url
        self._clearing = clearing
        self._settings = settings
        self._now = now
        self._tls = tls
        self._sleep = sleep
        self.wake = asyncio.Event()
        self.pushed = 0
        self.failures = 0

    async def run_once(self, session: aiohttp.ClientSession) -> bool:
        """Push what is waiting; False when a message could not be delivered."""
        async with self._clearing.reader.connect() as connection:
            waiting = await messages.read_outbox(
                connection, self.participant, 0, self._settings.batch
            )
        for message in waiting:
            if not await self._deliver(session, message.sequence, message.payload):
                return False
            async with self._clearing.engine.begin() as connection:
                await messages.acknowledge(
                    connection, self.participant, message.sequence, self._now()
                )
            self.pushed += 1
        return True

    async def _deliver(self, session: aiohttp.ClientSession, sequence: int, payload: bytes) -> bool:
        pause = self._settings.first_backoff_seconds
        for attempt in range(1, self._settings.max_attempts + 1):
            try:
                async with session.post(
                    self.url,
                    data=payload,
                    headers={"Content-Type": "application/xml", "X-Isogw-Sequence": str(sequence)},
                    ssl=self._tls()
                    if self._tls is not None and self.url.startswith("https")
                    else True,
                    timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds),
                ) as response:
                    if 200 <= response.status < 300:
                        return True
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as error:
                reason = str(error) or type(error).__name__
            self.failures += 1
            LOG.warning(
                "event=push-failed participant=%s sequence=%d attempt=%d reason=%s",
                self.participant,
                sequence,
                attempt,
                reason,
            )
            if attempt < self._settings.max_attempts:
                await self._sleep(pause)
                pause = min(pause * 2, self._settings.max_backoff_seconds)
        return False

    async def run_forever(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                self.wake.clear()
                if not await self.run_once(session):
                    await self._sleep(self._settings.max_backoff_seconds)
                    continue
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=self._settings.idle_seconds)
                except TimeoutError:
                    continue
