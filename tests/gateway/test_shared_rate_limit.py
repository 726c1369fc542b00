"""The participants' token buckets, shared through a file by every gateway process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.transport.shared_rate_limit import HEADER, SLOT, SharedRateLimit
from tests.conftest import PROJECT

BOCOM, CCB, ICBC = "301290000007", "105100000017", "102100099996"
PARTICIPANTS = (BOCOM, CCB, ICBC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "rate-limits"


def takes(limit: SharedRateLimit, participant: str, now: float, count: int) -> list[bool]:
    return [limit.take(participant, now) for _ in range(count)]


def test_the_burst_then_the_rate(path: Path) -> None:
    limit = SharedRateLimit(path, PARTICIPANTS, rate=0.001, burst=3)
    assert takes(limit, BOCOM, 1000.0, 4) == [True, True, True, False]
    # 0.999 of a token at 0.001 a second: still limited.
    assert not limit.take(BOCOM, 1999.0)
    # Five tokens earned, but the bucket holds the burst (3).
    assert takes(limit, BOCOM, 6999.0, 4) == [True, True, True, False]
    assert takes(limit, CCB, 6999.0, 1) == [True]  # another participant's bucket


def test_two_openings_of_the_file_share_the_buckets(path: Path) -> None:
    """As two gateway processes do: what one takes, the other cannot."""
    first = SharedRateLimit(path, PARTICIPANTS, rate=0.001, burst=4)
    second = SharedRateLimit(path, reversed(PARTICIPANTS), rate=0.001, burst=4)
    assert takes(first, CCB, 10.0, 3) == [True] * 3
    assert takes(second, CCB, 10.0, 2) == [True, False]
    assert takes(first, CCB, 10.0, 1) == [False]
    assert takes(second, ICBC, 10.0, 5) == [True] * 4 + [False]


def test_another_process_takes_from_the_same_buckets(path: Path) -> None:
    limit = SharedRateLimit(path, PARTICIPANTS, rate=0.001, burst=10)
    program = (
        "import sys; from pathlib import Path\n"
        "from gateway.transport.shared_rate_limit import SharedRateLimit\n"
        "limit = SharedRateLimit(Path(sys.argv[1]), sys.argv[2:], rate=0.001, burst=10)\n"
        "print(sum(limit.take(sys.argv[2], 50.0) for _ in range(7)))\n"
    )
    taken = subprocess.run(
        [sys.executable, "-c", program, str(path), *PARTICIPANTS],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert taken.strip() == "7"
    assert takes(limit, BOCOM, 50.0, 4) == [True, True, True, False]


@pytest.mark.parametrize(
    "damage",
    ["another participant list", "truncated", "garbage", "empty"],
)
def test_a_file_for_other_participants_or_damaged_starts_afresh(path: Path, damage: str) -> None:
    old = SharedRateLimit(path, (BOCOM, "999999999999"), rate=0.001, burst=2)
    assert takes(old, BOCOM, 10.0, 3) == [True, True, False]
    old.close()
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: HEADER.size + SLOT.size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x07" * 200)
    elif damage == "empty":
        path.write_bytes(b"")
    limit = SharedRateLimit(path, PARTICIPANTS, rate=0.001, burst=2)
    assert path.stat().st_size == HEADER.size + len(PARTICIPANTS) * SLOT.size
    assert [takes(limit, code, 10.0, 3) for code in PARTICIPANTS] == [[True, True, False]] * 3


def test_the_same_participants_keep_their_buckets_across_a_restart(path: Path) -> None:
    first = SharedRateLimit(path, PARTICIPANTS, rate=0.001, burst=2)
    assert takes(first, CCB, 10.0, 2) == [True, True]
    first.close()
    again = SharedRateLimit(path, PARTICIPANTS, rate=0.001, burst=2)
    assert takes(again, CCB, 10.0, 1) == [False]


def test_a_clock_that_starts_again_lower_refills_from_then(path: Path) -> None:
    """After a reboot the monotonic clock is below the times stored before it: the bucket
    refills from the first request after, rather than staying empty until the clock catches
    up."""
    limit = SharedRateLimit(path, PARTICIPANTS, rate=1.0, burst=2)
    assert takes(limit, CCB, 100_000.0, 3) == [True, True, False]
    assert takes(limit, CCB, 5.0, 1) == [False]  # rebooted: nothing earned yet
    assert takes(limit, CCB, 6.0, 2) == [True, False]  # one second later, one token


def test_a_participant_without_a_bucket_is_refused(path: Path) -> None:
    limit = SharedRateLimit(path, PARTICIPANTS, rate=0.001, burst=5)
    assert not limit.take("000000000000", 10.0)
    assert takes(limit, BOCOM, 10.0, 6) == [True] * 5 + [False]
