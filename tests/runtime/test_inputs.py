"""Reading replay inputs: formats, partitions, blank lines, malformed lines."""

from __future__ import annotations

import gzip

import pytest

from cep.engine.model import DeadLetter
from cep.runtime.inputs import InputError, Partition, Reader, discover


def _records(part: Partition, typer=None) -> list:
    reader = Reader(part, typer)
    try:
        return list(reader)
    finally:
        reader.close()


def test_directory_partitions_are_its_sorted_files_and_inputs_keep_their_order(tmp_path):
    d = tmp_path / "events"
    (d / "sub").mkdir(parents=True)
    for name in ("b.jsonl", "a.csv", "sub/c.jsonl.gz", "notes.txt"):
        (d / name).write_bytes(b"")
    single = tmp_path / "z.csv.gz"
    single.write_bytes(b"")
    parts = discover([str(single), str(d)])
    assert [p.name for p in parts] == [str(single), str(d / "a.csv"), str(d / "b.jsonl"), str(d / "sub" / "c.jsonl.gz")]
    assert [(p.fmt, p.gzipped) for p in parts] == [("csv", True), ("csv", False), ("jsonl", False), ("jsonl", True)]
    assert discover(["-"]) == [Partition("-", "jsonl", False)]


@pytest.mark.parametrize("bad, message", [
    (["missing.jsonl"], "no such file"),
    (["events.txt"], "unknown input format"),
    (["empty_dir"], "holds no"),
    (["-", "-"], "only once"),
])
def test_inputs_that_cannot_be_opened_are_named(tmp_path, monkeypatch, bad, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "events.txt").write_text("{}\n")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match=message):
        discover(bad)


def test_jsonl_lines_blank_lines_and_malformed_lines(tmp_path):
    path = tmp_path / "e.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b'{"type": "a", "ts": 1}\n\n   \n{"type": \n[1, 2]\n{"type": "b", "ts": 2}\r\n')
    got = _records(Partition(str(path), "jsonl", True))
    assert [(offset, raw) for offset, raw, _ in got] == [
        (1, '{"type": "a", "ts": 1}'), (4, '{"type": '), (5, "[1, 2]"), (6, '{"type": "b", "ts": 2}')]
    assert got[0][2] == {"type": "a", "ts": 1}
    assert isinstance(got[1][2], DeadLetter) and got[1][2].reason == "invalid_json"
    assert got[1][2].source == str(path) and got[1][2].offset == 4 and got[1][2].raw == '{"type": '
    assert isinstance(got[2][2], DeadLetter) and got[2][2].reason == "not_an_object"


def test_csv_rows_empty_cells_quoted_newlines_and_wrong_width(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text('type,ts,note\na,1,\n\nb,2,"two\nlines"\nc,3\n', encoding="utf-8")
    got = _records(Partition(str(path), "csv", False))
    assert got[0] == (2, "a,1,", {"type": "a", "ts": "1"})  # an empty cell is a missing field
    assert got[1] == (4, 'b,2,"two\nlines"', {"type": "b", "ts": "2", "note": "two\nlines"})
    offset, raw, letter = got[2]
    assert (offset, raw) == (6, "c,3")
    assert isinstance(letter, DeadLetter) and letter.reason == "csv_width" and letter.offset == 6
    assert len(got) == 3


def test_csv_rows_go_through_the_typer(tmp_path):
    path = tmp_path / "e.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("type,n\nx,5\n")
    got = _records(Partition(str(path), "csv", True), lambda row: {**row, "n": int(row["n"])})
    assert got == [(2, "x,5", {"type": "x", "n": 5})]


def test_bytes_read_follow_the_file_on_disk(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 1000)
    reader = Reader(Partition(str(path), "jsonl", False))
    assert len(list(reader)) == 1000
    assert reader.bytes_read == path.stat().st_size
    reader.close()
