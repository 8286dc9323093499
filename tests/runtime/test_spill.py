"""Sorted spill runs: output order is a function of content, memory is bounded."""

from __future__ import annotations

import random

from cep.runtime.spill import SpillWriter, merged, run_files


def test_runs_of_several_workers_merge_into_one_sorted_order(tmp_path):
    records = [([t % 7, f"r{t % 3}", t], f'{{"n": {t}}}'.encode()) for t in range(500)]
    expected = [line for _, line in sorted(records)]
    random.Random(4).shuffle(records)  # arrival order must not matter
    for worker in range(3):
        writer = SpillWriter(str(tmp_path), f"w{worker:04d}-m", limit=40)  # forces many runs
        for rec in records[worker::3]:
            writer.add(*rec)
        writer.close()
    assert len(run_files(str(tmp_path), "m")) > 3
    assert run_files(str(tmp_path), "d") == []
    assert list(merged(run_files(str(tmp_path), "m"))) == expected


def test_equal_keys_are_ordered_by_their_text(tmp_path):
    writer = SpillWriter(str(tmp_path), "w0000-m")
    writer.add([1, "r"], b'{"b": 2}')
    writer.add([1, "r"], b'{"a": 1}')
    writer.close()
    assert list(merged(run_files(str(tmp_path), "m"))) == [b'{"a": 1}', b'{"b": 2}']
