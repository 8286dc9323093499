"""Replay inputs: which partitions an INPUT list names, and reading their lines.

SPEC §5: JSON lines (`.jsonl`, `.jsonl.gz`), CSV with a header row (`.csv`,
`.csv.gz`), directories of those and `-` for stdin. SPEC §3.1 Partitions:
every file is a partition; several INPUTs keep their order; a directory
contributes its files in sorted name order.

A reader turns a partition into records `(offset, raw, value)`: `offset` is
the 1-based line number of the record's first line, `raw` its text, and
`value` either the event dict or a `DeadLetter` (malformed JSON, not an
object, a CSV row of the wrong width). Blank lines are not events and are
not counted. Type, time, catalog and lateness are the Intake's business.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

from cep.engine.model import CSV_WIDTH, INVALID_JSON, NOT_AN_OBJECT, DeadLetter

SUFFIXES = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz")
STDIN = "-"
# bytes per read of the replay fast path: ~1,500 events, so a batch's event
# dicts are still in the cache when the shard matches them (at 1 MiB the floor
# and P1 were both ~20% slower: bench/PROFILE.md section 9)
CHUNK = 1 << 17


class InputError(Exception):
    """An INPUT that cannot be opened at all (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Partition:
    name: str  # the file path as given (or inside the given directory), or "-"
    fmt: str  # "jsonl" or "csv"
    gzipped: bool

    @property
    def size(self) -> int | None:
        """Bytes on disk (for the progress bar); None for stdin."""
        if self.name == STDIN:
            return None
        try:
            return os.path.getsize(self.name)
        except OSError:
            return None


def _format_of(path: str) -> tuple[str, bool] | None:
    lower = path.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return ("csv" if ".csv" in suffix else "jsonl"), suffix.endswith(".gz")
    return None


def discover(inputs: list[str], stdin_format: str = "jsonl") -> list[Partition]:
    """The partitions the INPUT arguments name, in timeline tie-break order.

    Raises InputError for a path that does not exist, a file of an unknown
    format, a directory without inputs, or `-` given twice."""
    parts: list[Partition] = []
    if not inputs:
        raise InputError("no INPUT given (a file, a directory or - for stdin)")
    if inputs.count(STDIN) > 1:
        raise InputError("- (stdin) can be given only once")
    for item in inputs:
        if item == STDIN:
            parts.append(Partition(STDIN, stdin_format, False))
        elif os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs.sort()
                for name in files:
                    path = os.path.join(root, name)
                    fmt = _format_of(name)
                    if fmt is not None:
                        found.append((os.path.relpath(path, item), path, fmt))
            if not found:
                raise InputError(f"{item}: directory holds no {', '.join(SUFFIXES)} files")
            # §3.1: sorted file names decide ties between partitions
            for _, path, (fmt, gz) in sorted(found):
                parts.append(Partition(path, fmt, gz))
        elif os.path.isfile(item):
            fmt = _format_of(item)
            if fmt is None:
                raise InputError(f"{item}: unknown input format (expected {', '.join(SUFFIXES)})")
            parts.append(Partition(item, fmt[0], fmt[1]))
        elif os.path.exists(item):
            raise InputError(f"{item}: not a regular file or directory")
        else:
            raise InputError(f"{item}: no such file or directory")
    for part in parts:
        if part.name != STDIN and not os.access(part.name, os.R_OK):
            raise InputError(f"{part.name}: permission denied")
    return parts


class _Counting(io.RawIOBase):
    """Counts the bytes read from the underlying file, compressed or not,
    so the progress bar can compare them with the size on disk."""

    def __init__(self, raw):
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        self.count += n or 0
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


CsvTyper = Callable[[dict], dict]


class Reader:
    """Iterates the records of one partition; `bytes_read` follows the file."""

    def __init__(self, part: Partition, csv_typer: CsvTyper | None = None):
        self.part = part
        self._typer = csv_typer
        if part.name == STDIN:
            raw = sys.stdin.buffer
        else:
            try:
                raw = open(part.name, "rb", buffering=0)  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise InputError(f"{part.name}: {exc.strerror}") from None
        self._counting = _Counting(raw)
        stream = io.BufferedReader(self._counting, 1 << 16)
        self._stream = gzip.GzipFile(fileobj=stream, mode="rb") if part.gzipped else stream
        self._records = self._jsonl() if part.fmt == "jsonl" else self._csv()
        self._rest = b""  # read_lines: the unfinished line after the last chunk

    @property
    def bytes_read(self) -> int:
        return self._counting.count

    def __iter__(self) -> Iterator[tuple[int, str, object]]:
        return self._records

    def close(self) -> None:
        if self.part.name != STDIN:
            self._stream.close()

    def _dead(self, reason: str, detail: str, offset: int, raw: str) -> DeadLetter:
        return DeadLetter(reason, detail, self.part.name, offset, raw)

    def _jsonl(self) -> Iterator[tuple[int, str, object]]:
        for number, line in enumerate(self._stream, 1):
            if not line.strip():
                continue  # a blank line is not an event (documented in `cep replay --help`)
            yield self.jsonl_record(number, line)

    def jsonl_record(self, number: int, line: bytes) -> tuple[int, str, object]:
        """The record of one non-blank JSON line, as read from the file (its
        newline included: orjson's error positions count it)."""
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return number, text, self._dead(INVALID_JSON, f"not valid JSON: {exc}", number, text)
        if not isinstance(value, dict):
            kind = type(value).__name__ if value is not None else "null"
            return number, text, self._dead(NOT_AN_OBJECT, f"a JSON {kind}, not an object", number, text)
        return number, text, value

    def read_lines(self, size: int = CHUNK) -> tuple[list[bytes], bool]:
        """The next whole lines of a JSON-lines partition, without their
        newlines, read in one large chunk (replay's fast path: one read and one
        split per chunk instead of a readline per event); blank lines are kept,
        so line numbers stay positional. Returns (lines, ended): once `ended`,
        the last element is the file's final line, which had a newline only if
        it is empty. Not to be mixed with iterating the records."""
        data = self._stream.read(size)
        if not data:
            rest, self._rest = self._rest, b""
            return ([rest] if rest else []), True
        if self._rest:
            data = self._rest + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._rest = data
            return [], False
        self._rest = data[cut + 1:]
        return data[:cut].split(b"\n"), False

    def _csv(self) -> Iterator[tuple[int, str, object]]:
        text_lines = io.TextIOWrapper(self._stream, encoding="utf-8", errors="replace", newline="")
        consumed: list[str] = []
        counter = [0]

        def lines() -> Iterator[str]:
            for line in text_lines:
                counter[0] += 1
                consumed.append(line)
                yield line

        reader = csv.reader(lines())
        header = None
        for row in reader:
            first = counter[0] - len(consumed) + 1
            raw = "".join(consumed).rstrip("\r\n")
            consumed.clear()
            if not row or (len(row) == 1 and not row[0].strip() and not raw.strip()):
                continue  # blank line
            if header is None:
                header = row
                continue
            if len(row) != len(header):
                yield first, raw, self._dead(
                    CSV_WIDTH, f"a row of {len(row)} cells under a header of {len(header)}", first, raw)
                continue
            # §5: an empty cell is a missing field
            event = {name: cell for name, cell in zip(header, row) if cell != ""}
            if self._typer is not None:
                event = self._typer(event)
            yield first, raw, event
