"""dplib.atomic: records written whole or not at all, read back tolerantly."""

import json

import pytest

from dplib import atomic


def test_write_json_atomic_leaves_no_temporary_and_replaces(tmp_path):
    path = tmp_path / "a" / "record.json"
    atomic.write_json_atomic(path, {"x": 1})
    atomic.write_json_atomic(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2} and [p.name for p in path.parent.iterdir()] == ["record.json"]
    with pytest.raises(TypeError):
        atomic.write_json_atomic(path, {"x": object.__new__(type("Unserialisable", (), {"__str__": None}))})
    assert json.loads(path.read_text()) == {"x": 2} and len(list(path.parent.iterdir())) == 1


def test_read_json_tolerates_missing_and_half_written(tmp_path):
    assert atomic.read_json(tmp_path / "none.json") is None
    (tmp_path / "half.json").write_text('{"a": ')
    assert atomic.read_json(tmp_path / "half.json") is None


def test_a_disk_full_while_recording_keeps_the_previous_record(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "run" / "status.json"
    atomic.write_json_atomic(path, {"state": "running"})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(atomic.DiskFullError, match="no space left.*status.json.*previous version is kept"):
        atomic.write_json_atomic(path, {"state": "completed", "padding": "x" * 10_000})
    assert json.loads(path.read_text()) == {"state": "running"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["status.json"]  # no temporary file left behind
