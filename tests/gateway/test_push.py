"""Push delivery to a bank's URL: in order, acknowledged on 2xx, bounded retries with backoff,
nothing lost when the bank stays down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gateway.configuration.settings import PushSettings
from gateway.transport.push import Pusher
from tests.gateway.conftest import (
    BOCOM,
    C100,
    CCB,
    Harness,
    serve_bank_endpoint,
    wait_until,
)

SETTINGS = PushSettings(max_attempts=4, first_backoff_seconds=0.5, max_backoff_seconds=1.5)


class FakeBank:
    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.received: list[tuple[str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers["X-Isogw-Sequence"], await request.read()))
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status)


class RecordedPauses:
    """The pusher's sleep: records the backoff instead of waiting it out."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


def ccb_pusher(harness: Harness, url: str, pauses: RecordedPauses) -> Pusher:
    return Pusher(
        CCB, url, harness.runtime.clearing, SETTINGS, harness.clock.now, sleep=pauses.sleep
    )


@pytest.fixture
async def bank_server() -> AsyncIterator[tuple[FakeBank, str]]:
    bank = FakeBank([])
    runner, url = await serve_bank_endpoint(bank.handle)
    yield bank, url
    await runner.cleanup()


async def test_push_retries_with_backoff_then_acknowledges(
    harness: Harness,
    bank_server: tuple[FakeBank, str],
) -> None:
    bank, url = bank_server
    bank.answers = [503, 500]
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    pauses = RecordedPauses()
    pusher = ccb_pusher(harness, url, pauses)
    async with aiohttp.ClientSession() as session:
        assert await pusher.run_once(session)
    assert [sequence for sequence, _ in bank.received] == ["1", "1", "1"]
    assert b"B301290000007202611230042" in bank.received[-1][1]
    assert pauses.seconds == [0.5, 1.0]
    assert (await harness.outbox(CCB))["messages"] == []


async def test_push_gives_up_after_the_limit_and_keeps_the_message(
    harness: Harness,
    bank_server: tuple[FakeBank, str],
) -> None:
    bank, url = bank_server
    bank.answers = [500] * 10
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    pauses = RecordedPauses()
    pusher = ccb_pusher(harness, url, pauses)
    async with aiohttp.ClientSession() as session:
        assert not await pusher.run_once(session)
    assert len(bank.received) == SETTINGS.max_attempts
    assert pauses.seconds == [0.5, 1.0, 1.5]  # doubling, capped at max_backoff_seconds
    assert len((await harness.outbox(CCB))["messages"]) == 1
    assert pusher.failures == 4


async def test_push_rests_after_giving_up_then_starts_again_from_the_oldest(
    harness: Harness,
    bank_server: tuple[FakeBank, str],
) -> None:
    bank, url = bank_server
    bank.answers = [500] * SETTINGS.max_attempts  # down for one whole round, then back
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    pauses = RecordedPauses()
    pusher = ccb_pusher(harness, url, pauses)
    task = asyncio.create_task(pusher.run_forever())

    async def pushed() -> bool:
        return pusher.pushed > 0

    try:
        await wait_until(pushed, "the message to be pushed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # Three backoffs within the round, then a rest of max_backoff_seconds that new messages
    # do not cut short; then the same message again, delivered.
    assert pauses.seconds == [0.5, 1.0, 1.5, 1.5]
    assert [sequence for sequence, _ in bank.received] == ["1"] * (SETTINGS.max_attempts + 1)
    assert pusher.pushed == 1
    assert (await harness.outbox(CCB))["messages"] == []
