"""The object-storage run lock's heartbeat (scaling/lock.py) really renews: with a small
HEARTBEAT_S the holder rewrites `.lock` with a later time, a holder that was taken over
stops writing, and release stops the beat and removes the lock.

No wall-clock bounds: each wait is on an observed change, with a generous deadline that only
guards against a hang.
"""

import json
import time

import pytest
from fake_gcs import fake_gcs

from scaling import lock

HANG_S = 60.0  # only a hang takes this long


def _wait_for(predicate, what):
    deadline = time.monotonic() + HANG_S
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"hung: {what}")
        time.sleep(0.01)


def _held(path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def test_heartbeat_advances_and_stops_when_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "SETTLE_S", 0.0)
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    path = tmp_path / "gcs" / "scaling-test" / "run" / ".lock"
    with fake_gcs(tmp_path / "gcs"):
        held = lock.RunLock("gs://scaling-test/run", "train").acquire()
        first = _held(path)
        assert first["token"] == held.token and first["command"] == "train"
        for _ in range(3):  # three renewals, each strictly later, same holder
            before = _held(path)["heartbeat"]
            _wait_for(lambda b=before: _held(path).get("heartbeat", b) > b, "a heartbeat")
            now = _held(path)
            assert now["token"] == held.token and now["since"] == first["since"]
        # another job takes the lock over (we were presumed dead): the beat stops writing
        theirs = dict(first, token="someone-else", heartbeat=1.0)
        path.write_text(json.dumps(theirs))
        _wait_for(lambda: not held._thread.is_alive(), "the beat thread to stop")
        assert _held(path) == theirs
        held.release()
        assert _held(path) == theirs  # not ours to delete


def test_release_stops_the_beat_and_removes_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "SETTLE_S", 0.0)
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    path = tmp_path / "gcs" / "scaling-test" / "run" / ".lock"
    with fake_gcs(tmp_path / "gcs"):
        held = lock.RunLock("gs://scaling-test/run", "train").acquire()
        thread = held._thread
        before = _held(path)["heartbeat"]
        _wait_for(lambda: _held(path).get("heartbeat", before) > before, "a heartbeat")
        held.release()
        assert not thread.is_alive() and not path.exists()


def test_default_heartbeat_renews_well_inside_the_stale_limit():
    """A live holder renews several times before others may take its lock over."""
    assert 0 < lock.HEARTBEAT_S * 3 <= lock.STALE_S
