"""Sorted spill files: bounded-memory sorting of replay output.

Every worker keeps at most `limit` records in memory; when the buffer is
full it is sorted and written to a run file. At the end the driver merges
all runs of all workers (`heapq.merge`) into the output, so the output
order does not depend on workers, processes or batching (SPEC §3 rule 10)
and memory stays flat however many matches a replay emits.

A record is `(sort_key, line)`: `line` is the JSON text written to the
output, and it is also the last tie-breaker, so the order is a function of
the content alone.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator

import orjson

from cep.engine.model import json_bytes


class SpillWriter:
    def __init__(self, directory: str, prefix: str, limit: int = 50_000):
        self._dir = directory
        self._prefix = prefix
        self._limit = limit
        self._buffer: list[tuple[list, bytes]] = []
        self._runs = 0
        self.count = 0

    def add(self, key: list, line: bytes) -> None:
        self._buffer.append((key, line))
        self.count += 1
        if len(self._buffer) >= self._limit:
            self._spill()

    def _spill(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        path = os.path.join(self._dir, f"{self._prefix}-{self._runs:05d}.run")
        self._runs += 1
        with open(path, "wb") as fh:
            # one JSON array per line: [key, line-as-text]
            fh.writelines(json_bytes([key, line.decode()]) + b"\n" for key, line in self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        self._spill()


def _read_run(path: str) -> Iterator[tuple[list, bytes]]:
    with open(path, "rb") as fh:
        for raw in fh:
            key, line = orjson.loads(raw)
            yield key, line.encode()


def run_files(directory: str, kind: str) -> list[str]:
    """The run files of one kind (`m` matches, `d` dead letters) of every worker."""
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.endswith(".run") and name.split("-")[1] == kind)


def merged(paths: Iterable[str]) -> Iterator[bytes]:
    """The lines of all runs, in (key, line) order."""
    for _key, line in heapq.merge(*(_read_run(p) for p in paths)):
        yield line
