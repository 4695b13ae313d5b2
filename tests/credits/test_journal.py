"""The settlement journal's files: append, forget, segments, adoption, cut-off lines."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from credits import journal as journal_module
from credits.journal import Journal
from credits.journal import decode_record
from credits.journal import encode_record
from tests.credits.helpers import usage


def _lines(*request_ids: str) -> list[bytes]:
    return [encode_record(usage(request_id, completion_tokens=3)) for request_id in request_ids]


def _adopted(directory: Path) -> list[str]:
    """The request ids of every journal of a dead worker in ``directory`` (then removed)."""
    seen = []
    for orphan in Journal.orphans(directory):
        seen += [decode_record(line).request_id for line in orphan.pending()]
        orphan.forget_all()
    return seen


def test_records_come_back_in_order_after_the_worker_dies(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "w1")
    assert journal.append(_lines("a", "b")) == [1, 2]
    assert journal.append(_lines("c")) == [3]
    assert _adopted(tmp_path) == [], "a live worker's journal is not adopted"
    journal.close()  # nothing was applied: the files stay, as after a SIGKILL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w1.1.jsonl", "w1.lock"]
    assert _adopted(tmp_path) == ["a", "b", "c"]
    assert list(tmp_path.iterdir()) == [], "an adopted journal is removed once applied"


def test_applied_segments_are_removed_as_the_worker_moves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_RECORDS", 2)
    journal = Journal.create(tmp_path, "w1")
    ids = [journal.append(_lines(f"r{i}"))[0] for i in range(5)]  # segments 1, 2, 3
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == [
        "w1.1.jsonl",
        "w1.2.jsonl",
        "w1.3.jsonl",
    ]
    journal.append(_lines("r5"), forget=ids[:3])  # all of segment 1, half of segment 2
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["w1.2.jsonl", "w1.3.jsonl"]
    assert journal.count() == 3
    journal.forget([*ids[3:], 6])
    assert journal.count() == 0
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["w1.3.jsonl"]
    journal.close()
    assert list(tmp_path.iterdir()) == [], "nothing left to apply: files and lock removed"


def test_a_failed_write_leaves_no_cut_off_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal.create(tmp_path, "w1")
    journal.append(_lines("kept"))
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        real_write(fd, data[:10])  # part of it reached the file, then the disk filled
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError):
        journal.append(_lines("lost"))
    monkeypatch.setattr(os, "write", real_write)
    journal.append(_lines("next"))  # into a new segment
    journal.close()
    assert _adopted(tmp_path) == ["kept", "next"]


def test_a_cut_off_last_line_is_skipped(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "w1")
    journal.append(_lines("whole"))
    journal.close()
    with open(tmp_path / "w1.1.jsonl", "ab") as segment:
        segment.write(_lines("cut")[0][:20])  # the worker died inside a write
    assert _adopted(tmp_path) == ["whole"]


def test_a_journal_of_the_previous_version_is_adopted(tmp_path: Path) -> None:
    """Upgrading after a crash loses nothing: the old SQLite journal is applied, then removed."""
    old = sqlite3.connect(tmp_path / "1234-abcd.db", isolation_level=None)
    old.execute("CREATE TABLE settlements (id INTEGER PRIMARY KEY, record BLOB NOT NULL)")
    for line in _lines("old-1", "old-2"):
        old.execute("INSERT INTO settlements (record) VALUES (?)", (line.rstrip(b"\n"),))
    old.close()
    (tmp_path / "1234-abcd.lock").touch()
    assert _adopted(tmp_path) == ["old-1", "old-2"]
    assert list(tmp_path.iterdir()) == []
