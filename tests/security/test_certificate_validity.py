"""Certificates that need attention: ``isogw keys status``, the start-up and daily log lines,
and their ends of validity in /metrics."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.security.certificate_validity import (
    CertificateWatch,
    KnownCertificate,
    Validity,
    known_certificates,
    validities,
)
from gateway.security.keys import KeyStore

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
WARNING = timedelta(days=30)
CENTRE, ICBC, CCB, NEW_BANK = "999999999999", "102100099996", "105100000017", "308584000013"


@pytest.mark.parametrize(
    ("not_before", "not_after", "validity", "days_left"),
    [
        (NOW - timedelta(days=1), NOW + timedelta(days=31), Validity.VALID, 31),
        (NOW - timedelta(days=1), NOW + WARNING, Validity.EXPIRING, 30),
        (NOW - timedelta(days=1), NOW + timedelta(hours=1), Validity.EXPIRING, 0),
        (NOW - timedelta(days=9), NOW - timedelta(seconds=1), Validity.EXPIRED, -1),
        (NOW + timedelta(seconds=1), NOW + timedelta(days=400), Validity.NOT_YET_VALID, 400),
    ],
)
def test_validity_at_its_bounds(
    not_before: datetime, not_after: datetime, validity: Validity, days_left: int
) -> None:
    known = KnownCertificate("participant", ICBC, "/keys/x.pem", not_before, not_after)
    assert (known.validity(NOW, WARNING), known.days_left(NOW)) == (validity, days_left)


def test_a_participant_without_a_certificate_has_nothing_to_check() -> None:
    known = KnownCertificate("participant", ICBC, "/keys/x.pem")
    assert (known.validity(NOW, WARNING), known.days_left(NOW)) == (Validity.NONE, None)


def certificate(role: str, owner: str, days: float) -> KnownCertificate:
    """Valid since yesterday, for ``days`` more (negative: ended)."""
    return KnownCertificate(
        role, owner, f"/keys/{owner}-{role}.pem", NOW - timedelta(days=400), NOW + timedelta(days)
    )


def test_a_participant_renewing_to_a_valid_certificate_needs_no_attention() -> None:
    listed = [
        certificate("ca", "", 5),  # not a participant's: the rule does not apply
        certificate("participant", ICBC, 5),
        certificate("participant-next", ICBC, 400),
        certificate("participant", CCB, -1),  # ended: the bank has switched, or must
        certificate("participant-next", CCB, 400),
        certificate("participant", NEW_BANK, 5),
        certificate("participant-next", NEW_BANK, 20),  # ends within the warning period too
        certificate("gateway", CENTRE, 5),
        certificate("participant", "301290000007", 5),
        replace(certificate("participant-next", "301290000007", 400), not_before=NOW + WARNING),
    ]
    assert validities(listed, NOW, WARNING) == [
        Validity.EXPIRING,
        Validity.RENEWING,
        Validity.VALID,
        Validity.RENEWING,
        Validity.VALID,
        Validity.EXPIRING,
        Validity.EXPIRING,
        Validity.EXPIRING,
        Validity.EXPIRING,  # its next one is not valid yet: a gap until it is
        Validity.NOT_YET_VALID,
    ]


def test_the_watch_does_not_log_a_certificate_that_is_renewing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="isogw.keys")
    current = certificate("participant", ICBC, 5)
    renewal = certificate("participant-next", ICBC, 400)
    watch = CertificateWatch([current, renewal], WARNING)
    assert watch.check(NOW) == []
    assert caplog.records == []
    watch.follow([current])  # the next one withdrawn, and reloaded: the end is near again
    assert watch.check(NOW) == [current]
    assert caplog.records[0].getMessage().startswith("event=certificate-expiring ")


def test_the_watch_logs_each_certificate_again_only_when_its_days_left_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="isogw.keys")
    ending = NOW + timedelta(days=2, hours=12)
    soon = KnownCertificate("participant", ICBC, "/keys/icbc.pem", NOW, ending)
    later = KnownCertificate("gateway", CENTRE, "/keys/gateway.pem", NOW, NOW + timedelta(days=90))
    none = KnownCertificate("participant", NEW_BANK, "/keys/new.pem")
    watch = CertificateWatch([soon, later, none], WARNING)
    assert watch.check(NOW) == [soon]
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert caplog.records[0].getMessage() == (
        f"event=certificate-expiring certificate=participant owner={ICBC} "
        "not_after=2026-11-25T13:00:00Z days_left=2 path=/keys/icbc.pem sha256=-"
    )
    assert watch.check(NOW + timedelta(hours=11)) == []  # the same day left: not again
    assert watch.check(NOW + timedelta(hours=13)) == [soon]  # one day left now
    caplog.clear()
    assert watch.check(ending + timedelta(seconds=1)) == [soon]
    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(f"event=certificate-expired certificate=participant owner={ICBC} ")
    )
    assert "days_left=-1 " in caplog.records[0].getMessage()
    # 61 days on, the gateway's certificate comes within the warning period too.
    assert watch.check(NOW + timedelta(days=61)) == [soon, later]


def test_known_certificates_reads_the_key_folder(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    keys.initialise(CENTRE, [ICBC, CCB], NOW)
    issued = NOW + timedelta(days=10)
    keys.issue(CCB, NOW, issued)
    found = known_certificates(keys, CENTRE, [ICBC, CCB, NEW_BANK])
    assert [(entry.role, entry.owner) for entry in found] == [
        ("ca", ""),
        ("gateway", CENTRE),
        ("participant", ICBC),
        ("participant", CCB),
        ("participant", NEW_BANK),
    ]
    assert [entry.validity(NOW, WARNING) for entry in found] == [
        Validity.VALID,
        Validity.VALID,
        Validity.VALID,
        Validity.EXPIRING,
        Validity.NONE,
    ]
    assert found[3].not_after == issued
    assert found[3].sha256 == keys.pins([CCB])[CCB]
    assert found[4].path == str(keys.participant(NEW_BANK).certificate_path)


def test_keys_status_lists_every_certificate_and_fails_when_one_needs_attention(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    assert main(["keys", "status"]) == 2
    assert "holds no keys; `isogw keys init` (or `make run`) creates" in capsys.readouterr().err
    assert main(["keys", "init"]) == 0
    capsys.readouterr()
    assert main(["keys", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["certificate", "owner", "valid", "until", "days", "state"]
    assert lines[-1].startswith(f"{len(lines) - 2} certificates; 0 need attention")
    assert lines[1].split()[:1] == ["ca"] and lines[2].split()[:2] == ["gateway", CENTRE]
    keys = KeyStore(tmp_path)
    now = datetime.now(UTC)
    keys.issue(CCB, now - timedelta(days=1), now + timedelta(days=5, hours=12))
    assert main(["keys", "status"]) == 1
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if f" {CCB} " in line]
    assert line.split()[3:5] == ["5", "expiring"]
    assert f"sha256:{keys.pins([CCB])[CCB]}" in line
    assert (
        "; 1 need attention (expired, not yet valid, or ending within 30 days: setting "
        "http.certificate_warning_days; a participant's that is renewing to a valid next one "
        "does not)" in out
    )
    assert main(["keys", "status", "--json"]) == 1
    listed = json.loads(capsys.readouterr().out)
    [entry] = [entry for entry in listed if entry["owner"] == CCB]
    assert (entry["certificate"], entry["state"], entry["days_left"]) == (
        "participant",
        "expiring",
        5,
    )
    # CCB renews: with its next certificate valid, the ending one no longer needs attention.
    keys.issue(CCB, now - timedelta(days=1), now + timedelta(days=400, hours=12), renewal=True)
    assert main(["keys", "status"]) == 0
    out = capsys.readouterr().out
    listed_lines = [line.split() for line in out.splitlines() if f" {CCB} " in line]
    assert [line[:1] + line[3:5] for line in listed_lines] == [
        ["participant", "5", "renewing"],
        ["participant-next", "400", "valid"],
    ]
    assert "; 0 need attention" in out
