"""`file:PATH` and `-`: JSON-lines (or CSV) files and stdin as sources, JSON
lines to a file or stdout as sinks (SPEC §5).

A file source reads to the end of the file and then ends (the dataflow then
finishes as a replay does); `file:DIR` reads the directory's files as
partitions in sorted name order, as `cep replay DIR` does. Stdin is read by a
thread into a bounded queue, so a quiet pipe never blocks the worker (the
clock must keep moving for `--idle-advance`).

A file sink is exactly-once under recovery: its snapshot is the byte length
of the file after a flush and fsync, and a restart cuts the file back to that
length before the replayed epoch is written again.
"""

from __future__ import annotations

import io
import os
import queue
import sys
import threading
from itertools import islice


from cep.engine.model import json_bytes

from cep.runtime.connectors import Record, decode_event, log
from cep.runtime.inputs import STDIN, Reader, discover


class FileEventSource:
    def __init__(self, endpoint, csv_typer=None):
        self._endpoint = endpoint
        self._typer = csv_typer
        # raises InputError (exit 2) for a path that cannot be read, as replay does
        self._parts = discover([endpoint.name])

    def partitions(self) -> list[str]:
        return [p.name for p in self._parts]

    def open(self, index: int, position: object):
        part = self._parts[index]
        if part.name == STDIN:
            return _StdinReader(part, self._typer)
        return _FileReader(part, self._typer, position if isinstance(position, int) else 0)


class _FileReader:
    """Position: the line number of the last record returned (0: none yet)."""

    def __init__(self, part, typer, skip_to: int):
        self._reader = Reader(part, typer)
        self._records = iter(self._reader)
        self._position = skip_to
        self.ended = False
        if skip_to:
            # records up to the snapshotted line were read before the restart
            self._records = (r for r in self._records if r[0] > skip_to)
        log.info("connector up: file:%s%s", part.name, f" from line {skip_to + 1}" if skip_to else "")

    def poll(self, n: int) -> list[Record]:
        if self.ended:
            return []
        got = list(islice(self._records, n))
        if len(got) < n:
            self.ended = True
            self._reader.close()
        if got:
            self._position = got[-1][0]
        return got

    def position(self) -> int:
        return self._position

    def close(self) -> None:
        self._reader.close()


class _StdinReader:
    """JSON lines from stdin. Not replay's Reader: its buffered stdin waits for
    64 KiB or the end of the pipe, and a live run must see each line as it comes.
    Stdin cannot seek: a restart reads on from wherever the pipe is."""

    _END = object()

    def __init__(self, part, typer):
        self._queue: queue.Queue = queue.Queue(maxsize=10_000)  # bounded: backpressure on the pipe
        self._offset = 0
        self.ended = False
        self._thread = threading.Thread(target=self._pump, daemon=True, name="cep-stdin")
        self._thread.start()
        log.info("connector up: stdin")

    def _pump(self) -> None:
        # a raw read returns what the pipe holds; readline then hands over each whole line
        stream = io.BufferedReader(io.FileIO(sys.stdin.fileno(), "rb", closefd=False))
        try:
            for number, line in enumerate(stream, 1):
                if line.strip():  # a blank line is not an event, as in replay
                    self._queue.put(decode_event(line.rstrip(b"\r\n"), STDIN, number))
        except OSError as exc:
            log.error("connector down: stdin: %s", exc)
        finally:
            log.info("connector down: stdin reached its end")
            self._queue.put(self._END)

    def poll(self, n: int) -> list[Record]:
        out: list[Record] = []
        while len(out) < n:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is self._END:
                self.ended = True
                break
            out.append(item)
        if out:
            self._offset = out[-1][0]
        return out

    def position(self) -> int:
        return self._offset

    def close(self) -> None:
        pass  # the daemon thread ends with the pipe or the process


class FileWriter:
    """JSON lines to `file:PATH`, stdout (`-`) or stderr (dead letters by default)."""

    def __init__(self, endpoint, resume: object):
        self._kind = endpoint.kind
        self.label = endpoint.label
        if self._kind == "file":
            path = endpoint.name
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            self._fh = open(path, "ab")  # noqa: SIM115 - closed in close()
            if isinstance(resume, int) and self._fh.tell() > resume:
                # §recovery: what was written after the last snapshot is written again
                # by the replayed epoch; cut it so the file never holds a duplicate
                self._fh.truncate(resume)
                self._fh.seek(resume)
                log.info("file:%s cut back to %d bytes (the last snapshot)", path, resume)
        else:
            self._fh = sys.stdout.buffer if self._kind == "stdio" else sys.stderr.buffer

    def write(self, items: list[dict]) -> None:
        self._fh.write(b"".join(json_bytes(item) + b"\n" for item in items))
        self._fh.flush()  # a reader of the file or pipe sees each batch at once (fsync waits for snapshots)

    def flush(self) -> None:
        self._fh.flush()
        if self._kind == "file":
            os.fsync(self._fh.fileno())

    def snapshot(self) -> int | None:
        self.flush()
        return self._fh.tell() if self._kind == "file" else None

    def close(self) -> None:
        self.flush()
        if self._kind == "file":
            self._fh.close()
